/// What an adapter id and a domain id share: a number 0...255 in a byte.
/// Generic code (bitmaps, id lists) works on either kind; the two kinds
/// never convert into each other, so an APM cannot be mixed with an AQM.
public protocol APIdentifier: Hashable, Strideable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral where IntegerLiteralType == UInt8, Stride == Int {
    var rawValue: UInt8 { get }
    init(rawValue: UInt8)
    /// The highest id without AP extended addressing (apxa): the ids the
    /// legacy instructions and masks reach.
    static var legacyMax: Self { get }
    /// `APID` or `APQI`, for messages.
    static var kind: String { get }
    /// Hex digits of the sysfs names: 2 for an APID (`card05`), 4 for an APQI (`0004`).
    static var hexWidth: Int { get }
}

extension APIdentifier {
    @inlinable public init(integerLiteral value: UInt8) { self.init(rawValue: value) }

    /// The id of a number, if it is 0...255.
    @inlinable public init?(exactly value: some BinaryInteger) {
        guard let byte = UInt8(exactly: value) else { return nil }
        self.init(rawValue: byte)
    }

    /// The highest id with apxa: 255.
    @inlinable public static var extendedMax: Self { Self(rawValue: 255) }

    /// The id as a number, for arithmetic, JSON and decimal messages.
    @inlinable public var value: Int { Int(rawValue) }

    @inlinable public func distance(to other: Self) -> Int { other.value - value }
    @inlinable public func advanced(by n: Int) -> Self { Self(rawValue: UInt8(value + n)) }
    @inlinable public static func < (l: Self, r: Self) -> Bool { l.rawValue < r.rawValue }

    /// Lowercase hex as sysfs names it: `05` for an APID, `0004` for an APQI.
    public var description: String { hexDigits(rawValue, width: Self.hexWidth) }

    /// A JSON number.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public init(from decoder: any Decoder) throws {
        self = try decoder.decodeSingle { (n: Int) throws(Refused) in
            guard let id = Self(exactly: n) else { throw Refused("\(Self.kind) \(n) is outside 0-255") }
            return id
        }
    }

    /// One id as people write it in host files, the API and the command line:
    /// decimal or `0x` hex, 0...255.
    public init(parsing text: String) throws(IdList.ParseError) {
        guard let n = IdList.number(Substring(text)) else { throw .notAnID(text.trimmed) }
        guard let id = Self(exactly: n) else { throw .outOfRange(n, max: 255) }
        self = id
    }
}

/// An adapter id (card number).
@frozen public struct APID: APIdentifier {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let legacyMax: APID = 63
    public static let kind = "APID"
    public static let hexWidth = 2

    /// The card device's name: `card05`.
    public var cardName: String { "card" + description }

    /// The APID of a card device name, exactly `card` and two lowercase hex digits.
    public init?(cardName name: String) {
        guard name.hasPrefix("card"), let byte = parseHex(name.utf8.dropFirst(4), digits: 2) else { return nil }
        self.init(rawValue: byte)
    }
}

/// A usage or control domain id (queue index).
@frozen public struct APQI: APIdentifier {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let legacyMax: APQI = 15
    public static let kind = "APQI"
    public static let hexWidth = 4
}

/// An AP queue number: adapter and domain, written `%02x.%04x` as in sysfs.
public struct APQN: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let apid: APID
    public let apqi: APQI

    public init(_ apid: APID, _ apqi: APQI) {
        self.apid = apid
        self.apqi = apqi
    }

    /// `05.0004`, the kernel's `"%02x.%04x"`.
    public var description: String { apid.description + "." + apqi.description }

    /// Parses a queue device name such as `05.0004`: exactly that form, lowercase.
    public init?(sysfsName name: String) {
        let u = name.utf8
        guard u.count == 7, let dot = u.firstIndex(of: UInt8(ascii: ".")), u.distance(from: u.startIndex, to: dot) == 2,
              let a = parseHex(u[..<dot], digits: 2), let q = parseHex(u[u.index(after: dot)...], digits: 4) else { return nil }
        self.init(APID(rawValue: a), APQI(rawValue: q))
    }

    public static func < (l: APQN, r: APQN) -> Bool { (l.apid, l.apqi) < (r.apid, r.apqi) }
}

/// `05.0004` in JSON.
extension APQN: TextCodable {
    public init?(text: String) { self.init(sysfsName: text) }
    public static let textForm = "an APQN such as 05.0004"
}

/// A value that is a JSON string: its description, parsed back by `init?(text:)`.
public protocol TextCodable: Codable, CustomStringConvertible {
    init?(text: String)
    /// What the text must be, for the error that refuses it: `an APQN such as 05.0004`.
    static var textForm: String { get }
}

extension TextCodable {
    public init(from decoder: any Decoder) throws {
        self = try decoder.decodeSingle { (text: String) throws(Refused) in
            guard let value = Self(text: text) else { throw Refused("'\(text)' is not \(Self.textForm)") }
            return value
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Why a decoded value is refused, in words for the state file's reader.
struct Refused: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

extension Decoder {
    /// One value decoded as `Raw` and made into the result by `make`, whose
    /// refusal becomes the decoding error.
    func decodeSingle<Raw: Decodable, Value>(_ make: (Raw) throws(Refused) -> Value) throws -> Value {
        let c = try singleValueContainer()
        let raw = try c.decode(Raw.self)
        do throws(Refused) { return try make(raw) } catch {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: error.reason)
        }
    }
}

/// Dictionaries keyed by an id are JSON objects keyed by the decimal id,
/// as they were when ids were plain integers.
extension APID: CodingKeyRepresentable {
    public var codingKey: any CodingKey { IDKey(value) }
    public init?<T: CodingKey>(codingKey: T) {
        guard let n = codingKey.intValue ?? Int(codingKey.stringValue), let id = APID(exactly: n) else { return nil }
        self = id
    }
}

struct IDKey: CodingKey {
    let intValue: Int?
    let stringValue: String
    init(_ n: Int) { intValue = n; stringValue = String(n) }
    init?(intValue: Int) { self.init(intValue) }
    init?(stringValue: String) {
        guard let n = Int(stringValue) else { return nil }
        self.init(n)
    }
}

/// The one formatter of sysfs hex names: lowercase, zero-padded.
func hexDigits(_ value: UInt8, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.utf8.count)) + digits
}

/// Exactly `digits` lowercase hex digits that fit in a byte, as sysfs writes names.
func parseHex<C: Collection<UInt8>>(_ chars: C, digits: Int) -> UInt8? {
    guard chars.count == digits else { return nil }
    var v = 0
    for c in chars {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = v << 4 | Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = v << 4 | Int(c - UInt8(ascii: "a") + 10)
        default: return nil
        }
    }
    return UInt8(exactly: v)
}

extension String {
    /// Without leading and trailing blanks and newlines.
    var trimmed: String { String(Substring(self).trimmingSpaces) }
}
