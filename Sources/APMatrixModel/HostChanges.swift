/// What the operations on a host changed since the last `takeChanges()`:
/// per kind of object, the keys whose object changed, appeared or went
/// away, each with its value before; and which rooms' own fields (the LPAR,
/// the masks, vfio_ap's counters) changed. Enough to save only those and to
/// undo them, in the time of what changed, whatever the size of the host.
public struct HostChanges: Sendable {
    /// A room's own fields: everything but its tables of objects.
    public enum Room: Sendable, Hashable, CaseIterable {
        /// The LPAR: its adapters, domains, facilities and maxima.
        case firmware
        /// The AP bus's masks and `ap_domain`.
        case bus
        /// vfio_ap's counters.
        case vfio
    }

    /// The rooms whose own fields (their records) changed.
    public internal(set) var rooms: Set<Room> = []
    /// Hardware queues (`Firmware.records`).
    public internal(set) var records: [APQN: QueueRecord?] = [:]
    public internal(set) var cards: [APID: Card?] = [:]
    /// Queue devices (`APBus.queues`).
    public internal(set) var queues: [APQN: QueueDevice?] = [:]
    public internal(set) var mdevs: [MdevUUID: Mdev?] = [:]
    public internal(set) var guests: [String: Guest?] = [:]
    /// The changed rooms as they were, for an undo.
    var before = RoomsBefore()

    public var isEmpty: Bool {
        rooms.isEmpty && records.isEmpty && cards.isEmpty && queues.isEmpty && mdevs.isEmpty && guests.isEmpty
    }

    /// Every object of `host`, as if it had just appeared (a new state file).
    public static func everything(in host: APHost) -> HostChanges {
        func all<K, V>(_ map: TrackedMap<K, V>) -> [K: V?] { Dictionary(uniqueKeysWithValues: map.keys.map { ($0, nil) }) }
        var c = HostChanges()
        c.rooms = Set(Room.allCases)
        c.records = all(host.firmware.records)
        c.cards = all(host.bus.cards)
        c.queues = all(host.bus.queues)
        c.mdevs = all(host.vfio.mdevs)
        c.guests = all(host.guests)
        return c
    }
}

/// The rooms' own fields before their first change since the last take.
/// Not part of the host's value: equal hosts may have different histories.
struct RoomsBefore: Sendable, Equatable {
    var firmware: Firmware?
    var bus: APBus?
    var vfio: VfioAP?

    static func == (_: Self, _: Self) -> Bool { true }
}

extension APHost {
    /// Hands over what changed since the last call and starts recording
    /// afresh. A key touched but left as it was is not a change.
    public mutating func takeChanges() -> HostChanges {
        var c = HostChanges()
        let rooms = roomsBefore
        roomsBefore = RoomsBefore()
        // A room changed when any of its fields did (undo puts it back); it is
        // saved only when its record did (not for its indexes alone).
        let maxMdevs = storedVfio.maxMdevs
        if let f = rooms.firmware, f != storedFirmware.withoutTables {
            c.before.firmware = f
            if FirmwareRecord(f, maxMdevs: maxMdevs) != FirmwareRecord(storedFirmware, maxMdevs: maxMdevs) { c.rooms.insert(.firmware) }
        }
        if let b = rooms.bus, b != storedBus.withoutTables {
            c.before.bus = b
            if BusRecord(b) != BusRecord(storedBus) { c.rooms.insert(.bus) }
        }
        if let v = rooms.vfio, v != storedVfio.withoutTables {
            c.before.vfio = v
            if VfioRecord(v) != VfioRecord(storedVfio) { c.rooms.insert(.vfio) }
        }
        c.records = Self.changed(storedFirmware.records.takeOriginals(), storedFirmware.records)
        c.cards = Self.changed(storedBus.cards.takeOriginals(), storedBus.cards)
        c.queues = Self.changed(storedBus.queues.takeOriginals(), storedBus.queues)
        c.mdevs = Self.changed(storedVfio.mdevs.takeOriginals(), storedVfio.mdevs)
        c.guests = Self.changed(guests.takeOriginals(), guests)
        return c
    }

    private static func changed<K, V: Equatable>(_ originals: [K: V?], _ now: TrackedMap<K, V>) -> [K: V?] {
        originals.filter { $0.value != now[$0.key] }
    }

    /// Undoes `changes`, the last ones taken: the host is again as it was
    /// before them (a change that could not be saved).
    public mutating func revert(_ changes: HostChanges) {
        storedFirmware.records.restore(changes.records)
        storedBus.cards.restore(changes.cards)
        storedBus.queues.restore(changes.queues)
        storedVfio.mdevs.restore(changes.mdevs)
        guests.restore(changes.guests)
        if let f = changes.before.firmware { storedFirmware = f.withTables(of: storedFirmware) }
        if let b = changes.before.bus { storedBus = b.withTables(of: storedBus) }
        if let v = changes.before.vfio { storedVfio = v.withTables(of: storedVfio) }
    }
}

// Each room without its tables is a copy that shares no table storage, so
// keeping it costs nothing and does not make the next change copy a table.
extension Firmware {
    var withoutTables: Firmware {
        var f = self
        f.records = TrackedMap()
        return f
    }

    func withTables(of current: Firmware) -> Firmware {
        var f = self
        f.records = current.records
        return f
    }
}

extension APBus {
    var withoutTables: APBus {
        var b = self
        b.cards = TrackedMap()
        b.queues = TrackedMap()
        return b
    }

    func withTables(of current: APBus) -> APBus {
        var b = self
        b.cards = current.cards
        b.queues = current.queues
        return b
    }
}

extension VfioAP {
    var withoutTables: VfioAP {
        var v = self
        v.mdevs = TrackedMap()
        return v
    }

    func withTables(of current: VfioAP) -> VfioAP {
        var v = self
        v.mdevs = current.mdevs
        return v
    }
}
