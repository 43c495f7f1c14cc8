import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §1 host (firmware) events and SPEC §3 "a firmware change … is applied as a whole".
@Suite struct FirmwareTests {
    let cex8c = AdapterType("CEX8C")!

    // MARK: card config

    @Test func configZeroDeconfiguresAndUnplugs() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
        try h.storeCardConfig(5, b("0\n"))
        #expect(h.firmware.adapters[5]?.configured == false)
        #expect(h.bus.cards[5] != nil)                       // the card stays
        #expect(h.drv(5, 4) == "absent")                 // its queues go
        #expect(h.firmware.hostConfiguration.apm == ids([6]))
        #expect(h.gm(mdevA) == "06.0004\n")
        #expect(h.resets(5, 4) == 1 && h.resets(6, 4) == 0)
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == nil)
        #expect(h.mx(mdevA) == "05.0004\n06.0004\n")    // the assignment is kept
    }

    @Test func configOneBringsTheAdapterBack() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.storeCardConfig(5, b("0"))
        try h.storeCardConfig(5, b("1"))
        #expect(h.drv(5, 4) == "vfio_ap")
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == "g1")
    }

    @Test func configZeroOfTheLastAdapterEmptiesTheShadow() throws {
        var h = try makeHost(adapters: [5], domains: [4, 7])
        try h.mk(mdevA, adapters: [5], domains: [4, 7], control: [2])
        try h.start("g1", mdev: mdevA)
        try h.storeCardConfig(5, b("0"))
        #expect(h.gm(mdevA) == "")
        #expect(h.shadow(mdevA).aqm.isEmpty)
        #expect(h.resets(5, 4) == 1 && h.resets(5, 7) == 1)
    }

    @Test func overProvisionedDeconfiguredAdapterIsPluggedWhenConfigured() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4], deconfigured: [6])
        #expect(h.bus.cards[6] != nil && h.drv(6, 4) == "absent")
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.storeCardConfig(6, b("1"))
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    @Test func writingTheCurrentConfigChangesNothing() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4], deconfigured: [6])
        try h.unbind(driver: "vfio_ap", b("05.0004"))
        let before = HostState(h)
        try h.storeCardConfig(5, b("1"))
        try h.storeCardConfig(6, b("0"))
        #expect(HostState(h) == before)
        #expect(h.drv(5, 4) == "none")
    }

    @Test func recreatedQueueForgetsItWasUnbound() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4], apmask: ids([6]), aqmask: .all)
        try h.unbind(driver: "vfio_ap", b("05.0004"))
        try h.unbind(driver: "cex4queue", b("06.0004"))
        try h.storeCardConfig(5, b("0"))
        try h.storeCardConfig(5, b("1"))
        try h.storeCardConfig(6, b("0"))
        try h.storeCardConfig(6, b("1"))
        #expect(h.drv(5, 4) == "vfio_ap")
        #expect(h.drv(6, 4) == "cex4queue")
    }

    // MARK: adapters added to / removed from the LPAR

    @Test func addAdapterErrors() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7], deconfigured: [6])
        let before = HostState(h)
        #expect(errnoOf { try h.addAdapter(5, type: cex8c) } == "EEXIST")
        #expect(errnoOf { try h.addAdapter(6, type: cex8c) } == "EEXIST")     // deconfigured, still in the LPAR
        #expect(errnoOf { try h.addAdapter(7, type: cex8c, domains: ids([4, 8])) } == "EINVAL")
        #expect(HostState(h) == before)
        // 256 is no APID: the edges refuse it before the model (the id types hold 0-255).
        #expect(throws: IdList.ParseError.outOfRange(256, max: 255)) { try APID(parsing: "256") }
        var legacy = try makeHost(adapters: [5], domains: [4], apxa: false)
        #expect(errnoOf { try legacy.addAdapter(64, type: cex8c) } == "EINVAL")
    }

    @Test func addedAdapterArrivesConfiguredWithBoundQueues() throws {
        var h = try makeHost(adapters: [5], domains: [4, 7], apmask: ids([8]), aqmask: ids([7]))
        try h.addAdapter(8, type: cex8c)
        #expect(h.firmware.adapters[8]?.configured == true)
        #expect(h.bus.cards[8] != nil)
        #expect(h.drv(8, 4) == "vfio_ap" && h.drv(8, 7) == "cex4queue")
        try h.addAdapter(9, type: cex8c, domains: ids([7]))
        #expect(h.drv(9, 7) == "vfio_ap" && h.drv(9, 4) == "absent")
        try h.addAdapter(3, type: AdapterType("CEX3A")!)
        #expect(h.bus.cards[3] == nil && h.drv(3, 4) == "absent")
        #expect(h.firmware.hostConfiguration.apm == ids([3, 5, 8, 9]))
    }

    @Test func v12SeedOverProvisioningAutoPlug() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [7], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "")                       // seed attach-time result: empty
        try h.addAdapter(7, type: cex8c)
        #expect(h.drv(7, 4) == "vfio_ap")
        #expect(h.gm(mdevA) == "07.0004\n")
        #expect(h.crycb(of: "g1").apm == ids([7]))
    }

    @Test func addedAdapterIsPluggedAllOrNothing() throws {
        var h = try makeHost(adapters: [5], domains: [4, 5])
        try h.mk(mdevA, adapters: [7], domains: [4, 5])
        try h.start("g1", mdev: mdevA)
        try h.addAdapter(7, type: cex8c, domains: ids([4]))   // 07.0005 does not exist
        #expect(h.gm(mdevA) == "")
    }

    @Test func addedAdapterNeedsEveryQueueOfSAqm() throws {
        var h = try makeHost(adapters: [5], domains: [4, 5])
        try h.mk(mdevA, adapters: [5, 7, 8], domains: [4, 5])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n")
        try h.addAdapter(7, type: cex8c, domains: ids([4]))
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n")
        try h.addAdapter(8, type: cex8c)
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n08.0004\n08.0005\n")
    }

    @Test func removeAdapter() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        let before = HostState(h)
        #expect(errnoOf { try h.removeAdapter(9) } == "ENOENT")
        #expect(HostState(h) == before)
        try h.removeAdapter(6)
        #expect(h.bus.cards[6] == nil && h.firmware.adapters[6] == nil && h.drv(6, 4) == "absent")
        #expect(h.gm(mdevA) == "05.0004\n")
        #expect(h.resets(6, 4) == 1 && h.resets(5, 4) == 0)
        #expect(errnoOf { try h.removeAdapter(6) } == "ENOENT")
        try h.addAdapter(6, type: cex8c)
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    // MARK: usage domains added to / removed from the LPAR

    @Test func domainErrors() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        let before = HostState(h)
        #expect(errnoOf { try h.addDomain(4) } == "EEXIST")
        #expect(errnoOf { try h.removeDomain(5) } == "ENOENT")
        #expect(HostState(h) == before)
        #expect(throws: IdList.ParseError.outOfRange(256, max: 255)) { try APQI(parsing: "256") }
        var legacy = try makeHost(adapters: [5], domains: [4], apxa: false)
        #expect(errnoOf { try legacy.addDomain(16) } == "EINVAL")
    }

    @Test func removeDomainUnplugsTheDomainNotTheAdapters() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.start("g1", mdev: mdevA)
        try h.removeDomain(0x47)
        #expect(h.drv(5, 0x47) == "absent" && h.drv(6, 0x47) == "absent")
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
        #expect(h.resets(5, 0x47) == 1 && h.resets(6, 0x47) == 1)
        #expect(h.resets(5, 4) == 0 && h.resets(6, 4) == 0)
        try h.addDomain(0x47)
        #expect(h.gm(mdevA) == "05.0004\n05.0047\n06.0004\n06.0047\n")
    }

    @Test func removeLastDomainEmptiesTheShadow() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.removeDomain(4)
        #expect(h.gm(mdevA) == "")
        #expect(h.shadow(mdevA).apm.isEmpty)
        #expect(h.resets(5, 4) == 1 && h.resets(6, 4) == 1)
        try h.addDomain(4)                                   // domain rule with S.apm empty
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    @Test func addDomainPlugsOverProvisionedDomain() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4, 0x50])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.addDomain(0x50)
        #expect(h.drv(5, 0x50) == "vfio_ap")
        #expect(h.gm(mdevA) == "05.0004\n05.0050\n")
    }

    @Test func addDomainIntoEmptyShadowNeedsEveryAdapter() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4], restrictions: [6: [4]])
        try h.mk(mdevA, adapters: [5, 6], domains: [0x50])
        try h.start("g1", mdev: mdevA)
        // Adapter 6 is restricted to domain 4: 06.0050 will not exist.
        #expect(errnoOf { try h.addDomain(0x50) } == nil)
        #expect(h.drv(5, 0x50) == "vfio_ap" && h.drv(6, 0x50) == "absent")
        #expect(h.gm(mdevA) == "")
    }

    @Test func restrictionIsAFixedPropertyOfTheAdapter() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7], restrictions: [5: [4]])
        #expect(h.drv(5, 7) == "absent" && h.drv(6, 7) == "vfio_ap")
        try h.removeDomain(4)
        #expect(h.drv(5, 4) == "absent" && h.drv(6, 4) == "absent")
        try h.addDomain(4)
        #expect(h.drv(5, 4) == "vfio_ap" && h.drv(6, 4) == "vfio_ap")
        try h.removeDomain(7)
        try h.addDomain(7)
        #expect(h.drv(5, 7) == "absent" && h.drv(6, 7) == "vfio_ap")
    }

    @Test func firmwareChangeUpdatesEveryMdevInUse() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7])
        try h.mk(mdevA, adapters: [5], domains: [4, 7])
        try h.mk(mdevB, adapters: [6], domains: [4])
        try h.mk(mdevC, adapters: [6], domains: [7])   // no guest
        try h.start("g1", mdev: mdevA)
        try h.start("g2", mdev: mdevB)
        try h.removeDomain(4)
        #expect(h.gm(mdevA) == "05.0007\n")
        #expect(h.gm(mdevB) == "")
        #expect(h.gm(mdevC) == "ENODEV")
        try h.addDomain(4)
        #expect(h.gm(mdevA) == "05.0004\n05.0007\n")
        #expect(h.gm(mdevB) == "06.0004\n")
        #expect(h.shadow(mdevC) == Matrix())
    }
}
