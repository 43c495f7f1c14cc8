import APMatrixModel
import APMatrixTesting
import Testing

// The state and explanation of one APQN (`APHost.apqnInfo`), which the web
// page shows; the tools classify with the same `APQNState`. Host: adapters 4, 5, 6 (CEX8C), 7 (CEX3C, no
// devices), 8 (deconfigured); usage domains 0-3; adapter 5 has queues for
// domains 0, 1, 3 only and adapter 6 for 0-2; apmask {4}, aqmask all: adapter
// 4's queues are reserved for the host, every other queue is bound to vfio_ap.
@Suite struct APQNStateTests {
    let uuidG = MdevUUID(parsing: "62177883-f1bb-47f0-914d-32a22e3a8804")!

    func host() throws -> APHost {
        try makeHost(adapters: [4, 5, 6, 7, 8], domains: [0, 1, 2, 3], types: [7: "CEX3C"],
                     restrictions: [5: [0, 1, 3], 6: [0, 1, 2]], deconfigured: [8],
                     apmask: ids([4]), aqmask: .all)
    }

    func expectCell(_ h: APHost, _ a: APID, _ q: APQI, _ state: APQNState, driver: QueueDriver?, device: Bool = true,
                    owner: QueueOwner = .none, _ explanation: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let c = h.apqnInfo(APQN(a, q))
        #expect(c.state == state, sourceLocation: sourceLocation)
        #expect(h.apqnState(APQN(a, q)) == state, sourceLocation: sourceLocation)
        #expect(c.hasDevice == device, sourceLocation: sourceLocation)
        #expect(c.driver == driver, sourceLocation: sourceLocation)
        #expect(c.owner == owner, sourceLocation: sourceLocation)
        #expect(c.explanation == explanation, sourceLocation: sourceLocation)
    }

    @Test func cellsWithoutMdevs() throws {
        let h = try host()
        expectCell(h, 4, 0, .host, driver: .cex4queue, owner: .host,
                   "apmask bit 4 and aqmask bit 0 are both set: reserved for the host (queue 04.0000 is bound to cex4queue); clear one of them to give it to vfio_ap")
        expectCell(h, 5, 0, .free, driver: .vfioAP,
                   "not reserved (apmask bit 5 or aqmask bit 0 is clear) and assigned to no mdev: free to assign (queue 05.0000 is bound to vfio_ap)")
        expectCell(h, 5, 2, .absent(.noQueue), driver: nil, device: false,
                   "queue 05.0002 does not exist: adapter 05 has queues for domains 0,1,3 only; adapter 05 and domain 0002 are in the LPAR")
        expectCell(h, 7, 1, .absent(.noQueue), driver: nil, device: false,
                   "queue 07.0001 does not exist: adapter 07 is a CEX3C, which gets no queue devices; adapter 07 and domain 0001 are in the LPAR")
        expectCell(h, 8, 0, .absent(.notInConfiguration), driver: nil, device: false,
                   "adapter 08 is deconfigured (card08/config is 0); no mdev has 08.0000 assigned")
        expectCell(h, 9, 0, .absent(.notInConfiguration), driver: nil, device: false,
                   "adapter 09 is not in the LPAR; no mdev has 09.0000 assigned")
        expectCell(h, 5, 0x10, .absent(.notInConfiguration), driver: nil, device: false,
                   "domain 0010 is not a usage domain of the LPAR; no mdev has 05.0010 assigned")
        #expect(APQNState.host.name == "host")
        #expect(APQNState.absent(.noQueue).name == "absent")
        #expect(APQNState.absent(.notInConfiguration).mdev == nil)
    }

    @Test func assignedAndOverProvisioned() throws {
        var h = try host()
        try h.mk(mdevA, adapters: [5, 9], domains: [0])
        expectCell(h, 5, 0, .assigned(mdev: mdevA), driver: .vfioAP,
                   "assigned to mdev \(mdevA), which no guest uses (queue 05.0000 is bound to vfio_ap)")
        expectCell(h, 9, 0, .overProvisioned(mdev: mdevA), driver: nil, device: false,
                   "assigned to mdev \(mdevA), but adapter 09 is not in the LPAR: over-provisioned, it is plugged when firmware adds it")
        #expect(APQNState.overProvisioned(mdev: mdevA).name == "over-provisioned")
        #expect(APQNState.overProvisioned(mdev: mdevA).mdev == mdevA)
    }

