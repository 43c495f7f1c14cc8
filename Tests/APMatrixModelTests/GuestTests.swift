import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §4 CPU models (kernel-reference §6).
@Suite struct CPUModelTests {
    @Test func hostModelTakesWhatTheHostAllows() throws {
        let all = try CPUModel(parsing: "host", facilities: Facilities())
        #expect(all.ap && all.apqci && all.apft && all.apqi)
        let noAIV = try CPUModel(parsing: "host", facilities: Facilities(aiv: false))
        #expect(noAIV.ap && noAIV.apqci && noAIV.apft && !noAIV.apqi)
        let noAPFT = try CPUModel(parsing: "host", facilities: Facilities(apft: false))
        #expect(!noAPFT.apft && noAPFT.apqi)
    }

    @Test func otherModelsNeedExplicitFeatures() throws {
        let bare = try CPUModel(parsing: "z13", facilities: Facilities())
        #expect(!bare.ap && !bare.apqci && !bare.apft && !bare.apqi)
        let on = try CPUModel(parsing: "z13,ap=on,apqci=on,apft=on,apqi=on", facilities: Facilities())
        #expect(on.ap && on.apqci && on.apft && on.apqi)
        let off = try CPUModel(parsing: "host,ap=off,apqci=off,apft=off,apqi=off", facilities: Facilities())
        #expect(!off.ap && !off.apqci && !off.apft && !off.apqi)
    }

    @Test(arguments: ["host,foo=on", "host,ap", "host,ap=maybe", "", ",ap=on", "host,ap=on,", "ap=on"])
    func malformedIsRefused(_ text: String) {
        #expect(errnoOf { _ = try CPUModel(parsing: text, facilities: Facilities()) } != nil)
    }

    @Test func unknownFeatureIsNamed() {
        let e = errorOf { _ = try CPUModel(parsing: "host,apxx=on", facilities: Facilities()) }
        #expect(e?.errno.symbol == "EINVAL")
        #expect(e?.message.contains("apxx") == true)
    }

    @Test(arguments: [
        ("host,apqi=on", Facilities(apqi: false), "apqi"),
        ("host,apqi=on", Facilities(aiv: false), "aiv"),
        ("host,apft=on", Facilities(apft: false), "apft"),
        ("z13,ap=on,apqci=on", Facilities(qci: false), "qci"),
    ])
    func missingFacilityIsAnErrorNamingIt(_ text: String, _ f: Facilities, _ name: String) {
        let e = errorOf { _ = try CPUModel(parsing: text, facilities: f) }
        #expect(e != nil)
        #expect(e?.message.contains(name) == true)
    }

    @Test func appvAndAppviFollowTheSecureExecutionFacilities() throws {
        let all = try CPUModel(parsing: "host", facilities: Facilities())
        #expect(all.appv && all.appvi)
        #expect(all.description == "host,ap=on,apqci=on,apft=on,apqi=on,appv=on,appvi=on")
        let noPV = try CPUModel(parsing: "host", facilities: Facilities(pv: false))
        #expect(!noPV.appv && !noPV.appvi, "no Ultravisor, no Ultravisor features")
        let noAPPVI = try CPUModel(parsing: "host", facilities: Facilities(appvi: false))
        #expect(noAPPVI.appv && !noAPPVI.appvi)
        let bare = try CPUModel(parsing: "z16,ap=on,appv=on", facilities: Facilities())
        #expect(bare.description == "z16,ap=on,apqci=off,apft=off,apqi=off,appv=on,appvi=off")
    }

    @Test(arguments: [
        ("host,appv=on", Facilities(appv: false), "CPU feature appv is not available: the host lacks facility appv (Ultravisor feature bit 4)"),
        ("host,appv=on", Facilities(pv: false), "CPU feature appv is not available: the host lacks facility pv (protected virtualization)"),
        ("host,appvi=on", Facilities(appvi: false), "CPU feature appvi is not available: the host lacks facility appvi (Ultravisor feature bit 5)"),
    ])
    func missingSecureExecutionFacilityIsNamed(_ text: String, _ f: Facilities, _ message: String) {
        let e = errorOf { _ = try CPUModel(parsing: text, facilities: f) }
        #expect(e?.errno == .invalidArgument)
        #expect(e?.message == message)
    }

    /// QEMU's `check_consistency`: appv requires ap, appvi requires appv; a warning, the guest starts.
    @Test func dependenciesAreWarningsAsInQEMU() throws {
        #expect(try CPUModel(parsing: "host", facilities: Facilities()).warnings == [])
        #expect(try CPUModel(parsing: "host,ap=off", facilities: Facilities()).warnings == ["'appv' requires 'ap'."])
        #expect(try CPUModel(parsing: "z16,ap=on,appvi=on", facilities: Facilities()).warnings == ["'appvi' requires 'appv'."])
        var h = try makeHost(adapters: [5], domains: [4])
        try h.startGuest("g", cpu: CPUModel(parsing: "host,ap=off", facilities: h.firmware.facilities), device: nil, at: 0)
        #expect(h.events.map(\.line).contains("guest g: warning: 'appv' requires 'ap'."))
    }

    @Test func missingFacilityIsAStartError() throws {
        var h = try makeHost(adapters: [5], domains: [4], facilities: Facilities(apqi: false))
        try h.mk(mdevA, adapters: [5], domains: [4])
        #expect(errnoOf { try h.start("g1", mdev: mdevA, cpu: "host,apqi=on") } != nil)
        #expect(h.guests.isEmpty)
        #expect(h.vfio.mdevs[mdevA]?.guest == nil)
    }

