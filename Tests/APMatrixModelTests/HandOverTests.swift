import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §5 hand-over: a guest's state stays in its queues only while it has them.
@Suite struct HandOverTests {
    func hostWithGuest() throws -> APHost {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7])
        try h.mk(mdevA, adapters: [5], domains: [4, 7])
        try h.start("g1", mdev: mdevA)
        try h.putHeldState("g1", APQN(5, 4), "key-1")
        return h
    }

    @Test func stateIsKeptWhileTheGuestHasTheQueue() throws {
        var h = try hostWithGuest()
        #expect(h.firmware.records[APQN(5, 4)]?.heldState == "key-1")
        #expect(h.events.last?.line == "guest g1: state put into queue 05.0004")
        try h.assign(.adapter, mdev: mdevA, b("6"))
        try h.storeMask(.apmask, b("+7"))
        #expect(h.firmware.records[APQN(5, 4)]?.heldState == "key-1")
        #expect(h.checkInvariants().isEmpty)
    }

    enum Path: String, CaseIterable, Sendable {
        case unassign, unplug, stop, unbind, cardConfig0, removeAdapter, removeDomain
    }

    @Test(arguments: Path.allCases)
    func everyPathThatTakesTheQueueDropsTheState(_ path: Path) throws {
        var h = try hostWithGuest()
        switch path {
        case .unassign: try h.unassign(.domain, mdev: mdevA, b("4"))
        case .unplug: _ = try h.unplugDevice("g1", id: "hostdev0")
        case .stop: try h.stopGuest("g1")
        case .unbind: try h.unbind(driver: "vfio_ap", b("05.0004"))
        case .cardConfig0: try h.storeCardConfig(5, b("0"))
        case .removeAdapter: try h.removeAdapter(5)
        case .removeDomain: try h.removeDomain(4)
        }
        #expect(h.firmware.records[APQN(5, 4)]?.heldState == nil)
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == nil)
        #expect(h.checkInvariants().isEmpty)
    }

    @Test func removingTheMdevAfterTheGuestLeftKeepsNothing() throws {
        var h = try hostWithGuest()
        try h.stopGuest("g1")
        try h.removeMdev(mdevA, b("1"))
        #expect(h.firmware.records[APQN(5, 4)]?.heldState == nil)
        #expect(h.resets(5, 4) == 2)
    }

    @Test func onlyQueuesTheGuestSeesTakeState() throws {
        var h = try hostWithGuest()
        let e = errorOf { try h.putHeldState("g1", APQN(6, 4), "x") }
        #expect(e == APError(.noSuchDevice, "guest g1 cannot reach queue 06.0004: it sees queues 05.0004 05.0007 (CRYCB APM 5 AQM 4,7 ADM -)"))
        #expect(errnoOf { try h.putHeldState("g2", APQN(5, 4), "x") } == "ENOENT")
        #expect(errnoOf { try h.putHeldState("g1", APQN(5, 7), "") } == "EINVAL")
        #expect(errnoOf { try h.putHeldState("g1", APQN(5, 7), "tab\there") } == "EINVAL")
        #expect(errnoOf { try h.putHeldState("g1", APQN(5, 7), String(repeating: "k", count: 257)) } == "EINVAL")
        #expect(h.firmware.records[APQN(5, 7)]?.heldState == nil)
    }

    @Test func aGuestWithoutAPFacilitiesSeesNoQueue() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA, cpu: "host,apft=off")
        #expect(errnoOf { try h.putHeldState("g1", APQN(5, 4), "x") } == "ENODEV")
    }
}
