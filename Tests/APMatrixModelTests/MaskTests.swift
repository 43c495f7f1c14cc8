import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §3 "Masks": storing apmask/aqmask, the in-use check, rebinding.
@Suite struct MaskTests {
    // MARK: storing

    @Test func storesBothSyntaxes() throws {
        var h = try makeHost(adapters: [4], domains: [0], apmask: .all, aqmask: .all)
        try h.storeMask(.apmask, b("0x41\n"))
        #expect(h.bus.apmask.hexString == "0x4100000000000000000000000000000000000000000000000000000000000000")
        try h.storeMask(.apmask, b("+0,-1\n"))
        #expect(h.bus.apmask.hexString == maskHex("81"))
        try h.storeMask(.aqmask, b("-4,-0x47,-0xab,-0xff"))
        #expect(h.bus.aqmask.hexString == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe")
    }

    @Test(arguments: ["0X41", "+1, +2", "+5-3", "+256", "0x" + String(repeating: "0", count: 65), "garbage"])
    func malformedWriteIsEINVALAndChangesNothing(_ input: String) throws {
        var h = try makeHost(adapters: [4, 5], domains: [0, 1], apmask: ids([5]), aqmask: .all)
        let before = HostState(h)
        for axis in MaskAxis.allCases {
            #expect(errnoOf { try h.storeMask(axis, b(input)) } == "EINVAL")
        }
        #expect(HostState(h) == before)
    }

    @Test func unchangedWriteChangesNothing() throws {
        // All ones: every queue on cex4queue. Unbind one, then write the same mask.
        var h = try makeHost(adapters: [4, 5], domains: [0, 1], apmask: .all, aqmask: .all)
        try h.unbind(driver: "cex4queue", b("05.0001"))
        #expect(h.drv(5, 1) == "none")
        let before = HostState(h)
        _ = h.takeEvents()
        try h.storeMask(.apmask, b("+5"))                 // already set
        try h.storeMask(.apmask, b(maskHex("", fill: "f")))  // the same, absolute
        try h.storeMask(.aqmask, b("+0-255\n"))
        #expect(HostState(h) == before)
        #expect(h.drv(5, 1) == "none")                     // not rebound
        #expect(h.events.isEmpty)
    }

    // MARK: the in-use check (EADDRINUSE)

