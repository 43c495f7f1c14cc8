/// The UUID of a matrix mediated device, stored as its 128 bits. Its text
/// is the canonical lowercase `8-4-4-4-12` form sysfs names the mdev by, and
/// the order of the bits is the order of that text.
@frozen public struct MdevUUID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A UUID as the mdev core accepts it (`uuid_is_valid`): exactly 36
    /// characters, hex digits of either case and the four dashes.
    public init?(parsing text: String) {
        guard let (uuid, _) = KernelParse.uuid(text.utf8) else { return nil }
        self = uuid
    }

    /// A name under `devices/vfio_ap/matrix`: the canonical lowercase form only.
    public init?(sysfsName name: String) {
        guard let (uuid, lowercase) = KernelParse.uuid(name.utf8), lowercase else { return nil }
        self = uuid
    }

    /// `62177883-f1bb-47f0-914d-32a22e3a8804`
    public var description: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for n in 0..<32 {
            if n == 8 || n == 12 || n == 16 || n == 20 { out.append(UInt8(ascii: "-")) }
            let word = n < 16 ? high : low
            out.append(digits[Int(word >> UInt64(60 - 4 * (n & 15)) & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func < (l: MdevUUID, r: MdevUUID) -> Bool { (l.high, l.low) < (r.high, r.low) }
}

/// The canonical text in JSON; decoding takes the canonical form only.
extension MdevUUID: TextCodable {
    public init?(text: String) { self.init(sysfsName: text) }
    public static let textForm = "a canonical lowercase mdev UUID"
}
