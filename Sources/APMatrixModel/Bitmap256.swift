/// A 256-bit set of AP ids (APIDs or APQIs), stored inline in four words.
///
/// Bits are numbered the way the kernel's `set_bit_inv` numbers them: id 0 is
/// the most significant bit of the first word. So the words, printed in order
/// as `%016lx`, are exactly the sysfs text of an apmask or a QCI mask, and the
/// storage needs no conversion on the way out.
@frozen
public struct Bitmap256: Hashable, Sendable {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    @inlinable public init() { w0 = 0; w1 = 0; w2 = 0; w3 = 0 }
    @inlinable public init(words a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) {
        w0 = a; w1 = b; w2 = c; w3 = d
    }

    /// All 256 ids.
    public static let all = Bitmap256(words: .max, .max, .max, .max)

    public init<S: Sequence>(_ ids: S) where S.Element == Int {
        self.init()
        for id in ids { insert(id) }
    }

    /// Ids `0...last` (empty when `last` < 0).
    public static func through(_ last: Int) -> Bitmap256 {
        guard last >= 0 else { return Bitmap256() }
        return Bitmap256(0...Swift.min(last, 255))
    }

    @inlinable subscript(word i: Int) -> UInt64 {
        get {
            switch i { case 0: return w0; case 1: return w1; case 2: return w2; default: return w3 }
        }
        set {
            switch i { case 0: w0 = newValue; case 1: w1 = newValue; case 2: w2 = newValue; default: w3 = newValue }
        }
    }

    @inlinable static func bit(_ id: Int) -> UInt64 { (1 as UInt64) &<< UInt64(63 - (id & 63)) }

    @inlinable public mutating func insert(_ id: Int) {
        precondition(id >= 0 && id < 256, "AP id \(id) out of range")
        self[word: id &>> 6] |= Self.bit(id)
    }

    @inlinable public mutating func remove(_ id: Int) {
        precondition(id >= 0 && id < 256, "AP id \(id) out of range")
        self[word: id &>> 6] &= ~Self.bit(id)
    }

    @inlinable public func contains(_ id: Int) -> Bool {
        guard id >= 0 && id < 256 else { return false }
        return self[word: id &>> 6] & Self.bit(id) != 0
    }

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
    public var first: Int? {
        for i in 0..<4 where self[word: i] != 0 { return i << 6 | self[word: i].leadingZeroBitCount }
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
        @inlinable public mutating func next() -> Int? {
            while current == 0 {
                word += 1
                if word == 4 { return nil }
                current = bits[word: word]
            }
            let lz = current.leadingZeroBitCount
            current &= ~((1 as UInt64) &<< UInt64(63 - lz))
            return word &<< 6 | lz
        }
    }
    @inlinable public func makeIterator() -> Iterator { Iterator(self) }
    @inlinable public var underestimatedCount: Int { count }
}

extension Bitmap256: CustomStringConvertible {
    /// Compact id list with ranges, for messages: `0-15,71,171`.
    public var description: String { IdList.format(self) }
}
