import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §3 assign_adapter / assign_domain steps 1–6, assign_control_domain, unassign_*.
@Suite struct AssignTests {
    // MARK: step 3: already assigned

    @Test func alreadyAssignedIsSuccessWithNothingElse() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4], control: [4])
        _ = h.takeEvents()
        let before = HostState(h)
        for target in AssignTarget.allCases {
            #expect(errnoOf { try h.assign(target, mdev: mdevA, b(target == .adapter ? "0x5" : "04\n")) } == nil)
        }
        #expect(HostState(h) == before)
        #expect(h.events.isEmpty)
    }

    @Test func reassigningAnAssignedAdapterDoesNotReplugIt() throws {
        // V15 start state (seed profile): 06.0047 not bound, so adapter 6 is
        // filtered. After unassigning 0x47, re-assigning adapter 6 is step 3:
        // success, nothing else; it must not run the hot plug rule.
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.unbind(driver: "vfio_ap", b("06.0047"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n05.0047\n")
        try h.unassign(.domain, mdev: mdevA, b("0x47"))
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.assign(.adapter, mdev: mdevA, b("6"))
        #expect(h.gm(mdevA) == "05.0004\n")
    }

    // MARK: step 4: reserved (EADDRNOTAVAIL)

    @Test func v18HostReservationOnAssign() throws {
        // Masks all ones except apmask bit 5.
        var h = try makeHost(adapters: [5, 6], domains: [4], apmask: Bitmap256.all.subtracting(ids([5])), aqmask: .all)
        try h.mk(mdevA, adapters: [5])
        #expect(errnoOf { try h.assign(.domain, mdev: mdevA, b("4")) } == nil)
        try h.mk(mdevB)
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevB, b("6")) } == nil)   // no domains: cannot fail
        let before = HostState(h)
        #expect(errnoOf { try h.assign(.domain, mdev: mdevB, b("4")) } == "EADDRNOTAVAIL")
        #expect(HostState(h) == before)
        #expect(h.mx(mdevB) == "06.\n")
    }

    @Test func reservedAdapterRowIsEADDRNOTAVAIL() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7], apmask: ids([6]), aqmask: ids([7]))
        try h.mk(mdevA, domains: [4, 7])
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("5")) } == nil)
        let before = HostState(h)
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("6")) } == "EADDRNOTAVAIL")   // 06.0007 reserved
        #expect(HostState(h) == before)
    }

    @Test func reservationIsCheckedBeforeSharing() throws {
        // aqmask reserves domain 4 (apmask all ones); domain 7 is free.
        var h = try makeHost(adapters: [5], domains: [4, 7], apmask: .all, aqmask: Bitmap256.all.subtracting(ids([7])))
        try h.mk(mdevA, adapters: [5], domains: [7])
        try h.mk(mdevB, domains: [4, 7])
        _ = h.takeEvents()
        // (5,4) is reserved and (5,7) belongs to A: step 4 wins, nothing is logged.
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevB, b("5")) } == "EADDRNOTAVAIL")
        #expect(h.kernelLines.isEmpty)
    }

    @Test func reservationIsMaskBasedNotDeviceBased() throws {
        // A reserved APQN whose queue does not exist is still refused.
        var h = try makeHost(adapters: [5], domains: [4], apmask: ids([9]), aqmask: ids([4]))
        try h.mk(mdevA, domains: [4])
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("9")) } == "EADDRNOTAVAIL")
    }

    // MARK: step 5: sharing (EADDRINUSE)

    @Test func v17SharingOnAssign() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.mk(mdevB, domains: [4])
        _ = h.takeEvents()
        let before = HostState(h)
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevB, b("5")) } == "EADDRINUSE")
        #expect(h.kernelLines == [
            "Userspace may not re-assign queue 05.0004 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
        ])
        #expect(HostState(h) == before)
        #expect(h.mx(mdevB) == ".0004\n")
        // Control domains may be shared.
        #expect(errnoOf { try h.assign(.controlDomain, mdev: mdevA, b("4")) } == nil)
        #expect(errnoOf { try h.assign(.controlDomain, mdev: mdevB, b("4")) } == nil)
    }

    @Test func sharingOnAssignDomainLogsEachAPQNWithItsOwner() throws {
        var h = try makeHost(adapters: [4, 5, 6], domains: [4])
        try h.mk(mdevA, adapters: [4], domains: [4])
        try h.mk(mdevC, adapters: [6], domains: [4])
        try h.mk(mdevB, adapters: [4, 5, 6])
        _ = h.takeEvents()
        let before = HostState(h)
        #expect(errnoOf { try h.assign(.domain, mdev: mdevB, b("4")) } == "EADDRINUSE")
        #expect(h.kernelLines == [inUse("04.0004", mdevA), inUse("06.0004", mdevC)])
        #expect(HostState(h) == before)
    }

    @Test func sharingIsCheckedForOverProvisionedIds() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [0x20], domains: [0x99])
        try h.mk(mdevB, adapters: [0x20])
        #expect(errnoOf { try h.assign(.domain, mdev: mdevB, b("0x99")) } == "EADDRINUSE")
    }

    @Test func noAPQNNoConflict() throws {
        // Two mdevs may share an adapter as long as they have no APQN in common.
        var h = try makeHost(adapters: [5], domains: [4, 7])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.mk(mdevB, adapters: [5], domains: [7])
        #expect(h.mx(mdevA) == "05.0004\n" && h.mx(mdevB) == "05.0007\n")
    }

    // MARK: step 6 and over-provisioning

    @Test func overProvisioningIsAllowed() throws {
        // Ids not in the LPAR, and ids of queues that do not exist.
        var h = try makeHost(adapters: [5], domains: [4], restrictions: [5: [4]])
        try h.mk(mdevA)
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("0x20")) } == nil)
        #expect(errnoOf { try h.assign(.domain, mdev: mdevA, b("0x99")) } == nil)
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("5")) } == nil)
        #expect(h.mx(mdevA) == "05.0099\n20.0099\n")
    }

    @Test func v7MatrixFormats() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0xab, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0xab], control: [4, 0xab])
        #expect(h.mx(mdevA) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
        #expect(h.vfio.mdevs[mdevA]!.matrix.controlDomainsText() == "0004\n00ab\n")
        try h.mk(mdevB, adapters: [5])
        #expect(h.mx(mdevB) == "05.\n")
        try h.mk(mdevC, domains: [0x47])
        #expect(h.mx(mdevC) == ".0047\n")
        #expect(Matrix().matrixText() == "")
    }

    // MARK: assign_control_domain

    @Test func controlDomainsAreNotCheckedAgainstMasksOrOtherMdevs() throws {
        var h = try makeHost(adapters: [5], domains: [4], apmask: .all, aqmask: .all)
        try h.mk(mdevA, control: [4, 0xff])
        try h.mk(mdevB, control: [4])
        #expect(h.vfio.mdevs[mdevA]?.matrix.adm == ids([4, 0xff]))
        #expect(h.vfio.mdevs[mdevB]?.matrix.adm == ids([4]))
        #expect(errnoOf { try h.assign(.controlDomain, mdev: mdevA, b("256")) } == "ENODEV")
    }

    // MARK: unassign

    @Test func unassignClears() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 7], control: [1, 2])
        try h.unassign(.adapter, mdev: mdevA, b("6\n"))
        try h.unassign(.domain, mdev: mdevA, b("0x7"))
        try h.unassign(.controlDomain, mdev: mdevA, b("01"))
        #expect(h.mx(mdevA) == "05.0004\n")
        #expect(h.vfio.mdevs[mdevA]?.matrix.adm == ids([2]))
    }

    @Test func v19UnassigningAnUnassignedIdIsANoOp() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        _ = h.takeEvents()
        let before = HostState(h)
        for target in AssignTarget.allCases {
            #expect(errnoOf { try h.unassign(target, mdev: mdevA, b("9")) } == nil)
        }
        #expect(HostState(h) == before)
        #expect(h.events.isEmpty)
    }

    @Test func unassignedAPQNCanBeTakenByAnotherMdev() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.mk(mdevB, domains: [4])
        try h.unassign(.adapter, mdev: mdevA, b("5"))
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevB, b("5")) } == nil)
        #expect(h.mx(mdevB) == "05.0004\n")
    }
}
