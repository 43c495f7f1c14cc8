/// A moment of the host's life: seconds since it booted, as dmesg counts.
///
/// Time that passes is not a change of the host: the model never stores
/// "now". Operations whose effect depends on the time (a guest's bus scan
/// arms its config timer, the timer's periodic scans) take it as an input,
/// and values that follow from it (how many scans a guest's bus has made)
/// are derived from it when read.
public struct Uptime: Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }
    public init(integerLiteral value: Int) { seconds = Double(value) }
    public init(floatLiteral value: Double) { seconds = value }

    public static let boot = Uptime(seconds: 0)

    public static func < (l: Uptime, r: Uptime) -> Bool { l.seconds < r.seconds }
    public static func + (t: Uptime, seconds: Double) -> Uptime { Uptime(seconds: t.seconds + seconds) }
    public static func - (l: Uptime, r: Uptime) -> Double { l.seconds - r.seconds }

    /// `12.5s`
    public var description: String { "\(seconds)s" }

    /// A number of seconds in JSON.
    public init(from decoder: any Decoder) throws { seconds = try decoder.singleValueContainer().decode(Double.self) }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(seconds)
    }
}
