import APMatrixModel
import APMatrixTesting
import Testing

// The worked vectors of kernel-reference §8 in their upstream form, each
// beside its seed form, and the quirks §4.5 and §9 document. Vectors whose
// result is the same in both profiles (parsing and formats: V1–V6, V18,
// V19) are run on both.

/// The two profiles' results of one scenario.
struct Both<T: Equatable>: Equatable {
    var seed: T
    var upstream: T
}

func both<T: Equatable>(_ scenario: (Profile) throws -> T) rethrows -> Both<T> {
    Both(seed: try scenario(.seed), upstream: try scenario(.upstream))
}

/// Unbinds queue (a,q) from vfio_ap (`echo aa.qqqq > drivers/vfio_ap/unbind`).
extension APHost {
    mutating func unbindVfio(_ a: APID, _ q: APQI) throws(APError) {
        try unbind(driver: "vfio_ap", b(APQN(a, q).description))
    }
}

@Suite struct ProfileVectorTests {
    @Test(arguments: Profile.allCases) func v1ToV6AreTheSameInBothProfiles(_ profile: Profile) throws {
        var h = try makeHost(adapters: [5], domains: [4], apmask: .all, aqmask: .all, profile: profile)
        try h.storeMask(.apmask, b("0x7d00000000000000000000000000000000000000000000000000000000000000"))
        try h.storeMask(.aqmask, b("0x8000000000000000000000000000000000000000000000000000000000000000"))
        #expect(h.bus.isReserved(APQN(5, 0)) && !h.bus.isReserved(APQN(6, 0)) && !h.bus.isReserved(APQN(1, 1)))
        try h.storeMask(.apmask, b("0x41"))
        #expect(h.bus.apmask.hexString == "0x4100000000000000000000000000000000000000000000000000000000000000")
        #expect(errnoOf { try h.storeMask(.apmask, b("0X41")) } == "EINVAL")
        #expect(errnoOf { try h.storeMask(.apmask, b("+1, +2")) } == "EINVAL")
        try h.createMdev(b(mdevA))
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("08")) } == "EINVAL")
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("18446744073709551616")) } == "ERANGE")
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("256")) } == "ENODEV")
        try h.assign(.adapter, mdev: mdevA, b("010"))
        #expect(h.mx(mdevA) == "08.\n")
    }

    @Test func v7APConfigFormatIsUpstreamOnly() throws {
        let r = try both { p -> String? in
            var h = try makeHost(adapters: [5, 6], domains: [4, 0xab], profile: p)
            try h.mk(mdevA, adapters: [5, 6], domains: [4, 0xab], control: [4])
            #expect(h.mx(mdevA) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
            guard h.hasUpstreamAttributes else { return nil }
            let a = h.vfio.mdevs[mdevA]!.matrix
            return [a.apm.hexString, a.aqm.hexString, a.adm.hexString].joined(separator: ",") + "\n"
        }
        #expect(r.seed == nil)
        #expect(r.upstream == "0x0600000000000000000000000000000000000000000000000000000000000000,0x0800000000000000000000000000000000000000001000000000000000000000,0x0800000000000000000000000000000000000000000000000000000000000000\n")
    }

    @Test func v8GuestMatrixWithOneUnboundQueue() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5, 6], domains: [4, 0xab], profile: p)
            try h.unbindVfio(6, 0xab)
            try h.mk(mdevA, adapters: [5, 6], domains: [4, 0xab])
            let without = h.gm(mdevA)
            try h.start("g", mdev: mdevA)
            return [without, h.gm(mdevA)]
        }
        #expect(r.seed == ["ENODEV", "05.0004\n05.00ab\n"])
        #expect(r.upstream == ["05.0004\n05.00ab\n", "05.0004\n05.00ab\n"])
    }

    @Test func v9SeedFallsBackToAPQIsUpstreamDoesNot() throws {
        let r = try both { p -> String in
            var h = try makeHost(adapters: [4, 5], domains: [4, 5, 0x47, 0x54], profile: p)
            try h.unbindVfio(4, 5)
            try h.unbindVfio(5, 4)
            try h.mk(mdevA, adapters: [4, 5], domains: [4, 5, 0x47, 0x54])
            try h.start("g", mdev: mdevA)
            return h.gm(mdevA)
        }
        #expect(r.seed == "04.0047\n04.0054\n05.0047\n05.0054\n")
        #expect(r.upstream == ".0004\n.0005\n.0047\n.0054\n")
    }

    @Test func v10AdapterWithoutDomains() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5], domains: [4], profile: p)
            try h.mk(mdevA, adapters: [5])
            try h.start("g", mdev: mdevA)
            return [h.gm(mdevA), IdList.format(h.crycb(of: "g").apm)]
        }
        #expect(r.seed == ["", ""])
        #expect(r.upstream == ["05.\n", "5"])
    }

    @Test func v11AssigningADomainUnplugsAnAdapterUpstream() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5, 6], domains: [4, 0x47], profile: p)
            try h.mk(mdevA, adapters: [5, 6], domains: [4])
            try h.start("g", mdev: mdevA)
            let before = h.gm(mdevA)
            try h.unbindVfio(6, 0x47)
            try h.assign(.domain, mdev: mdevA, b("0x47"))
            return [before, h.gm(mdevA), "\(h.resets(6, 4))"]
        }
        #expect(r.seed == ["05.0004\n06.0004\n", "05.0004\n06.0004\n", "0"])
        #expect(r.upstream == ["05.0004\n06.0004\n", "05.0004\n05.0047\n", "1"])
    }

    @Test func v12OverProvisioningAutoPlug() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5], domains: [4], profile: p)
            try h.mk(mdevA, adapters: [7], domains: [4])
            try h.start("g", mdev: mdevA)
            let before = h.gm(mdevA)
            try h.addAdapter(7, type: AdapterType("CEX8C")!)
            return [before, h.gm(mdevA)]
        }
        #expect(r.seed == ["", "07.0004\n"])
        #expect(r.upstream == [".0004\n", "07.0004\n"])
    }

    @Test func v13MaskChangeBlocked() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [4, 5], domains: [0x54], apmask: .all,
                                 aqmask: Bitmap256.all.subtracting(ids([0x54])), profile: p)
            try h.mk(mdevA, adapters: [5], domains: [0x54])
            try h.mk(mdevB, adapters: [4], domains: [0x54])
            _ = h.takeEvents()
            let e = errnoOf { try h.storeMask(.aqmask, b("+0x54")) } ?? "ok"
            return [e, h.bus.aqmask.hexString] + h.kernelLines
        }
        #expect(r.seed == ["EADDRINUSE", "0xfffffffffffffffffffff7ffffffffffffffffffffffffffffffffffffffffff",
                           "Userspace may not re-assign queue 05.0054 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
                           "Userspace may not re-assign queue 04.0054 already assigned to cef03c3c-903d-4ecc-9a83-40694cb8aee4"])
        #expect(r.upstream == ["EBUSY", "0xfffffffffffffffffffff7ffffffffffffffffffffffffffffffffffffffffff",
                               "vfio_ap_mdev cef03c3c-903d-4ecc-9a83-40694cb8aee4: Can not reserve queue 04.0054 for host driver: in use by mdev"])
    }

    @Test func v14InUseCheckOverAllIdsUpstream() throws {
        let r = try both { p -> String in
            var h = try makeHost(adapters: [5], domains: [4], apmask: Bitmap256.all.subtracting(ids([5])),
                                 aqmask: Bitmap256.all.subtracting(ids([4])), profile: p)
            try h.mk(mdevA, adapters: [5], domains: [4])
            return errnoOf { try h.storeMask(.apmask, b("+5")) } ?? "ok"
        }
        #expect(r == Both(seed: "ok", upstream: "EBUSY"))
    }

    @Test func v15UnassignDoesNotReplugAndV16APConfigDoes() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5, 6], domains: [4, 0x47], profile: p)
            try h.unbindVfio(6, 0x47)
            try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
            try h.start("g", mdev: mdevA)
            var out = [h.gm(mdevA)]
            try h.unassign(.domain, mdev: mdevA, b("0x47"))
            out.append(h.gm(mdevA))
            if h.hasUpstreamAttributes {
                try h.assign(.domain, mdev: mdevA, b("0x47"))
                try h.storeAPConfig(mdev: mdevA, b("0x06,0x08,0x00\n"))
                out.append(h.gm(mdevA))
            }
            return out
        }
        #expect(r.seed == ["05.0004\n05.0047\n", "05.0004\n"])
        #expect(r.upstream == ["05.0004\n05.0047\n", "05.0004\n", "05.0004\n06.0004\n"])
    }

    @Test func v17SharingOnAssign() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5], domains: [4], profile: p)
            try h.mk(mdevA, adapters: [5], domains: [4], control: [4])
            try h.mk(mdevB, domains: [4], control: [4])
            _ = h.takeEvents()
            let e = errnoOf { try h.assign(.adapter, mdev: mdevB, b("5")) } ?? "ok"
            return [e, h.mx(mdevB)] + h.kernelLines
        }
        #expect(r.seed == ["EADDRINUSE", ".0004\n",
                           "Userspace may not re-assign queue 05.0004 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804"])
        #expect(r.upstream == ["EADDRINUSE", ".0004\n",
                               "vfio_ap_mdev cef03c3c-903d-4ecc-9a83-40694cb8aee4: Userspace may not assign queue 05.0004 to mdev: already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804"])
    }

    @Test(arguments: Profile.allCases) func v18AndV19AreTheSameInBothProfiles(_ profile: Profile) throws {
        var h = try makeHost(adapters: [5, 6], domains: [4], apmask: Bitmap256.all.subtracting(ids([5])), aqmask: .all,
                             profile: profile)
        try h.mk(mdevA, adapters: [5])
        try h.assign(.domain, mdev: mdevA, b("4"))
        try h.mk(mdevB, adapters: [6])
        #expect(errnoOf { try h.assign(.domain, mdev: mdevB, b("4")) } == "EADDRNOTAVAIL")
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("5")) } == nil)
        #expect(errnoOf { try h.unassign(.adapter, mdev: mdevB, b("7")) } == nil)
    }

    @Test func v20RemoveWhileInUse() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5], domains: [4], profile: p)
            try h.mk(mdevA, adapters: [5], domains: [4])
            try h.start("g", mdev: mdevA)
            _ = h.takeEvents()
            let e = errnoOf { try h.removeMdev(mdevA, b("1")) } ?? "ok"
            return [e, h.vfio.mdevs[mdevA] == nil ? "removed" : "kept", h.guests["g"]?.device?.id ?? "no device",
                    "\(h.resets(5, 4))"] + h.kernelLines
        }
        #expect(r.seed == ["EBUSY", "kept", "hostdev0", "0"])
        #expect(r.upstream == ["ok", "removed", "no device", "2",
                               "vfio_ap_mdev 62177883-f1bb-47f0-914d-32a22e3a8804: Relaying device request to user (#0)"])
    }

    @Test func v20InstanceExhaustion() throws {
        let r = try both { p -> String in
            var h = try makeHost(adapters: [5], domains: [4], maxMdevs: 1, profile: p)
            try h.createMdev(b(mdevA))
            return errnoOf { try h.createMdev(b(mdevB)) } ?? "ok"
        }
        #expect(r == Both(seed: "EPERM", upstream: "EUSERS"))
    }

    @Test func v21ControlDomainsAgainstTheHostADM() throws {
        let r = try both { p -> String in
            var h = try makeHost(adapters: [5], domains: [4], control: [4], profile: p)
            try h.mk(mdevA, adapters: [5], domains: [4], control: [4, 5])
            try h.start("g", mdev: mdevA)
            return IdList.format(h.crycb(of: "g").adm)
        }
        #expect(r == Both(seed: "4,5", upstream: "4"))
    }

    /// kernel-reference §4.5: `removed_cdoms & ~assigned_adm` can never hit
    /// an assigned control domain, so upstream keeps a removed control
    /// domain in the guest until the next ADM re-filter.
    @Test func quirkRemovedControlDomainStaysInTheGuestUpstream() throws {
        let r = try both { p -> [String] in
            var h = try makeHost(adapters: [5], domains: [4], control: [4, 5], profile: p)
            try h.mk(mdevA, adapters: [5], domains: [4], control: [4, 5])
            try h.start("g", mdev: mdevA)
            try h.removeControlDomain(5)
            let afterRemoval = IdList.format(h.crycb(of: "g").adm)
            try h.assign(.controlDomain, mdev: mdevA, b("6"))
            return [afterRemoval, IdList.format(h.crycb(of: "g").adm)]
        }
        #expect(r.seed == ["4,5", "4-6"])
        #expect(r.upstream == ["4,5", "4"])
    }

    /// The guest of an upstream host whose control domain 1 the LPAR lost
    /// while assigned: the `bitmap_andnot` quirk (§4.5) keeps ADM 1,2.
    /// mdev A has adapter 5, domain 3, control domains 1, 2, 7 (7 not in the LPAR).
    func controlDomainQuirkHost() throws -> APHost {
        var h = try makeHost(adapters: [5, 6], domains: [2, 3], control: [1, 2], profile: .upstream)
        try h.mk(mdevA, adapters: [5], domains: [3], control: [1, 2, 7])
        try h.start("g", mdev: mdevA)
        try h.removeControlDomain(1)
        #expect(IdList.format(h.crycb(of: "g").adm) == "1,2")
        return h
    }

    /// kernel-reference §3.3, §4.2: upstream `assign_adapter`, `assign_domain`
    /// and a queue probe (`bind`, or a mask change that binds an unbound
    /// queue) run only `vfio_ap_mdev_filter_matrix`, which never touches the
    /// ADM: the guest keeps control domain 1.
    @Test(arguments: [("assign_domain 2", "05.0002\n05.0003\n"), ("assign_adapter 6", "05.0003\n06.0003\n"),
                       ("bind 05.0003", "05.0003\n"), ("apmask +0x80 binds 05.0003", "05.0003\n")])
    func upstreamAssignAndProbeKeepTheGuestsControlDomains(_ step: String, _ guestMatrix: String) throws {
        var h = try controlDomainQuirkHost()
        switch step {
        case "assign_domain 2": try h.assign(.domain, mdev: mdevA, b("2"))
        case "assign_adapter 6": try h.assign(.adapter, mdev: mdevA, b("6"))
        case "bind 05.0003":
            try h.unbindVfio(5, 3)
            try h.bind(driver: "vfio_ap", b("05.0003"))
        default:
            try h.unbindVfio(5, 3)
            try h.storeMask(.apmask, b("+0x80"))
            #expect(h.drv(5, 3) == "vfio_ap")
        }
        #expect(IdList.format(h.crycb(of: "g").adm) == "1,2")
        #expect(h.gm(mdevA) == guestMatrix)
    }

    /// kernel-reference §4.2, §4.5: only `vfio_ap_mdev_filter_cdoms` re-filters
    /// the ADM: `assign_control_domain` of a new id, an `ap_config` write, and
    /// an assigned control domain added to the LPAR.
    @Test(arguments: [("assign_control_domain 8", "2"), ("ap_config 0x04,0x10,0x61", "2"), ("host control-domain add 7", "2,7")])
    func upstreamControlDomainRefiltersDropTheLostControlDomain(_ step: String, _ adm: String) throws {
        var h = try controlDomainQuirkHost()
        switch step {
        case "assign_control_domain 8": try h.assign(.controlDomain, mdev: mdevA, b("8"))
        case "ap_config 0x04,0x10,0x61": try h.storeAPConfig(mdev: mdevA, b("0x04,0x10,0x61"))
        default: try h.addControlDomain(7)
        }
        #expect(IdList.format(h.crycb(of: "g").adm) == adm)
    }

    /// SPEC §1: `bind` of a queue already bound to a driver: ENODEV in the
    /// seed era, EBUSY from the 6.x driver core (`__driver_probe_device`).
    @Test func bindOfABoundQueue() throws {
        let r = try both { p -> [String?] in
            var h = try makeHost(adapters: [5, 6], domains: [4], apmask: ids([6]), aqmask: .all, profile: p)
            let before = HostState(h)
            let out = [errnoOf { try h.bind(driver: "vfio_ap", b("05.0004")) },
                       errnoOf { try h.bind(driver: "cex4queue", b("05.0004")) },
                       errnoOf { try h.bind(driver: "cex4queue", b("06.0004\n")) },
                       errnoOf { try h.bind(driver: "cex4card", b("card05")) },
                       errnoOf { try h.bind(driver: "vfio_ap", b("05.0099")) },
                       errnoOf { try h.bind(driver: "cex4card", b("card07")) }]
            #expect(HostState(h) == before)
            return out
        }
        #expect(r.seed == ["ENODEV", "ENODEV", "ENODEV", "ENODEV", "ENODEV", "ENODEV"])
        #expect(r.upstream == ["EBUSY", "EBUSY", "EBUSY", "EBUSY", "ENODEV", "ENODEV"])
    }

    @Test func upstreamResetsOnUnassignWithoutAGuestAndKeepsTheShadowAtRelease() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4], profile: .upstream)
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.unassign(.adapter, mdev: mdevA, b("6"))
        #expect(h.resets(6, 4) == 1)
        try h.start("g", mdev: mdevA)
        try h.unplugDevice("g", id: "hostdev0")
        #expect(h.gm(mdevA) == "05.0004\n")
        #expect(h.crycb(of: "g") == Matrix())
        #expect(h.resets(5, 4) == 1)
        #expect(h.firmware.records[APQN(5, 4)]?.holdsStateOf == nil)
    }

    @Test func upstreamUnbindResetsAQueueOutsideAnyShadow() throws {
        let r = try both { p -> Int in
            var h = try makeHost(adapters: [5], domains: [4], profile: p)
            try h.unbindVfio(5, 4)
            return h.resets(5, 4)
        }
        #expect(r == Both(seed: 0, upstream: 1))
    }

    @Test func apConfigErrorsChangeNothing() throws {
        var h = try makeHost(adapters: [5, 6], domains: [4, 0xab], apmask: Bitmap256.all.subtracting(ids([5])),
                             aqmask: .all, profile: .upstream)
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.mk(mdevB)
        let before = HostState(h)
        #expect(errnoOf { try h.storeAPConfig(mdev: mdevB, b("0x04,0x08")) } == "EINVAL")
        #expect(errnoOf { try h.storeAPConfig(mdev: mdevB, b("0x04,0xz8,0x00")) } == "EINVAL")
        #expect(errnoOf { try h.storeAPConfig(mdev: mdevB, b("0x02,0x08,0x00")) } == "EADDRNOTAVAIL")
        #expect(errnoOf { try h.storeAPConfig(mdev: mdevB, b("0x04,0x08,0x00")) } == "EADDRINUSE")
        #expect(HostState(h) == before)
        var small = try makeHost(adapters: [5], domains: [4], apxa: false, profile: .upstream)
        try small.mk(mdevA)
        #expect(errnoOf { try small.storeAPConfig(mdev: mdevA, b("0x04,0x0000800000000000,0x00")) } == "ENODEV")
        // Fields past the third and bytes past the 201st are ignored.
        try h.storeAPConfig(mdev: mdevB, b("0x,0x,0x08,garbage" + String(repeating: "x", count: 300)))
        #expect(h.vfio.mdevs[mdevB]!.matrix == Matrix(adm: ids([4])))
    }

    @Test func queueStatusUpstream() throws {
        var h = try makeHost(adapters: [5], domains: [4, 5, 6], profile: .upstream)
        try h.mk(mdevA, adapters: [5], domains: [4, 5])
        try h.unbindVfio(5, 5)
        try h.bind(driver: "vfio_ap", b("05.0005"))
        try h.start("g", mdev: mdevA)
        #expect(h.queueStatus(APQN(5, 4)) == "in use")
        #expect(h.queueStatus(APQN(5, 6)) == "unassigned")
        try h.unplugDevice("g", id: "hostdev0")
        #expect(h.queueStatus(APQN(5, 4)) == "assigned")
    }
}
