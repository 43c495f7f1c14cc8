import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §3 create / remove, kernel-reference §7, V20.
@Suite struct CreateTests {
    @Test func v20UppercaseIsStoredLowercase() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.createMdev(b("62177883-F1BB-47F0-914D-32A22E3A8804\n"))
        #expect(h.vfio.mdevs.keys.map(\.description) == ["62177883-f1bb-47f0-914d-32a22e3a8804"])
        let before = HostState(h)
        #expect(errnoOf { try h.createMdev(b("62177883-f1bb-47f0-914d-32a22e3a8804\n")) } == "EEXIST")
        #expect(errnoOf { try h.createMdev(b("62177883-F1BB-47F0-914D-32A22E3A8804")) } == "EEXIST")
        #expect(HostState(h) == before)
    }

    @Test(arguments: [
        "62177883-f1bb-47f0-914d-32a22e3a8804",      // 36 bytes, no newline
        "62177883-f1bb-47f0-914d-32a22e3a8804\n",    // 37
        "62177883-f1bb-47f0-914d-32a22e3a8804x",     // any 37th byte
        "62177883-f1bb-47f0-914d-32a22e3a8804 ",
    ])
    func accepted(_ input: String) throws {
        var h = try makeHost(adapters: [5], domains: [4])
        #expect(errnoOf { try h.createMdev(b(input)) } == nil)
        #expect(h.vfio.mdevs[mdevA] != nil)
    }

    @Test(arguments: [
        "62177883-f1bb-47f0-914d-32a22e3a880",        // 35 bytes
        "62177883-f1bb-47f0-914d-32a22e3a8804\n\n",   // 38 bytes
        "62177883f-1bb-47f0-914d-32a22e3a8804",       // dash at 9
        "62177883-f1bb47f0--914d-32a22e3a8804",       // dash at 17 instead of 13
        "62177883-f1bb-47f0-914d32a22e3a88-04",       // dash at 33 instead of 23
        "6217788--f1bb-47f0-914d-32a22e3a8804",
        "62177883_f1bb_47f0_914d_32a22e3a8804",
        "g2177883-f1bb-47f0-914d-32a22e3a8804",       // not hex
        "62177883-f1bb-47f0-914d-32a22e3a880 \n",
        "{2177883-f1bb-47f0-914d-32a22e3a8804}",
        "",
    ])
    func rejected(_ input: String) throws {
        var h = try makeHost(adapters: [5], domains: [4])
        let before = HostState(h)
        #expect(errnoOf { try h.createMdev(b(input)) } == "EINVAL")
        #expect(HostState(h) == before)
    }

    @Test func availableInstancesCountDownAndEPERM() throws {
        var h = try makeHost(adapters: [5], domains: [4], maxMdevs: 2)
        #expect(h.vfio.availableInstances == 2)
        try h.mk(mdevA)
        #expect(h.vfio.availableInstances == 1)
        try h.mk(mdevB)
        #expect(h.vfio.availableInstances == 0)
        let before = HostState(h)
        #expect(errnoOf { try h.mk(mdevC) } == "EPERM")
        // Order of the checks: EINVAL, then EEXIST, then EPERM.
        #expect(errnoOf { try h.createMdev(b("not-a-uuid")) } == "EINVAL")
        #expect(errnoOf { try h.mk(mdevA) } == "EEXIST")
        #expect(HostState(h) == before)
        try h.removeMdev(mdevA, b("1"))
        #expect(h.vfio.availableInstances == 1)
        #expect(errnoOf { try h.mk(mdevC) } == nil)
    }

    @Test func defaultInstanceCountIs65536() throws {
        var h = try APHost(.embeddedDefault)
        #expect(h.vfio.availableInstances == 65536)
        try h.mk(mdevA)
        #expect(h.vfio.availableInstances == 65535)
    }
}

@Suite struct RemoveTests {
    @Test func zeroDoesNothingEvenInUse() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        let idle = HostState(h)
        #expect(errnoOf { try h.removeMdev(mdevA, b("0")) } == nil)
        #expect(HostState(h) == idle)
        try h.start("g1", mdev: mdevA)
        let busy = HostState(h)
        #expect(errnoOf { try h.removeMdev(mdevA, b("0\n")) } == nil)
        #expect(errnoOf { try h.removeMdev(mdevA, b("00")) } == nil)
        #expect(HostState(h) == busy)
    }

    @Test func busyWhileAGuestUsesIt() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        let before = HostState(h)
        #expect(errnoOf { try h.removeMdev(mdevA, b("1")) } == "EBUSY")
        #expect(errnoOf { try h.removeMdev(mdevA, b("0x2\n")) } == "EBUSY")
        #expect(HostState(h) == before)
        _ = try h.unplugDevice("g1", id: "hostdev0")
        #expect(errnoOf { try h.removeMdev(mdevA, b("1")) } == nil)
        #expect(h.vfio.mdevs[mdevA] == nil)
    }

    @Test(arguments: ["", "x", "-1", " 1", "1 ", "08", "18446744073709551616", "99999999999999999999999", "1\n\n"])
    func parseErrorsAreEINVAL(_ input: String) throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        let before = HostState(h)
        #expect(errnoOf { try h.removeMdev(mdevA, b(input)) } == "EINVAL")
        #expect(HostState(h) == before)
    }

    @Test func removeResetsBoundQueuesAndFreesTheAPQNs() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5, 6, 9], domains: [4])     // 09.0004 does not exist
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        try h.removeMdev(mdevA, b("1\n"))
        #expect(h.vfio.mdevs[mdevA] == nil)
        #expect(h.resets(5, 4) == 1)
        #expect(h.resets(6, 4) == 0)
        #expect(h.resets(9, 4) == 0)
        try h.mk(mdevB, adapters: [5], domains: [4])
        #expect(h.mx(mdevB) == "05.0004\n")
    }

    @Test func removedMdevFreesItsIommuGroupAndUUID() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA)
        try h.mk(mdevB)
        #expect(h.vfio.mdevs[mdevA]?.iommuGroup == 0 && h.vfio.mdevs[mdevB]?.iommuGroup == 1)
        try h.removeMdev(mdevA, b("1"))
        try h.mk(mdevC)
        #expect(h.vfio.mdevs[mdevC]?.iommuGroup == 0)
        try h.mk(mdevA)
        #expect(h.vfio.mdevs[mdevA]?.iommuGroup == 2)
    }
}