    /// The seed's own example: two mdevs, one line each (SPEC §3 logs every mdev).
    @Test func v13SeedExampleTwoLinesForTwoMdevs() throws {
        var h = try makeHost(adapters: [4, 5], domains: [4, 0x54], apmask: .all, aqmask: Bitmap256.all.subtracting(ids([0x54])))
        try h.mk(mdevA, adapters: [5], domains: [0x54])   // older
        try h.mk(mdevB, adapters: [4], domains: [0x54])   // newer
        let before = HostState(h)
        _ = h.takeEvents()
        #expect(errnoOf { try h.storeMask(.aqmask, b("+0x54")) } == "EADDRINUSE")
        #expect(h.kernelLines == [
            "Userspace may not re-assign queue 05.0054 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
            "Userspace may not re-assign queue 04.0054 already assigned to cef03c3c-903d-4ecc-9a83-40694cb8aee4",
        ])
        #expect(HostState(h) == before)
        #expect(h.bus.aqmask.hexString == "0xfffffffffffffffffffff7ffffffffffffffffffffffffffffffffffffffffff")
    }

    @Test func mdevsInCreationOrderNotUUIDOrder() throws {
        let older = MdevUUID(parsing: "ffffffff-ffff-ffff-ffff-ffffffffffff")!, newer = MdevUUID(parsing: "00000000-0000-0000-0000-000000000001")!
        var h = try makeHost(adapters: [4, 5], domains: [0x54], apmask: .all, aqmask: Bitmap256.all.subtracting(ids([0x54])))
        try h.mk(older, adapters: [5], domains: [0x54])
        try h.mk(newer, adapters: [4], domains: [0x54])
        _ = h.takeEvents()
        #expect(errnoOf { try h.storeMask(.aqmask, b("+0x54")) } == "EADDRINUSE")
        #expect(h.kernelLines == [inUse("05.0054", older), inUse("04.0054", newer)])
    }

    @Test func apqnsAscendingAndOnlyNewlySetTimesOtherCurrentMask() throws {
        // apmask has 4 and 5 clear; aqmask has 0x55 clear. Newly reserving
        // {4,5} x aqmask takes 04.0054 and 05.0054 but not the 0x55 queues.
        var h = try makeHost(adapters: [4, 5], domains: [0x54, 0x55],
                             apmask: Bitmap256.all.subtracting(ids([4, 5])), aqmask: Bitmap256.all.subtracting(ids([0x55])))
        try h.mk(mdevA, adapters: [4, 5], domains: [0x54, 0x55])
        _ = h.takeEvents()
        let before = HostState(h)
        #expect(errnoOf { try h.storeMask(.apmask, b("+4-5")) } == "EADDRINUSE")
        #expect(h.kernelLines == [inUse("04.0054", mdevA), inUse("05.0054", mdevA)])
        #expect(HostState(h) == before)
    }

    @Test func everyAPQNOfEveryMdevIsLogged() throws {
        var h = try makeHost(adapters: [4, 5, 6], domains: [1, 2, 3], apmask: .all, aqmask: Bitmap256.all.subtracting(ids([1, 2, 3])))
        try h.mk(mdevB, adapters: [6], domains: [1, 3])
        try h.mk(mdevA, adapters: [4, 5], domains: [2])
        _ = h.takeEvents()
        #expect(errnoOf { try h.storeMask(.aqmask, b("+1-3")) } == "EADDRINUSE")
        #expect(h.kernelLines == [
            inUse("06.0001", mdevB), inUse("06.0003", mdevB),
            inUse("04.0002", mdevA), inUse("05.0002", mdevA),
        ])
    }

    @Test func overProvisionedAssignmentsAreProtectedToo() throws {
        // Adapter 9 is not in the LPAR; its APQN is still assigned.
        var h = try makeHost(adapters: [4], domains: [4], apmask: Bitmap256.all.subtracting(ids([9])), aqmask: .all)
        try h.mk(mdevA, adapters: [9], domains: [4])
        _ = h.takeEvents()
        #expect(errnoOf { try h.storeMask(.apmask, b("+9")) } == "EADDRINUSE")
        #expect(h.kernelLines == [inUse("09.0004", mdevA)])
        #expect(h.bus.apmask.hexString == maskHex("ffb", fill: "f"))
    }

    @Test func conflictEvenWithoutAGuestAndWithAbsoluteSyntax() throws {
        var h = try makeHost(adapters: [4, 5], domains: [4], apmask: ids([4]), aqmask: .all)
        try h.mk(mdevA, adapters: [5], domains: [4])
        #expect(errnoOf { try h.storeMask(.apmask, b(maskHex("0c"))) } == "EADDRINUSE")   // ids 4 and 5
        #expect(h.bus.apmask == ids([4]))
        #expect(h.drv(5, 4) == "vfio_ap")
    }

    @Test func v14SeedChecksOnlyTheOtherCurrentMask() throws {
        // V14 (≤6.17 and seed): +5 reserves {5} x aqmask, which lacks domain 4.
        var h = try makeHost(adapters: [5], domains: [3, 4],
                             apmask: Bitmap256.all.subtracting(ids([5])), aqmask: Bitmap256.all.subtracting(ids([4])))
        try h.mk(mdevA, adapters: [5], domains: [4])
        #expect(errnoOf { try h.storeMask(.apmask, b("+5")) } == nil)
        #expect(h.bus.apmask == .all)
        #expect(h.drv(5, 4) == "vfio_ap")
        #expect(h.drv(5, 3) == "cex4queue")
    }

    @Test func clearingBitsNeverConflicts() throws {
        var h = try makeHost(adapters: [4, 5], domains: [4], apmask: Bitmap256.all.subtracting(ids([5])), aqmask: .all)
        try h.mk(mdevA, adapters: [5], domains: [4])
        #expect(errnoOf { try h.storeMask(.apmask, b("-0-255")) } == nil)
        #expect(errnoOf { try h.storeMask(.aqmask, b("\n")) } == nil)
        #expect(h.bus.apmask.isEmpty && h.bus.aqmask.isEmpty)
    }

    // MARK: rebinding

    @Test func rebindsQueuesToTheDriverThatFits() throws {
        var h = try makeHost(adapters: [3, 4, 5, 6, 7], domains: [0, 1, 2, 3], types: [3: "CEX3C", 6: "CEX5A"],
                             apmask: .all, aqmask: .all)
        #expect(h.bound(to: .vfioAP).isEmpty)
        #expect(h.bus.cards[3] == nil)                  // CEX3: no card, no queues
        #expect(h.drv(3, 0) == "absent")
        try h.storeMask(.apmask, b("-5,-6"))
        #expect(h.bound(to: .vfioAP) == ["05.0000", "05.0001", "05.0002", "05.0003",
                                         "06.0000", "06.0001", "06.0002", "06.0003"])
        #expect(h.drv(4, 0) == "cex4queue" && h.drv(7, 3) == "cex4queue")
        try h.storeMask(.aqmask, b("-1"))
        #expect(h.drv(4, 1) == "vfio_ap" && h.drv(7, 1) == "vfio_ap")
        #expect(h.drv(3, 1) == "absent")
        try h.storeMask(.apmask, b("+5"))
        #expect(h.drv(5, 0) == "cex4queue" && h.drv(5, 2) == "cex4queue" && h.drv(5, 3) == "cex4queue")
        #expect(h.drv(5, 1) == "vfio_ap")           // aqmask bit 1 is clear
        #expect(h.bound(to: .vfioAP) == ["04.0001", "05.0001", "06.0000", "06.0001", "06.0002", "06.0003", "07.0001"])
    }

    @Test func queuesLeftUnboundAreBoundToTheDriverThatFits() throws {
        var h = try makeHost(adapters: [4, 5], domains: [0, 1], apmask: ids([4]), aqmask: .all)
        try h.unbind(driver: "cex4queue", b("04.0000"))
        try h.unbind(driver: "vfio_ap", b("05.0000\n"))
        #expect(h.drv(4, 0) == "none" && h.drv(5, 0) == "none")
        try h.storeMask(.aqmask, b("-1"))          // any change revises every binding
        #expect(h.drv(4, 0) == "cex4queue")
        #expect(h.drv(5, 0) == "vfio_ap")
        #expect(h.drv(4, 1) == "vfio_ap")
    }

    @Test func reservedQueueLeavesVfioAP() throws {
        var h = try makeHost(adapters: [4, 5], domains: [0], apmask: ids([4]), aqmask: .all)
        #expect(h.drv(5, 0) == "vfio_ap")
        try h.storeMask(.apmask, b("+5"))
        #expect(h.drv(5, 0) == "cex4queue")
        #expect(h.currentOwner(of: APQN(5, 0)) == .host)
    }

    @Test func v1SeedMaskExample() throws {
        // V1: reserved for host: (1,0),(2,0),(3,0),(4,0),(5,0),(7,0).
        var h = try makeHost(adapters: Array(0...7), domains: [0, 1], apmask: .all, aqmask: .all)
        try h.storeMask(.apmask, b("0x7d00000000000000000000000000000000000000000000000000000000000000"))
        try h.storeMask(.aqmask, b("0x8000000000000000000000000000000000000000000000000000000000000000"))
        #expect(h.bound(to: .cex4queue) == ["01.0000", "02.0000", "03.0000", "04.0000", "05.0000", "07.0000"])
        #expect(!h.bus.isReserved(APQN(0, 0)) && !h.bus.isReserved(APQN(6, 0)) && !h.bus.isReserved(APQN(1, 1)))
        #expect(h.drv(0, 0) == "vfio_ap" && h.drv(6, 0) == "vfio_ap" && h.drv(1, 1) == "vfio_ap")
    }
}