    /// SPEC §3 filtering by APID: adapter 6 lacks queue 06.0003, adapter 5 has 05.0001 and 05.0003: S = {5} × {1, 3}.
    @Test func filteredByAdapter() throws {
        var h = try host()
        try h.mk(uuidG, adapters: [5, 6], domains: [1, 3])
        try h.start("g1", mdev: uuidG)
        expectCell(h, 5, 1, .inGuest(mdev: uuidG, guest: "g1"), driver: .vfioAP, owner: .guest("g1"),
                   "in guest g1's CRYCB through mdev \(uuidG)")
        let why = "adapter 06 is passed to a guest only with all its queues in the guest's domains bound to vfio_ap, and queue 06.0003 does not exist: adapter 06 has queues for domains 0-2 only"
        expectCell(h, 6, 1, .filtered(mdev: uuidG, guest: "g1"), driver: .vfioAP,
                   "assigned to mdev \(uuidG) but filtered out of guest g1's CRYCB: " + why)
        expectCell(h, 6, 3, .filtered(mdev: uuidG, guest: "g1"), driver: nil, device: false,
                   "assigned to mdev \(uuidG) but filtered out of guest g1's CRYCB: " + why)
        #expect(APQNState.filtered(mdev: uuidG, guest: "g1").name == "filtered")
        #expect(APQNState.filtered(mdev: uuidG, guest: "g1").guest == "g1")
    }

    /// SPEC §3 filtering by APQI: no adapter has all of domains 1-3, domain 1 is on both: S = {5, 6} × {1}.
    @Test func filteredByDomain() throws {
        var h = try host()
        try h.mk(uuidG, adapters: [5, 6], domains: [1, 2, 3])
        try h.start("g1", mdev: uuidG)
        expectCell(h, 6, 1, .inGuest(mdev: uuidG, guest: "g1"), driver: .vfioAP, owner: .guest("g1"),
                   "in guest g1's CRYCB through mdev \(uuidG)")
        expectCell(h, 6, 2, .filtered(mdev: uuidG, guest: "g1"), driver: .vfioAP,
                   "assigned to mdev \(uuidG) but filtered out of guest g1's CRYCB: domain 0002 is passed to a guest only with all its queues on the guest's adapters bound to vfio_ap, and queue 05.0002 does not exist: adapter 05 has queues for domains 0,1,3 only")
        expectCell(h, 5, 3, .filtered(mdev: uuidG, guest: "g1"), driver: .vfioAP,
                   "assigned to mdev \(uuidG) but filtered out of guest g1's CRYCB: domain 0003 is passed to a guest only with all its queues on the guest's adapters bound to vfio_ap, and queue 06.0003 does not exist: adapter 06 has queues for domains 0-2 only")
    }

    /// An unbound queue unplugs its adapter (SPEC §3 hot unplug): S becomes empty.
    @Test func filteredAfterUnbind() throws {
        var h = try host()
        try h.mk(uuidG, adapters: [5], domains: [1, 3])
        try h.start("g1", mdev: uuidG)
        try h.unbind(driver: "vfio_ap", b("05.0003\n"))
        expectCell(h, 5, 1, .filtered(mdev: uuidG, guest: "g1"), driver: .vfioAP,
                   "assigned to mdev \(uuidG) but filtered out of guest g1's CRYCB: adapter 05 is passed to a guest only with all its queues in the guest's domains bound to vfio_ap, and queue 05.0003 is bound to no driver (unbound)")
        expectCell(h, 5, 3, .filtered(mdev: uuidG, guest: "g1"), driver: nil,
                   "assigned to mdev \(uuidG) but filtered out of guest g1's CRYCB: adapter 05 is passed to a guest only with all its queues in the guest's domains bound to vfio_ap, and queue 05.0003 is bound to no driver (unbound)")
    }
}

extension APQNStateTests {
    /// A queue device bound to no driver is its own state, whatever the masks say.
    @Test func unboundQueues() throws {
        var h = try host()
        try h.unbind(driver: "vfio_ap", b("05.0000\n"))
        try h.unbind(driver: "cex4queue", b("04.0001\n"))
        expectCell(h, 5, 0, .unbound, driver: nil,
                   "queue 05.0000 is bound to no driver (unbound) and assigned to no mdev; apmask/aqmask give it to vfio_ap: bind it there to use it")
        expectCell(h, 4, 1, .unbound, driver: nil,
                   "queue 04.0001 is bound to no driver (unbound) and assigned to no mdev; apmask/aqmask give it to cex4queue: bind it there to use it")
        #expect(APQNState.unbound.name == "unbound")
    }
}