    @Test func apOffWithADeviceIsRefused() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        let before = HostState(h)
        #expect(errnoOf { try h.start("g1", mdev: mdevA, cpu: "host,ap=off") } == "EINVAL")
        #expect(HostState(h) == before)
        // Without a device ap=off is fine, but no device can be plugged later.
        try h.startGuest("g2", cpu: CPUModel(parsing: "host,ap=off", facilities: h.firmware.facilities), device: nil, at: .boot)
        let d = VfioAPDevice(id: "hostdev0", mdev: mdevA, sysfsdev: "/sys/devices/vfio_ap/matrix/\(mdevA)")
        #expect(errnoOf { try h.plugDevice("g2", d) } == "EINVAL")
        #expect(h.vfio.mdevs[mdevA]?.guest == nil)
    }
}

/// SPEC §4 guest rules and SPEC §3 release.
@Suite struct GuestTests {
    func device(_ uuid: MdevUUID, id: String = "hostdev0") -> VfioAPDevice {
        VfioAPDevice(id: id, mdev: uuid, sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuid)")
    }

    @Test func anMdevIsUsedByAtMostOneGuest() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        let before = HostState(h)
        #expect(errnoOf { try h.start("g2", mdev: mdevA) } == "EBUSY")
        #expect(HostState(h) == before)
    }

    @Test func aGuestHasAtMostOneDevice() throws {
        var h = try makeHost(adapters: [5], domains: [4, 7])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.mk(mdevB, adapters: [5], domains: [7])
        try h.start("g1", mdev: mdevA)
        let before = HostState(h)
        #expect(errnoOf { try h.plugDevice("g1", device(mdevB, id: "hostdev1")) } != nil)
        #expect(HostState(h) == before)
    }

    @Test func guestNamesAreUnique() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.startGuest("g1", cpu: CPUModel(parsing: "host", facilities: h.firmware.facilities), device: nil, at: .boot)
        #expect(errnoOf { try h.startGuest("g1", cpu: CPUModel(parsing: "host", facilities: h.firmware.facilities), device: nil, at: .boot) } != nil)
    }

    @Test func guestMatrixIsENODEVWithoutAGuest() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        #expect(h.gm(mdevA) == "ENODEV")
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.stopGuest("g1")
        #expect(h.gm(mdevA) == "ENODEV")
    }

    @Test func releaseEmptiesTheShadowAndResetsEveryQueueThatWasInTheGuest() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 7], control: [4])
        try h.unbind(driver: "vfio_ap", b("06.0007"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n05.0007\n")
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == "g1")
        #expect(h.currentOwner(of: APQN(5, 4)) == .guest("g1"))
        try h.stopGuest("g1")
        #expect(h.shadow(mdevA) == Matrix())
        #expect(h.vfio.mdevs[mdevA]?.guest == nil)
        #expect(h.guests["g1"] == nil)
        #expect(h.resets(5, 4) == 1 && h.resets(5, 7) == 1)
        #expect(h.resets(6, 4) == 0 && h.resets(6, 7) == 0)
        #expect(h.firmware.records.values.allSatisfy { $0.holdsStateOf == nil })
        #expect(h.currentOwner(of: APQN(5, 4)) == QueueOwner.none)
    }

    @Test func unplugReleasesAndTheMdevIsFreeForAnotherGuest() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(errnoOf { _ = try h.unplugDevice("g1", id: "nosuch") } == "ENOENT")
        _ = try h.unplugDevice("g1", id: "hostdev0")
        #expect(h.guests["g1"]?.device == nil)
        #expect(h.crycb(of: "g1") == Matrix())
        #expect(h.resets(5, 4) == 1)
        try h.start("g2", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == "g2")
        // g1 can get it back after g2 lets go (hot plug of the whole mdev).
        try h.stopGuest("g2")
        try h.plugDevice("g1", device(mdevA))
        #expect(h.crycb(of: "g1").apm == ids([5]))
        #expect(h.resets(5, 4) == 2)
    }

    @Test func guestViewHonoursCPUFeatures() throws {
        var h = try makeHost(adapters: [5, 0x40], domains: [4, 0x47], control: [1, 0x20])
        try h.mk(mdevA, adapters: [5, 0x40], domains: [4, 0x47], control: [1, 0x20])
        try h.start("full", mdev: mdevA)
        let full = try h.guestView("full")
        #expect(full.cards.map(\.id) == [5, 0x40])
        #expect(full.queues.map(\.description) == ["05.0004", "05.0047", "40.0004", "40.0047"])
        #expect(full.controlDomains == ids([1, 0x20]))
        try h.stopGuest("full")
        try h.start("noqci", mdev: mdevA, cpu: "host,apqci=off")
        let noqci = try h.guestView("noqci")
        #expect(noqci.cards.map(\.id) == [5])
        #expect(noqci.queues.map(\.description) == ["05.0004"])
        #expect(noqci.controlDomains == ids([1]))
        try h.stopGuest("noqci")
        try h.start("noapft", mdev: mdevA, cpu: "host,apft=off")
        let noapft = try h.guestView("noapft")
        #expect(noapft.cards.isEmpty && noapft.queues.isEmpty)
    }
}
