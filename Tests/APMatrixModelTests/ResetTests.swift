import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §3 / §5: a queue that leaves a guest is reset (zeroized), counted in
/// `QueueRecord.resets`, and no longer holds the guest's state.
@Suite struct ResetTests {
    enum Path: String, CaseIterable, Sendable {
        case unassignAdapter, unassignDomain, unassignOtherAxisEmpties, unbind, stopGuest, unplugDevice,
             cardConfig0, removeAdapter, removeDomain
    }

    @Test(arguments: Path.allCases)
    func everyPathOutOfAGuestResetsOnce(_ path: Path) throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == "g1")
        #expect(h.resets(5, 4) == 0)
        switch path {
        case .unassignAdapter: try h.unassign(.adapter, mdev: mdevA, b("5"))
        case .unassignDomain: try h.unassign(.domain, mdev: mdevA, b("4"))
        case .unassignOtherAxisEmpties:
            try h.unassign(.domain, mdev: mdevA, b("4"))
            try h.assign(.domain, mdev: mdevA, b("4"))
            #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == "g1")
            try h.unassign(.adapter, mdev: mdevA, b("5"))
        case .unbind: try h.unbind(driver: "vfio_ap", b("05.0004"))
        case .stopGuest: try h.stopGuest("g1")
        case .unplugDevice: _ = try h.unplugDevice("g1", id: "hostdev0")
        case .cardConfig0: try h.storeCardConfig(5, b("0"))
        case .removeAdapter: try h.removeAdapter(5)
        case .removeDomain: try h.removeDomain(4)
        }
        #expect(!h.shadow(mdevA).contains(APQN(5, 4)))
        #expect(h.resets(5, 4) == (path == .unassignOtherAxisEmpties ? 2 : 1))
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == nil)
        #expect(h.currentOwner(of: APQN(5, 4)) != .guest("g1"))
    }

    @Test func queuesThatStayAreNotReset() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 7])
        try h.start("g1", mdev: mdevA)
        try h.assign(.controlDomain, mdev: mdevA, b("1"))
        try h.unassign(.controlDomain, mdev: mdevA, b("1"))
        try h.assign(.adapter, mdev: mdevA, b("8"))          // not in H: no change
        try h.storeMask(.apmask, b("+0x80"))                 // no queue moves
        #expect(h.firmware.records.values.allSatisfy { $0.resets == 0 })
        #expect(h.gm(mdevA) == "05.0004\n05.0007\n06.0004\n06.0007\n")
    }

    @Test func queueIsResetBeforeTheNextGuestGetsIt() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.stopGuest("g1")
        try h.removeMdev(mdevA, b("1"))
        try h.mk(mdevB, adapters: [5], domains: [4])
        try h.start("g2", mdev: mdevB)
        #expect(h.resets(5, 4) == 2)                          // release, then remove
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == "g2")
    }

    @Test func removeResetsBoundQueuesEvenWithoutAGuest() throws {
        var h = try makeHost(adapters: [5], domains: [4, 7])
        try h.mk(mdevA, adapters: [5], domains: [4, 7])
        try h.removeMdev(mdevA, b("1"))
        #expect(h.resets(5, 4) == 1 && h.resets(5, 7) == 1)
    }

    @Test func firmwareRemovalResetsOnlyQueuesThatLeftTheGuest() throws {
        var h = try makeHost(adapters: [5, 6, 7], domains: [4, 7])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 7])
        try h.mk(mdevB, adapters: [7], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.removeDomain(7)
        #expect(h.resets(5, 7) == 1 && h.resets(6, 7) == 1)
        #expect(h.resets(5, 4) == 0 && h.resets(6, 4) == 0 && h.resets(7, 4) == 0 && h.resets(7, 7) == 0)
    }
}
