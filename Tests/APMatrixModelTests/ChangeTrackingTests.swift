import APMatrixModel
import APMatrixTesting
import Testing

/// What an operation changed, as the model records it (`takeChanges`): the
/// keys of exactly the objects that changed, the rooms whose records
/// changed, and an undo (`revert`) that gives back the host as it was.
@Suite struct ChangeTrackingTests {
    /// Adapters 5 and 6, domains 4 and 7, nothing reserved, `mdevs` mdevs; changes taken.
    func host(mdevs: Int = 2) throws -> APHost {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7])
        for n in 0..<mdevs { try h.createMdev(uuid(n)) }
        _ = h.takeEvents()
        _ = h.takeChanges()
        return h
    }

    func uuid(_ n: Int) -> MdevUUID {
        let hex = String(n, radix: 16)
        return MdevUUID(parsing: "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - hex.count) + hex)!
    }

    @Test func anAssignmentChangesItsMdevOnly() throws {
        var h = try host(mdevs: 1000)
        try h.assign(.adapter(5), to: uuid(500))
        let c = h.takeChanges()
        #expect(Array(c.mdevs.keys) == [uuid(500)])
        #expect(c.mdevs[uuid(500)]??.matrix == Matrix())
        #expect(c.rooms.isEmpty && c.queues.isEmpty && c.records.isEmpty && c.cards.isEmpty && c.guests.isEmpty)
        #expect(h.takeChanges().isEmpty)
    }

    @Test func aCreateChangesTheMdevAndVfioAPsCounter() throws {
        var h = try host()
        try h.createMdev(uuid(7))
        let c = h.takeChanges()
        #expect(c.mdevs.count == 1 && c.mdevs[uuid(7)] == .some(nil))
        #expect(c.rooms == [.vfio])
    }

    @Test func aMaskChangeChangesTheBusAndEveryRebound() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7], apmask: .all, aqmask: .all)
        _ = h.takeChanges()
        try h.setAQMask(ids([7]))
        let c = h.takeChanges()
        #expect(c.rooms == [.bus])
        #expect(c.queues.keys.sorted() == [APQN(5, 4), APQN(6, 4)])
        #expect(c.queues[APQN(5, 4)]??.driver == .cex4queue && h.bus.queues[APQN(5, 4)]?.driver == .vfioAP)
    }

    /// A key touched but left as it was is no change: the same mask again changes nothing.
    @Test func aWriteOfTheSameValueIsNoChange() throws {
        var h = try host()
        try h.setAPMask(ids([]))
        h.setQueueOnline(APQN(5, 4), true)
        #expect(h.takeChanges().isEmpty)
    }

    @Test func aFirmwareChangeChangesTheLPARAndItsDevices() throws {
        var h = try host()
        try h.addAdapter(7, type: AdapterType("CEX8C")!)
        let c = h.takeChanges()
        // The bus's own fields too: the configuration change makes it scan (`ap_scan_bus` counts it).
        #expect(c.rooms == [.bus, .firmware])
        #expect(Array(c.cards.keys) == [APID(7)])
        #expect(c.queues.keys.sorted() == [APQN(7, 4), APQN(7, 7)])
    }

    @Test func aGuestStartChangesTheGuestItsMdevAndItsQueues() throws {
        var h = try host()
        try h.assign(.adapter(5), to: uuid(0))
        try h.assign(.domain(4), to: uuid(0))
        _ = h.takeChanges()
        try h.start("g1", mdev: uuid(0))
        let c = h.takeChanges()
        #expect(Array(c.guests.keys) == ["g1"] && Array(c.mdevs.keys) == [uuid(0)])
        #expect(Array(c.records.keys) == [APQN(5, 4)])
        try h.stopGuest("g1")
        let stop = h.takeChanges()
        #expect(stop.guests["g1"]??.name == "g1" && h.guests["g1"] == nil)
        #expect(stop.records[APQN(5, 4)]??.resets == 0 && h.firmware.records[APQN(5, 4)]?.resets == 1)
    }

    /// Undo gives back the host as it was, indexes included (the next
    /// assignment is checked against them).
    @Test func revertGivesBackTheHostAsItWas() throws {
        var h = try host()
        try h.assign(.adapter(5), to: uuid(0))
        try h.assign(.domain(4), to: uuid(0))
        try h.start("g1", mdev: uuid(0))
        _ = h.takeEvents()
        _ = h.takeChanges()
        let before = h
        try h.setAQMask(ids([7]))
        try h.assign(.domain(7), to: uuid(1))
        try h.addDomain(9)
        try h.stopGuest("g1")
        try h.removeMdev(uuid(0))
        _ = h.takeEvents()
        h.revert(h.takeChanges())
        #expect(h == before)
        #expect(h.refusal(of: Matrix(apm: ids([5]), aqm: ids([4])), for: uuid(1)) != nil)
        #expect(h.vfio.availableInstances == before.vfio.availableInstances)
    }

    @Test func everythingListsEveryObject() throws {
        let h = try host(mdevs: 3)
        let c = HostChanges.everything(in: h)
        #expect(c.rooms.count == 3 && c.mdevs.count == 3 && c.cards.count == 2 && c.queues.count == 4)
        #expect(c.records.isEmpty && c.guests.isEmpty)
    }
}

/// What the property tests check after each step: the changes taken are
/// exactly the objects that differ from `before` (found here by comparing
/// the whole hosts), and reverting them gives `before` back.
func changeTrackingProblems(before: APHost, after: inout APHost) -> [String] {
    var out: [String] = []
    let c = after.takeChanges()
    func diff<K: Hashable, V: Equatable>(_ name: String, _ a: TrackedMap<K, V>, _ b: TrackedMap<K, V>, _ said: [K: V?]) {
        let differing = Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }
        if differing != Set(said.keys) { out.append("\(name): changed \(differing), recorded \(Set(said.keys))") }
    }
    diff("records", before.firmware.records, after.firmware.records, c.records)
    diff("cards", before.bus.cards, after.bus.cards, c.cards)
    diff("queues", before.bus.queues, after.bus.queues, c.queues)
    diff("mdevs", before.vfio.mdevs, after.vfio.mdevs, c.mdevs)
    diff("guests", before.guests, after.guests, c.guests)
    let rooms: [(HostChanges.Room, Bool)] = [
        (.firmware, APHost.FirmwareRecord(before) != APHost.FirmwareRecord(after)),
        (.bus, APHost.BusRecord(before.bus) != APHost.BusRecord(after.bus)),
        (.vfio, APHost.VfioRecord(before.vfio) != APHost.VfioRecord(after.vfio)),
    ]
    for (room, changed) in rooms where changed != c.rooms.contains(room) {
        out.append("room \(room): changed \(changed), recorded \(c.rooms.contains(room))")
    }
    var undone = after
    undone.revert(c)
    _ = undone.takeEvents()
    var settled = before
    _ = settled.takeEvents()
    if undone != settled { out.append("revert did not give back the host as it was") }
    return out
}
