/// A 256-bit set of AP ids of one kind (`Bitmap256<APID>` is an APM,
/// `Bitmap256<APQI>` an AQM or ADM), stored inline in four words.
///
/// Bits are numbered the way the kernel's `set_bit_inv` numbers them: id 0 is
/// the most significant bit of the first word. So the words, printed in order
/// as `%016lx`, are exactly the sysfs text of an apmask or a QCI mask, and the
/// storage needs no conversion on the way out.
@frozen
public struct Bitmap256<ID: APIdentifier>: Hashable, Sendable {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    @inlinable public init() { w0 = 0; w1 = 0; w2 = 0; w3 = 0 }
    @inlinable public init(words a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) {
        w0 = a; w1 = b; w2 = c; w3 = d
    }

    /// All 256 ids.
    @inlinable public static var all: Self { Self(words: .max, .max, .max, .max) }

    @inlinable public init<S: Sequence>(_ ids: S) where S.Element == ID {
        self.init()
        for id in ids { insert(id) }
    }

    /// Ids `0...last`.
    @inlinable public static func through(_ last: ID) -> Self {
        var m = Self()
        let n = last.value + 1
        for i in 0..<4 {
            let bits = Swift.min(Swift.max(n - i * 64, 0), 64)
            m[word: i] = bits == 0 ? 0 : ~(UInt64.max >> UInt64(bits))
        }
        return m
    }

    @inlinable subscript(word i: Int) -> UInt64 {
        get {
            switch i { case 0: return w0; case 1: return w1; case 2: return w2; default: return w3 }
        }
        set {
            switch i { case 0: w0 = newValue; case 1: w1 = newValue; case 2: w2 = newValue; default: w3 = newValue }
        }
    }

    @inlinable static func bit(_ id: ID) -> UInt64 { (1 as UInt64) &<< UInt64(63 - (id.rawValue & 63)) }

    @inlinable public mutating func insert(_ id: ID) { self[word: Int(id.rawValue &>> 6)] |= Self.bit(id) }

    @inlinable public mutating func remove(_ id: ID) { self[word: Int(id.rawValue &>> 6)] &= ~Self.bit(id) }

    @inlinable public func contains(_ id: ID) -> Bool { self[word: Int(id.rawValue &>> 6)] & Self.bit(id) != 0 }

    @inlinable public static func & (a: Self, b: Self) -> Self {
        Self(words: a.w0 & b.w0, a.w1 & b.w1, a.w2 & b.w2, a.w3 & b.w3)
    }
    @inlinable public static func | (a: Self, b: Self) -> Self {
        Self(words: a.w0 | b.w0, a.w1 | b.w1, a.w2 | b.w2, a.w3 | b.w3)
    }
    @inlinable public static prefix func ~ (a: Self) -> Self {
        Self(words: ~a.w0, ~a.w1, ~a.w2, ~a.w3)
    }
    @inlinable public func subtracting(_ b: Self) -> Self {
        Self(words: w0 & ~b.w0, w1 & ~b.w1, w2 & ~b.w2, w3 & ~b.w3)
    }
    @inlinable public func isSubset(of b: Self) -> Bool { subtracting(b).isEmpty }
    @inlinable public func intersects(_ b: Self) -> Bool { !(self & b).isEmpty }
    @inlinable public var isEmpty: Bool { (w0 | w1 | w2 | w3) == 0 }
    @inlinable public var count: Int {
        w0.nonzeroBitCount + w1.nonzeroBitCount + w2.nonzeroBitCount + w3.nonzeroBitCount
    }

    /// The lowest id in the set.
    @inlinable public var first: ID? {
        for i in 0..<4 where self[word: i] != 0 {
            return ID(rawValue: UInt8(truncatingIfNeeded: i << 6 | self[word: i].leadingZeroBitCount))
        }
        return nil
    }

    /// The four words as the kernel prints a mask: `0x` and 64 lowercase hex digits.
    public var hexString: String {
        var s = "0x"
        s.reserveCapacity(66)
        for i in 0..<4 {
            let hex = String(self[word: i], radix: 16)
            s += String(repeating: "0", count: 16 - hex.utf8.count) + hex
        }
        return s
    }
}

extension Bitmap256: Sequence {
    /// Ascending ids.
    @frozen public struct Iterator: IteratorProtocol {
        @usableFromInline var bits: Bitmap256
        @usableFromInline var word = 0
        @usableFromInline var current: UInt64
        @inlinable init(_ b: Bitmap256) { bits = b; current = b.w0 }
        @inlinable public mutating func next() -> ID? {
            while current == 0 {
                word += 1
                if word == 4 { return nil }
                current = bits[word: word]
            }
            let lz = current.leadingZeroBitCount
            current &= ~((1 as UInt64) &<< UInt64(63 - lz))
            return ID(rawValue: UInt8(truncatingIfNeeded: word &<< 6 | lz))
        }
    }
    @inlinable public func makeIterator() -> Iterator { Iterator(self) }
    @inlinable public var underestimatedCount: Int { count }
}

extension Bitmap256: CustomStringConvertible {
    /// Compact decimal id list with ranges, for messages: `0-15,71,171`.
    public var description: String { IdList.format(self) }
}

/// An id set as an id list (`0-15,71`): readable in the state file.
extension Bitmap256: Codable {
    public init(from decoder: any Decoder) throws {
        self = try decoder.decodeSingle { (text: String) throws(Refused) in
            do throws(IdList.ParseError) { return try IdList.parse(text) } catch { throw Refused(error.description) }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
