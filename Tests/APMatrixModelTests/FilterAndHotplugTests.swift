import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §3 "Filtering" at guest attach.
@Suite struct FilterTests {
    @Test func byAPIDKeepsAdaptersWithEveryQueueBound() throws {
        var h = try makeHost(adapters: [5, 6, 7], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6, 7], domains: [4, 0x47], control: [4])
        try h.unbind(driver: "vfio_ap", b("06.0047"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n05.0047\n07.0004\n07.0047\n")
        #expect(h.shadow(mdevA).adm == ids([4]))
    }

    @Test func startsFromTheHostConfiguration() throws {
        // Adapter 9 and domain 0x80 are over-provisioned: not in H, ignored.
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5, 9], domains: [4, 0x80])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
    }

    @Test func v9SeedAPQIFallback() throws {
        // Bound: 04.0004 04.0047 04.0054 05.0005 05.0047 05.0054; mdev {4,5} x {4,5,0x47,0x54}.
        var h = try makeHost(adapters: [4, 5], domains: [4, 5, 0x47, 0x54],
                             restrictions: [4: [4, 0x47, 0x54], 5: [5, 0x47, 0x54]])
        #expect(h.bound(to: .vfioAP) == ["04.0004", "04.0047", "04.0054", "05.0005", "05.0047", "05.0054"])
        try h.mk(mdevA, adapters: [4, 5], domains: [4, 5, 0x47, 0x54])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "04.0047\n04.0054\n05.0047\n05.0054\n")
    }

    @Test func apqiFallbackKeepsAllKeptAdapters() throws {
        // Both adapters miss domain 4 in some way, only domain 0x47 is complete.
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.unbind(driver: "vfio_ap", b("05.0004"))
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0047\n06.0047\n")
    }

    @Test func neitherPassKeepsAnythingSoSIsEmpty() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47], control: [3])
        try h.unbind(driver: "vfio_ap", b("05.0004"))
        try h.unbind(driver: "vfio_ap", b("06.0047"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "")
        #expect(h.shadow(mdevA).apm.isEmpty && h.shadow(mdevA).aqm.isEmpty)
        #expect(h.shadow(mdevA).adm == ids([3]))
    }

    @Test func v10AdapterWithoutDomainsGivesEmptyShadow() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "")
        try h.mk(mdevB, domains: [4])
        try h.start("g2", mdev: mdevB)
        #expect(h.gm(mdevB) == "")
    }

    @Test func cex3AdapterIsFilteredOut() throws {
        // SPEC §1: a CEX3 adapter counts in H but has no queue devices.
        var h = try makeHost(adapters: [3, 5], domains: [4, 7], types: [3: "CEX3C"])
        #expect(h.firmware.hostConfiguration.apm == ids([3, 5]))
        try h.mk(mdevA, adapters: [3, 5], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.mk(mdevB, adapters: [3], domains: [7])
        try h.start("g2", mdev: mdevB)
        #expect(h.gm(mdevB) == "")
    }

    @Test func v21SeedControlDomainsAreNotFiltered() throws {
        // H.adm = {4}; assigned {4,5}: seed guest ADM = {4,5}.
        var h = try makeHost(adapters: [5], domains: [4], control: [4])
        try h.mk(mdevA, adapters: [5], domains: [4], control: [4, 5])
        try h.start("g1", mdev: mdevA)
        #expect(h.shadow(mdevA).adm == ids([4, 5]))
        #expect(h.crycb(of: "g1").adm == ids([4, 5]))
    }

    @Test func v8SeedGuestMatrixNeedsAGuest() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0xab])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0xab])
        try h.unbind(driver: "vfio_ap", b("06.00ab"))
        #expect(h.gm(mdevA) == "ENODEV")
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n05.00ab\n")
    }
}

/// SPEC §3 "Hot plug" while a guest uses the mdev.
@Suite struct HotPlugTests {
    // MARK: adapter rule

