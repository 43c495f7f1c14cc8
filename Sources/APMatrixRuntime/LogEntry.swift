import APMatrixModel

/// One logged event with the time it happened, seconds since the host booted (like dmesg).
public struct LogEntry: Sendable, Hashable, Codable {
    public let sequence: Int
    public let seconds: Double
    public let event: Event

    /// `[    12.345678] text`
    public var dmesgLine: String {
        let micros = Int((seconds * 1_000_000).rounded())
        let whole = String(micros / 1_000_000)
        let frac = String(micros % 1_000_000)
        return "[" + String(repeating: " ", count: max(0, 5 - whole.count)) + whole + "."
            + String(repeating: "0", count: 6 - frac.count) + frac + "] " + event.line
    }
}
