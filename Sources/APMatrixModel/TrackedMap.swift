/// A dictionary of one kind of the host's objects (hardware queues, cards,
/// queue devices, mdevs, guests) that remembers which keys were changed.
///
/// Every mutation goes through its subscripts, and the first one of a key
/// since the last `takeOriginals()` keeps the value the key had (nil: it was
/// absent). So the runtime learns what an operation changed, and can undo
/// it, in the time of what it changed, without comparing the whole host;
/// and a field added to an object later is tracked with it for free.
/// Reads see a plain dictionary; equality ignores the bookkeeping.
public struct TrackedMap<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private var storage: [Key: Value] = [:]
    /// Key → its value before the first change since the last take.
    private var originals: [Key: Value?] = [:]

    public init() {}

    public subscript(key: Key) -> Value? {
        get { storage[key] }
        set {
            keepOriginal(key)
            storage[key] = newValue
        }
        _modify {
            keepOriginal(key)
            yield &storage[key]
        }
    }

    public subscript(key: Key, default value: @autoclosure () -> Value) -> Value {
        get { storage[key] ?? value() }
        _modify {
            keepOriginal(key)
            yield &storage[key, default: value()]
        }
    }

    @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        keepOriginal(key)
        return storage.removeValue(forKey: key)
    }

    @inline(__always)
    private mutating func keepOriginal(_ key: Key) {
        if originals.index(forKey: key) == nil { originals[key] = .some(storage[key]) }
    }

    /// The keys changed since the last take, each with its value before
    /// (nil: added); forgets them.
    mutating func takeOriginals() -> [Key: Value?] {
        defer { originals = [:] }
        return originals
    }

    /// Puts back values taken by `takeOriginals` (an undo), unrecorded.
    mutating func restore(_ values: [Key: Value?]) {
        for (key, value) in values { storage[key] = value }
    }

    // MARK: reading, as a dictionary

    public var keys: Dictionary<Key, Value>.Keys { storage.keys }
    public var values: Dictionary<Key, Value>.Values { storage.values }
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }
    public func filter(_ isIncluded: ((key: Key, value: Value)) throws -> Bool) rethrows -> [Key: Value] {
        try storage.filter(isIncluded)
    }
    public func mapValues<T>(_ transform: (Value) throws -> T) rethrows -> [Key: T] { try storage.mapValues(transform) }
}

extension TrackedMap: Sequence {
    public func makeIterator() -> Dictionary<Key, Value>.Iterator { storage.makeIterator() }
    public var underestimatedCount: Int { storage.count }
}

extension TrackedMap: Equatable where Value: Equatable {
    public static func == (l: Self, r: Self) -> Bool { l.storage == r.storage }
}

extension TrackedMap: Hashable where Value: Hashable {
    public func hash(into h: inout Hasher) { h.combine(storage) }
}
