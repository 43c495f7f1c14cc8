import APMatrixModel
import APMatrixTesting
import Testing

/// kernel-reference §8 vectors not covered by the topic suites (those carry
/// the vector number in their names: V1, V13, V14 in MaskTests; V2–V4, V6
/// in ParsingTests; V7, V17–V19 in AssignTests; V8–V10, V21 in FilterTests;
/// V11 in HotPlugTests; V12 in FirmwareTests; V20 in CreateTests), and the
/// seed's three-guest example.
@Suite struct VectorTests {
    @Test func v5BootParameters() throws {
        // ap.apmask=0xffff ap.aqmask=0x40, each parsed into an all-zero mask.
        guard case .success(let apmask) = KernelParse.apMask(b("0xffff"), current: Bitmap256<APID>()),
              case .success(let aqmask) = KernelParse.apMask(b("0x40"), current: Bitmap256<APQI>()) else {
            Issue.record("boot strings refused")
            return
        }
        #expect(apmask.hexString == "0xffff000000000000000000000000000000000000000000000000000000000000")
        #expect(aqmask.hexString == "0x4000000000000000000000000000000000000000000000000000000000000000")
        // Host pool = adapters 0-15 x domain 1.
        let h = try makeHost(adapters: [0, 15, 16], domains: [0, 1, 2], apmask: apmask, aqmask: aqmask)
        #expect(h.bound(to: .cex4queue) == ["00.0001", "0f.0001"])
        #expect(h.drv(16, 1) == "vfio_ap" && h.drv(0, 0) == "vfio_ap" && h.drv(15, 2) == "vfio_ap")
    }

    @Test func v15SeedUnassignDoesNotReplug() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.unbind(driver: "vfio_ap", b("06.0047"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n05.0047\n")
        try h.unassign(.domain, mdev: mdevA, b("0x47"))
        #expect(h.gm(mdevA) == "05.0004\n")
        #expect(h.resets(5, 0x47) == 1 && h.resets(6, 4) == 0)
    }

    // MARK: the seed's three-guest example (vfio-ap.rst "Example")

    /// Secures the queues (step 2), creates the three mdevs, assigns (step 4).
    func seedExampleHost() throws -> APHost {
        var h = try APHost(.seedExample)
        try h.storeMask(.apmask, b("-5,-6\n"))
        try h.storeMask(.aqmask, b("-4,-0x47,-0xab,-0xff\n"))
        try h.mk(mdevA)
        try h.assign(.adapter, mdev: mdevA, b("5"))
        try h.assign(.adapter, mdev: mdevA, b("6"))
        try h.assign(.domain, mdev: mdevA, b("4"))
        try h.assign(.domain, mdev: mdevA, b("0xab"))
        try h.mk(mdevB)
        try h.assign(.adapter, mdev: mdevB, b("5"))
        try h.assign(.domain, mdev: mdevB, b("0x47"))
        try h.assign(.domain, mdev: mdevB, b("0xff"))
        try h.mk(mdevC)
        try h.assign(.adapter, mdev: mdevC, b("6"))
        try h.assign(.domain, mdev: mdevC, b("0x47"))
        try h.assign(.domain, mdev: mdevC, b("0xff"))
        return h
    }

    @Test func seedExampleSecuring() throws {
        let h = try seedExampleHost()
        #expect(h.bus.apmask.hexString == "0xf9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")
        #expect(h.bus.aqmask.hexString == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe")
        for q in ["0004", "0047", "00ab", "00ff"] {
            for a in ["05", "06"] { #expect(h.bus.queues[APQN(sysfsName: "\(a).\(q)")!]?.driver == .vfioAP) }
        }
        // Adapters 4 and 7 keep every other domain for the host.
        #expect(h.drv(4, 0) == "cex4queue" && h.drv(7, 0x0f) == "cex4queue")
        #expect(h.drv(4, 4) == "vfio_ap" && h.drv(5, 0) == "vfio_ap")
        #expect(h.mx(mdevA) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
        #expect(h.mx(mdevB) == "05.0047\n05.00ff\n")
        #expect(h.mx(mdevC) == "06.0047\n06.00ff\n")
    }

    @Test func seedExampleThreeGuests() throws {
        var h = try seedExampleHost()
        try h.start("Guest1", mdev: mdevA, cpu: "host,ap=on,apqci=on,apft=on,apqi=on")
        try h.start("Guest2", mdev: mdevB, cpu: "host,ap=on,apqci=on,apft=on,apqi=on")
        try h.start("Guest3", mdev: mdevC, cpu: "host,ap=on,apqci=on,apft=on,apqi=on")
        #expect(h.gm(mdevA) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
        #expect(h.gm(mdevB) == "05.0047\n05.00ff\n")
        #expect(h.gm(mdevC) == "06.0047\n06.00ff\n")
        let g1 = try h.guestView("Guest1"), g2 = try h.guestView("Guest2"), g3 = try h.guestView("Guest3")
        #expect(g1.cards.map(\.id) == [5, 6])
        #expect(g1.queues.map(\.description) == ["05.0004", "05.00ab", "06.0004", "06.00ab"])
        #expect(g2.cards.map(\.id) == [5])
        #expect(g2.queues.map(\.description) == ["05.0047", "05.00ff"])
        #expect(g3.cards.map(\.id) == [6])
        #expect(g3.queues.map(\.description) == ["06.0047", "06.00ff"])
        // The mdev cannot be removed while its guest runs.
        #expect(errnoOf { try h.removeMdev(mdevA, b("1")) } == "EBUSY")
        // Shut Guest1 down, then the mdev may be removed.
        try h.stopGuest("Guest1")
        #expect(errnoOf { try h.removeMdev(mdevA, b("1")) } == nil)
        #expect(h.gm(mdevB) == "05.0047\n05.00ff\n")
    }

    @Test func seedExampleMaskChangeTakingAssignedQueues() throws {
        var h = try seedExampleHost()
        try h.start("Guest1", mdev: mdevA)
        // Giving adapters 5 and 6 back to the host reserves none of the
        // assigned APQNs (their domains are clear in aqmask).
        #expect(errnoOf { try h.storeMask(.apmask, b("+5,+6")) } == nil)
        #expect(h.gm(mdevA) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
        _ = h.takeEvents()
        let before = HostState(h)
        #expect(errnoOf { try h.storeMask(.aqmask, b("+4,+0x47,+0xab,+0xff")) } == "EADDRINUSE")
        #expect(h.kernelLines == [
            "Userspace may not re-assign queue 05.0004 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
            "Userspace may not re-assign queue 05.00ab already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
            "Userspace may not re-assign queue 06.0004 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
            "Userspace may not re-assign queue 06.00ab already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
            "Userspace may not re-assign queue 05.0047 already assigned to cef03c3c-903d-4ecc-9a83-40694cb8aee4",
            "Userspace may not re-assign queue 05.00ff already assigned to cef03c3c-903d-4ecc-9a83-40694cb8aee4",
            inUse("06.0047", mdevC), inUse("06.00ff", mdevC),
        ])
        #expect(HostState(h) == before)
        #expect(h.bus.aqmask.hexString == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe")
    }
}
