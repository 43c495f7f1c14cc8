/// A JSON value as QMP needs it: objects keep their member order (replies
/// read like QEMU's) and numbers keep their text (an `id` is echoed exactly,
/// even an integer beyond Double precision).
enum QJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([QJSON])
    case object([(String, QJSON)])

    static func == (l: QJSON, r: QJSON) -> Bool {
        switch (l, r) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    static func int(_ v: Int) -> QJSON { .number(String(v)) }

    subscript(key: String) -> QJSON? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// An integral number that fits an Int.
    var intValue: Int? {
        if case .number(let t) = self { return Int(t) }
        return nil
    }

    /// QEMU's wire format: `{"a": 1, "b": [1, 2]}`, every non-ASCII or control
    /// character as an uppercase `\uXXXX` escape.
    var serialized: String {
        var s = ""
        write(to: &s)
        return s
    }

    private func write(to s: inout String) {
        switch self {
        case .null: s += "null"
        case .bool(let b): s += b ? "true" : "false"
        case .number(let t): s += t
        case .string(let str): Self.quote(str, into: &s)
        case .array(let items):
            s += "["
            for (i, v) in items.enumerated() {
                if i > 0 { s += ", " }
                v.write(to: &s)
            }
            s += "]"
        case .object(let members):
            s += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { s += ", " }
                Self.quote(k, into: &s)
                s += ": "
                v.write(to: &s)
            }
            s += "}"
        }
    }

    private static func hex4(_ v: UInt32) -> String {
        let h = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - h.count)) + h
    }

    private static func quote(_ str: String, into s: inout String) {
        s += "\""
        for scalar in str.unicodeScalars {
            switch scalar {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\u{08}": s += "\\b"
            case "\u{0C}": s += "\\f"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                let v = scalar.value
                if v > 0xFFFF {
                    s += "\\u" + hex4(0xD800 + ((v - 0x10000) >> 10)) + "\\u" + hex4(0xDC00 + ((v - 0x10000) & 0x3FF))
                } else if v < 0x20 || v >= 0x7F {
                    s += "\\u" + hex4(v)
                } else {
                    s.unicodeScalars.append(scalar)
                }
            }
        }
        s += "\""
    }
}

/// A syntax error, worded after QEMU's JSON parser ("JSON parse error, …").
struct QJSONError: Error, Equatable {
    let reason: String
    var description: String { "JSON parse error, \(reason)" }
}

/// A strict RFC 8259 parser for one JSON text; nesting is bounded by the
/// stream splitter before a text gets here.
struct QJSONParser {
    private let bytes: [UInt8]
    private var i = 0

    static func parse(_ bytes: [UInt8]) throws(QJSONError) -> QJSON {
        var p = QJSONParser(bytes: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i < p.bytes.count { throw p.stray() }
        return v
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[i]) { i += 1 }
    }

    /// The offending token, like QEMU's "stray 'x'".
    private func stray() -> QJSONError {
        var j = i
        while j < bytes.count, j - i < 32, ![0x20, 0x09, 0x0a, 0x0d, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d].contains(bytes[j]) { j += 1 }
        if j == i { j = min(i + 1, bytes.count) }
        let text = String(decoding: bytes[i..<j], as: UTF8.self)
        return QJSONError(reason: "stray '\(text)'")
    }

    private mutating func value(depth: Int) throws(QJSONError) -> QJSON {
        guard depth <= 1024 else { throw QJSONError(reason: "nesting depth limit exceeded") }
        guard i < bytes.count else { throw QJSONError(reason: "expecting value") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default:
            for (word, v) in [("true", QJSON.bool(true)), ("false", .bool(false)), ("null", .null)] {
                let w = Array(word.utf8)
                if bytes.count - i >= w.count, Array(bytes[i..<i + w.count]) == w {
                    let end = i + w.count
                    if end == bytes.count || !Self.isWordByte(bytes[end]) {
                        i = end
                        return v
                    }
                }
            }
            if [UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ","), UInt8(ascii: ":")].contains(bytes[i]) {
                throw QJSONError(reason: "expecting value")
            }
            throw stray()
        }
    }

    private static func isWordByte(_ b: UInt8) -> Bool {
        (b | 0x20 >= 0x61 && b | 0x20 <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == 0x5f || b >= 0x80
    }

    private mutating func object(depth: Int) throws(QJSONError) -> QJSON {
        i += 1
        var members: [(String, QJSON)] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object([]) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                throw QJSONError(reason: "key is not a string in object")
            }
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else {
                throw QJSONError(reason: "missing : in object pair")
            }
            i += 1
            skipSpace()
            let v = try value(depth: depth + 1)
            if let k = members.firstIndex(where: { $0.0 == key }) { members[k].1 = v } else { members.append((key, v)) }
            skipSpace()
            guard i < bytes.count else { throw QJSONError(reason: "premature end of object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw QJSONError(reason: "expected separator in dict")
        }
    }

    private mutating func array(depth: Int) throws(QJSONError) -> QJSON {
        i += 1
        var items: [QJSON] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard i < bytes.count else { throw QJSONError(reason: "premature end of array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw QJSONError(reason: "expected separator in list")
        }
    }

    private mutating func number() throws(QJSONError) -> QJSON {
        let start = i
        func digits(_ p: inout QJSONParser) -> Int {
            let s = p.i
            while p.i < p.bytes.count, p.bytes[p.i] >= 0x30, p.bytes[p.i] <= 0x39 { p.i += 1 }
            return p.i - s
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        let n = digits(&self)
        guard n > 0, !(n > 1 && bytes[intStart] == UInt8(ascii: "0")) else {
            i = start
            throw stray()
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { i = start; throw stray() }
        }
        if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { i = start; throw stray() }
        }
        if i < bytes.count, Self.isWordByte(bytes[i]) { i = start; throw stray() }
        return .number(String(decoding: bytes[start..<i], as: UTF8.self))
    }

    private mutating func hexQuad() throws(QJSONError) -> UInt32 {
        guard bytes.count - i >= 4 else { throw QJSONError(reason: "invalid hex escape sequence in string") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw QJSONError(reason: "invalid hex escape sequence in string")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func string() throws(QJSONError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw QJSONError(reason: "missing closing quote") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; break }
            if b < 0x20 { throw QJSONError(reason: "control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw QJSONError(reason: "missing closing quote") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5c)
            case UInt8(ascii: "/"): out.append(0x2f)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var cp = try hexQuad()
                if (0xD800..<0xDC00).contains(cp) {
                    guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw QJSONError(reason: "missing low surrogate in string")
                    }
                    i += 2
                    let lo = try hexQuad()
                    guard (0xDC00..<0xE000).contains(lo) else { throw QJSONError(reason: "invalid low surrogate in string") }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..<0xE000).contains(cp) {
                    throw QJSONError(reason: "stray low surrogate in string")
                }
                guard cp != 0 else { throw QJSONError(reason: "\\u0000 is not supported") }
                out.append(contentsOf: Array(String(Unicode.Scalar(cp)!).utf8))
            default:
                throw QJSONError(reason: "invalid escape sequence in string")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw QJSONError(reason: "invalid UTF-8 sequence in string")
        }
        return s
    }
}
