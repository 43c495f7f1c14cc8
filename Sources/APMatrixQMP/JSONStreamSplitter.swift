/// Why the splitter gave up on one value of the stream.
public enum QMPStreamError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The value grew beyond `limit` bytes; the rest of it is skipped.
    case tooLarge(limit: Int)
    /// Containers nested deeper than `limit`; the rest of the value is skipped.
    case tooDeep(limit: Int)

    /// Worded like QEMU's JSON parser errors, since a QMP client sees it as `desc`.
    public var description: String {
        switch self {
        case .tooLarge(let limit): return "JSON parse error, message exceeds \(limit) bytes"
        case .tooDeep(let limit): return "JSON parse error, nesting depth limit exceeded (\(limit))"
        }
    }
}

/// Cuts a byte stream into complete top-level JSON texts.
///
/// QMP clients (`qemu.qmp`) send messages with no trailing newline, so the
/// stream is split by JSON structure, never by lines: strings and their
/// escapes are tracked so that braces inside them do not count, `{}`/`[]`
/// depth decides where an object or array ends, whitespace between values is
/// skipped. A bare token (number, literal, garbage) ends at the next
/// whitespace or value start. The splitter does not validate: the texts it
/// returns are handed to a parser, which names any syntax error.
///
/// Memory is bounded: a value over `maxBytes` or nested deeper than
/// `maxDepth` is reported at once and its remainder skipped (the splitter
/// keeps tracking its structure without storing it), then splitting resumes
/// with the next value.
public struct JSONStreamSplitter: Sendable {
    /// QEMU's limits are larger; 1 MiB is far above any QMP command.
    public static let defaultMaxBytes = 1 << 20
    /// QEMU's `MAX_NESTING`.
    public static let defaultMaxDepth = 1024

    /// The largest value, in bytes, kept whole.
    public let maxBytes: Int
    /// The deepest `{}`/`[]` nesting accepted.
    public let maxDepth: Int

    private enum Mode: Sendable { case idle, container, string, bare }

    private var mode: Mode = .idle
    private var buffer: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    /// Skipping the rest of a value already reported as an error.
    private var discarding = false

    /// Limits are parameters so tests can exercise them cheaply.
    public init(maxBytes: Int = JSONStreamSplitter.defaultMaxBytes, maxDepth: Int = JSONStreamSplitter.defaultMaxDepth) {
        self.maxBytes = max(1, maxBytes)
        self.maxDepth = max(1, maxDepth)
    }

    /// True while a value has started but not ended (bytes are held back).
    public var hasPartialValue: Bool { mode != .idle }

    /// Consumes the next chunk; returns every value completed by it, in order,
    /// and an error for each value that broke a limit.
    public mutating func feed(_ bytes: [UInt8]) -> [Result<[UInt8], QMPStreamError>] {
        var out: [Result<[UInt8], QMPStreamError>] = []
        for b in bytes { step(b, &out) }
        return out
    }

    @inline(__always) private static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d
    }

    private mutating func step(_ b: UInt8, _ out: inout [Result<[UInt8], QMPStreamError>]) {
        switch mode {
        case .idle:
            start(b, &out)
        case .bare:
            if Self.isSpace(b) || b == UInt8(ascii: "{") || b == UInt8(ascii: "[") || b == UInt8(ascii: "\"") {
                finish(&out)
                start(b, &out)
            } else {
                append(b, &out)
            }
        case .string:
            append(b, &out)
            if escaped { escaped = false }
            else if b == UInt8(ascii: "\\") { escaped = true }
            else if b == UInt8(ascii: "\"") { finish(&out) }
        case .container:
            append(b, &out)
            if inString {
                if escaped { escaped = false }
                else if b == UInt8(ascii: "\\") { escaped = true }
                else if b == UInt8(ascii: "\"") { inString = false }
                return
            }
            switch b {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > maxDepth && !discarding { fail(.tooDeep(limit: maxDepth), &out) }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { finish(&out) }
            default:
                break
            }
        }
    }

    private mutating func start(_ b: UInt8, _ out: inout [Result<[UInt8], QMPStreamError>]) {
        guard !Self.isSpace(b) else { return }
        buffer = []
        discarding = false
        inString = false
        escaped = false
        switch b {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            mode = .container
            depth = 1
        case UInt8(ascii: "\""):
            mode = .string
        default:
            mode = .bare
        }
        append(b, &out)
    }

    private mutating func append(_ b: UInt8, _ out: inout [Result<[UInt8], QMPStreamError>]) {
        guard !discarding else { return }
        buffer.append(b)
        if buffer.count > maxBytes { fail(.tooLarge(limit: maxBytes), &out) }
    }

    private mutating func fail(_ e: QMPStreamError, _ out: inout [Result<[UInt8], QMPStreamError>]) {
        out.append(.failure(e))
        discarding = true
        buffer = []
    }

    private mutating func finish(_ out: inout [Result<[UInt8], QMPStreamError>]) {
        if !discarding { out.append(.success(buffer)) }
        buffer = []
        mode = .idle
        depth = 0
        inString = false
        escaped = false
        discarding = false
    }
}