    @Test func adapterWithEmptyShadowPlugsAllOrNothing() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 5])
        try h.mk(mdevA, domains: [4, 5])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "")
        // 06.0005 unbound: adapter 6 cannot bring every domain, nothing is plugged.
        try h.unbind(driver: "vfio_ap", b("06.0005"))
        try h.assign(.adapter, mdev: mdevA, b("6"))
        #expect(h.gm(mdevA) == "")
        // Adapter 5 has every queue bound: it is plugged with every domain of M.aqm ∩ H.aqm.
        try h.assign(.adapter, mdev: mdevA, b("5"))
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n")
    }

    @Test func adapterWithEmptyShadowUsesOnlyDomainsInH() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, domains: [4, 0x80])   // 0x80 is not in H
        try h.start("g1", mdev: mdevA)
        try h.assign(.adapter, mdev: mdevA, b("5"))
        #expect(h.gm(mdevA) == "05.0004\n")
    }

    @Test func adapterWithEmptyShadowAndNoDomainInHIsNotPlugged() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, domains: [0x80])
        try h.start("g1", mdev: mdevA)
        try h.assign(.adapter, mdev: mdevA, b("5"))
        #expect(h.gm(mdevA) == "")
    }

    @Test func adapterWithPluggedDomainsChecksOnlySAqm() throws {
        // M = {5} x {4,5}, 05.0005 unbound -> APQI fallback S = {5} x {4}.
        var h = try makeHost(adapters: [5, 6], domains: [4, 5])
        try h.mk(mdevA, adapters: [5], domains: [4, 5])
        try h.unbind(driver: "vfio_ap", b("05.0005"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        // 06.0005 unbound too; adapter 6 only needs 06.0004 (S.aqm = {4}).
        try h.unbind(driver: "vfio_ap", b("06.0005"))
        try h.assign(.adapter, mdev: mdevA, b("6"))
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    @Test func adapterWithPluggedDomainsNeedsEveryQueueOfSAqm() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 5])
        try h.mk(mdevA, adapters: [5], domains: [4, 5])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n")
        try h.unbind(driver: "vfio_ap", b("06.0005"))
        try h.assign(.adapter, mdev: mdevA, b("6"))
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n")
        #expect(h.mx(mdevA) == "05.0004\n05.0005\n06.0004\n06.0005\n")
    }

    @Test func adapterNotInHIsNotPlugged() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.assign(.adapter, mdev: mdevA, b("9"))
        #expect(h.gm(mdevA) == "05.0004\n")
    }

    // MARK: domain rule

    @Test func domainWithEmptyShadowPlugsAllOrNothing() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 5])
        try h.mk(mdevA, adapters: [5, 6, 9])   // 9 not in H
        try h.start("g1", mdev: mdevA)
        try h.unbind(driver: "vfio_ap", b("06.0005"))
        try h.assign(.domain, mdev: mdevA, b("5"))
        #expect(h.gm(mdevA) == "")
        try h.assign(.domain, mdev: mdevA, b("4"))
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    @Test func domainWithPluggedAdaptersNeedsEveryQueueOfSApm() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 5, 6])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.unbind(driver: "vfio_ap", b("06.0005"))
        try h.assign(.domain, mdev: mdevA, b("5"))
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
        try h.assign(.domain, mdev: mdevA, b("6"))
        #expect(h.gm(mdevA) == "05.0004\n05.0006\n06.0004\n06.0006\n")
    }

    @Test func v11SeedDomainNotPluggedWhenAQueueIsUnbound() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
        try h.unbind(driver: "vfio_ap", b("06.0047"))
        #expect(errnoOf { try h.assign(.domain, mdev: mdevA, b("0x47")) } == nil)
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
        #expect(h.resets(6, 4) == 0)
    }

    @Test func domainNotInHIsNotPlugged() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.assign(.domain, mdev: mdevA, b("0x80"))
        #expect(h.gm(mdevA) == "05.0004\n")
    }

    // MARK: control domains

    @Test func controlDomainsAlwaysPlugged() throws {
        var h = try makeHost(adapters: [5], domains: [4], control: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.assign(.controlDomain, mdev: mdevA, b("0x99"))   // not in H.adm
        #expect(h.crycb(of: "g1").adm == ids([0x99]))
        try h.mk(mdevB, control: [7])
        try h.start("g2", mdev: mdevB)
        try h.assign(.controlDomain, mdev: mdevB, b("8"))       // S empty for usage: still plugged
        #expect(h.crycb(of: "g2").adm == ids([7, 8]))
        try h.unassign(.controlDomain, mdev: mdevB, b("7"))
        #expect(h.crycb(of: "g2").adm == ids([8]))
    }

    // MARK: unassign with a guest

    @Test func unassignRemovesFromShadowAndResets() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.start("g1", mdev: mdevA)
        try h.unassign(.adapter, mdev: mdevA, b("5"))
        #expect(h.gm(mdevA) == "06.0004\n06.0047\n")
        #expect(h.resets(5, 4) == 1 && h.resets(5, 0x47) == 1)
        #expect(h.resets(6, 4) == 0 && h.resets(6, 0x47) == 0)
        try h.unassign(.domain, mdev: mdevA, b("4"))
        #expect(h.gm(mdevA) == "06.0047\n")
        #expect(h.resets(6, 4) == 1 && h.resets(6, 0x47) == 0)
    }

    @Test func unassignEmptyRule() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5, 6], domains: [4], control: [1])
        try h.start("g1", mdev: mdevA)
        try h.unassign(.domain, mdev: mdevA, b("4"))
        #expect(h.shadow(mdevA).apm.isEmpty && h.shadow(mdevA).aqm.isEmpty)
        #expect(h.shadow(mdevA).adm == ids([1]))
        #expect(h.resets(5, 4) == 1 && h.resets(6, 4) == 1)
        // The adapters stay assigned; re-assigning the domain plugs it again (S empty rule).
        try h.assign(.domain, mdev: mdevA, b("4"))
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    @Test func unassignLastAdapterEmptiesDomainsToo() throws {
        var h = try makeHost(adapters: [5], domains: [4, 7])
        try h.mk(mdevA, adapters: [5], domains: [4, 7])
        try h.start("g1", mdev: mdevA)
        try h.unassign(.adapter, mdev: mdevA, b("5"))
        #expect(h.gm(mdevA) == "")
        #expect(h.shadow(mdevA).aqm.isEmpty)
        #expect(h.resets(5, 4) == 1 && h.resets(5, 7) == 1)
    }

    @Test func unassignOfAFilteredIdChangesNoShadow() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        try h.start("g1", mdev: mdevA)
        try h.unassign(.adapter, mdev: mdevA, b("6"))
        #expect(h.gm(mdevA) == "05.0004\n")
        #expect(h.resets(5, 4) == 0 && h.resets(6, 4) == 0)
    }

    // MARK: probe: bind and mask change

    @Test func bindProbesTheAdapterRule() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.bind(driver: "vfio_ap", b("06.0004\n"))
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    @Test func bindProbesTheDomainRule() throws {
        var h = try makeHost(adapters: [5], domains: [4, 5])
        try h.mk(mdevA, adapters: [5], domains: [4, 5])
        try h.unbind(driver: "vfio_ap", b("05.0005"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.bind(driver: "vfio_ap", b("05.0005"))
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n")
    }

    @Test func bindIntoAnEmptyShadow() throws {
        var h = try makeHost(adapters: [5], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.unbind(driver: "vfio_ap", b("05.0004"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "")
        try h.bind(driver: "vfio_ap", b("05.0004"))
        #expect(h.gm(mdevA) == "05.0004\n")
    }

    @Test func maskChangeProbesRebindQueues() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4], apmask: ids([0x10]), aqmask: .all)
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "05.0004\n")
        try h.storeMask(.apmask, b("-0x10"))   // any change rebinds 06.0004 to vfio_ap
        #expect(h.drv(6, 4) == "vfio_ap")
        #expect(h.gm(mdevA) == "05.0004\n06.0004\n")
    }

    @Test func maskChangeProbesIntoEmptyShadowInAscendingOrder() throws {
        // Neither pass keeps anything: 05.0005 and 06.0004 unbound.
        var h = try makeHost(adapters: [5, 6], domains: [4, 5], apmask: ids([0x10]), aqmask: .all)
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 5])
        try h.unbind(driver: "vfio_ap", b("05.0005"))
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        try h.start("g1", mdev: mdevA)
        #expect(h.gm(mdevA) == "")
        try h.storeMask(.apmask, b("-0x10"))
        #expect(h.gm(mdevA) == "05.0004\n05.0005\n06.0004\n06.0005\n")
    }

    // MARK: unbind

    @Test func unbindUnplugsTheWholeAdapterAndResetsItsQueues() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0x47])
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.start("g1", mdev: mdevA)
        try h.unbind(driver: "vfio_ap", b("05.0047"))
        #expect(h.gm(mdevA) == "06.0004\n06.0047\n")
        #expect(h.resets(5, 4) == 1 && h.resets(5, 0x47) == 1)
        #expect(h.resets(6, 4) == 0 && h.resets(6, 0x47) == 0)
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == nil)
        #expect(h.firmware.records[APQN(6, 4)]?.holdsStateOf == "g1")
        // The last adapter: S becomes empty.
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        #expect(h.gm(mdevA) == "")
        #expect(h.resets(6, 4) == 1 && h.resets(6, 0x47) == 1)
    }

    @Test func unbindOfAQueueNotInTheShadowChangesNoGuest() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4])
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        #expect(h.gm(mdevA) == "05.0004\n")
        #expect(h.resets(5, 4) == 0)
    }
}
