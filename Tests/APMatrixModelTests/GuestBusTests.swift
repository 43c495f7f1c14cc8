import APMatrixModel
import APMatrixTesting
import Testing

/// The guest's own AP bus (SPEC §4 "The guest's view"; kernel-reference §6):
/// it sees a CRYCB change only when it scans again.
@Suite struct GuestBusTests {
    /// Adapters 5, 6, 7 (CEX8C, CEX8C, CEX8P) and 0x47 (CEX8A); usage domains 4, 0x47; nothing reserved.
    func seedLikeHost() throws -> APHost {
        try makeHost(adapters: [5, 6, 7, 0x47], domains: [4, 0x47], types: [7: "CEX8P", 0x47: "CEX8A"])
    }

    func bus(_ h: APHost, _ g: String) -> GuestBus { h.guests[g]!.bus }
    func scans(_ h: APHost, _ g: String, at now: Uptime = .boot) -> Int { h.guests[g]!.busScans(at: now) }
    func bindings(_ h: APHost, _ g: String) -> String { h.guests[g]!.bindingsText(at: .boot) }
    func queues(_ h: APHost, _ g: String) -> [String] { bus(h, g).queues.map(\.description) }
    func busLines(_ h: APHost) -> [String] {
        h.events.filter { if case .guestBusChanged = $0 { return true }; return false }.map(\.line)
    }

    @Test func bootScanSeesTheCRYCB() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47], control: [4])
        _ = h.takeEvents()
        try h.start("g1", mdev: mdevA)
        #expect(scans(h, "g1") == 1)
        #expect(queues(h, "g1") == ["05.0004", "05.0047", "06.0004", "06.0047"])
        #expect(bus(h, "g1").cards == [5: AdapterType("CEX8C")!, 6: AdapterType("CEX8C")!])
        #expect(bus(h, "g1").qci == Matrix(apm: ids([5, 6]), aqm: ids([4, 0x47]), adm: ids([4])))
        #expect(bus(h, "g1").domain == 4)
        #expect(bindings(h, "g1") == "4/4 (complete)\n")
        #expect(busLines(h) == ["guest g1: AP bus scan 1 (boot): added 05.0004 05.0047 06.0004 06.0047 card05 card06; removed -"])
    }

    @Test func aBusThatNeverScannedIsNotComplete() throws {
        var h = try seedLikeHost()
        try h.startGuest("g1", cpu: CPUModel(parsing: "host,ap=off", facilities: h.firmware.facilities), device: nil, at: .boot)
        #expect(bindings(h, "g1") == "0/0\n")
        #expect(scans(h, "g1") == 0 && bus(h, "g1").timers.configTime == 30 && bus(h, "g1").domain == nil)
    }

    @Test func hotPlugIsSeenAfterTheNextScanOnly() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.start("g1", mdev: mdevA)
        _ = h.takeEvents()
        try h.assign(.adapter, mdev: mdevA, b("7"))
        #expect(h.crycb(of: "g1").apm == ids([5, 6, 7]))
        #expect(queues(h, "g1") == ["05.0004", "05.0047", "06.0004", "06.0047"], "the guest has not scanned yet")
        #expect(busLines(h) == [])
        try h.scanGuestBus("g1", cause: "write to scans", at: .boot)
        #expect(queues(h, "g1") == ["05.0004", "05.0047", "06.0004", "06.0047", "07.0004", "07.0047"])
        #expect(bus(h, "g1").cards[7] == AdapterType("CEX8P"))
        #expect(scans(h, "g1") == 2)
        #expect(busLines(h) == ["guest g1: AP bus scan 2 (write to scans): added 07.0004 07.0047 card07; removed -"])
    }

    @Test func unplugIsSeenAfterTheNextScanAndAScanWithoutChangeIsNoEvent() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.start("g1", mdev: mdevA)
        try h.unassign(.adapter, mdev: mdevA, b("5"))
        _ = h.takeEvents()
        #expect(bus(h, "g1").cards.keys.sorted() == [5, 6])
        try h.scanGuestBus("g1", cause: "write to scans", at: .boot)
        #expect(queues(h, "g1") == ["06.0004", "06.0047"])
        #expect(busLines(h) == ["guest g1: AP bus scan 2 (write to scans): added -; removed 05.0004 05.0047 card05"])
        _ = h.takeEvents()
        try h.scanGuestBus("g1", cause: "write to scans", at: .boot)
        #expect(scans(h, "g1") == 3)
        #expect(busLines(h) == [])
    }

    @Test func withAPQCITheConfigTimerScans() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.assign(.adapter, mdev: mdevA, b("6"))
        _ = h.takeEvents()
        h.advanceGuestClocks(from: 0, to: 29)
        #expect(queues(h, "g1") == ["05.0004"])
        h.advanceGuestClocks(from: 29, to: 30)
        #expect(queues(h, "g1") == ["05.0004", "06.0004"])
        #expect(busLines(h) == ["guest g1: AP bus scan 2 (config_time): added 06.0004 card06; removed -"])
    }

    @Test func withoutAPQCIOnlyAWriteToScansNotices() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA, cpu: "host,apqci=off")
        try h.assign(.adapter, mdev: mdevA, b("6"))
        h.advanceGuestClocks(from: 0, to: 120)
        #expect(queues(h, "g1") == ["05.0004"])
        #expect(scans(h, "g1", at: 120) == 1)
        try h.scanGuestBus("g1", cause: "write to scans", at: 120)
        #expect(queues(h, "g1") == ["05.0004", "06.0004"])
    }

    @Test func configTimeIsFiveToOneHundredTwentySeconds() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        for bad in ["4", "121", "abc", "", "-5"] {
            #expect(errnoOf { try h.storeGuestConfigTime("g1", b(bad)) } == "EINVAL", "\(bad)")
        }
        #expect(bus(h, "g1").timers.configTime == 30)
        try h.storeGuestConfigTime("g1", b("5\n"))
        #expect(bus(h, "g1").timers.configTime == 5)
        try h.assign(.adapter, mdev: mdevA, b("6"))
        h.advanceGuestClocks(from: 0, to: 5)
        #expect(queues(h, "g1") == ["05.0004", "06.0004"])
    }

    @Test func apftOffCreatesNoDevices() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5, 6], domains: [4], control: [4])
        try h.start("g1", mdev: mdevA, cpu: "host,apft=off")
        #expect(scans(h, "g1") == 1)
        #expect(bus(h, "g1").cards.isEmpty && bus(h, "g1").queues.isEmpty)
        #expect(bus(h, "g1").qci == Matrix(apm: ids([5, 6]), aqm: ids([4]), adm: ids([4])))
        #expect(bus(h, "g1").domain == nil)
        #expect(bindings(h, "g1") == "0/0 (complete)\n")
    }

    @Test func apqciOffSeesIdsUpTo63And15Only() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5, 0x47], domains: [4, 0x47])
        try h.start("g1", mdev: mdevA, cpu: "host,apqci=off")
        #expect(h.crycb(of: "g1").apm == ids([5, 0x47]))
        #expect(queues(h, "g1") == ["05.0004"])
        #expect(bus(h, "g1").qci == nil)
        #expect(h.guestBusMaxima(h.guests["g1"]!.cpu) == (63, 15))
        #expect(h.guestBusMaxima(try CPUModel(parsing: "host", facilities: Facilities())) == (255, 255))
    }

    @Test func apOffHasNoBus() throws {
        var h = try seedLikeHost()
        try h.startGuest("g1", cpu: CPUModel(parsing: "host,ap=off", facilities: h.firmware.facilities), device: nil, at: .boot)
        #expect(scans(h, "g1") == 0)
        #expect(errnoOf { try h.scanGuestBus("g1", cause: "write to scans", at: .boot) } == "ENODEV")
        #expect(errnoOf { try h.storeGuestConfigTime("g1", b("5")) } == "ENODEV")
        #expect(errnoOf { try h.scanGuestBus("nobody", cause: "write to scans", at: .boot) } == "ENOENT")
    }

    @Test func apDomainIsKeptWhileItHasQueuesElseReselected() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5, 6], domains: [4, 0x47])
        try h.start("g1", mdev: mdevA)
        for bad in ["256", "-1", "x"] {
            #expect(errnoOf { try h.storeGuestAPDomain("g1", b(bad)) } == "EINVAL", "\(bad)")
        }
        #expect(bus(h, "g1").domain == 4)
        try h.storeGuestAPDomain("g1", b("0x47"))
        try h.scanGuestBus("g1", cause: "write to scans", at: .boot)
        #expect(bus(h, "g1").domain == 0x47)
        try h.unassign(.domain, mdev: mdevA, b("0x47"))
        try h.scanGuestBus("g1", cause: "write to scans", at: .boot)
        #expect(bus(h, "g1").domain == 4)
    }

    @Test func onlineFlagsBelongToTheDevicesAScanCreated() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5, 6], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.storeGuestOnline("g1", card: 5, queue: nil, b("0"))
        try h.storeGuestOnline("g1", card: 6, queue: APQN(6, 4), b("0\n"))
        #expect(bus(h, "g1").offlineCards == ids([5]))
        #expect(bus(h, "g1").offlineQueues == [APQN(6, 4)])
        #expect(errnoOf { try h.storeGuestOnline("g1", card: 5, queue: nil, b("2")) } == "EINVAL")
        #expect(errnoOf { try h.storeGuestOnline("g1", card: 7, queue: nil, b("1")) } == "ENODEV")
        #expect(errnoOf { try h.storeGuestOnline("g1", card: 5, queue: APQN(5, 0x47), b("1")) } == "ENODEV")
        try h.unassign(.adapter, mdev: mdevA, b("5"))
        try h.scanGuestBus("g1", cause: "write to scans", at: .boot)
        try h.assign(.adapter, mdev: mdevA, b("5"))
        try h.scanGuestBus("g1", cause: "write to scans", at: .boot)
        #expect(bus(h, "g1").offlineCards.isEmpty, "card05 was created again: online")
        #expect(bus(h, "g1").offlineQueues == [APQN(6, 4)])
    }

    /// Time that passes is not a change of the host (issue 12, defect 1): a
    /// running guest with apqci scans every config_time, and its count says
    /// so, but as long as its CRYCB does not change the host stays equal to
    /// itself, tick after tick, for hours. The first expiry after a change
    /// records the scan that notices it.
    @Test func anIdleHostDoesNotChangeAsTimePasses() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA, at: 10)
        _ = h.takeEvents()
        let idle = h
        for t in 10..<(10 + 6 * 3600) { h.advanceGuestClocks(from: Uptime(seconds: Double(t)), to: Uptime(seconds: Double(t + 1))) }
        #expect(h == idle)
        #expect(h.dueGuestScans(from: 10, to: 21610).count == 0, "a clock that asks first has nothing to do")
        #expect(scans(h, "g1", at: 21610) == 721)
        #expect(h.guests["g1"]!.bindingsText(at: 21610) == "1/1 (complete)\n")
        try h.assign(.adapter, mdev: mdevA, b("6"))
        _ = h.takeEvents()
        #expect(h.dueGuestScans(from: 21610, to: 21639).count == 0)
        #expect(h.dueGuestScans(from: 21639, to: 21640).map { "\($0.guest.name) \($0.expiry) \($0.number)" } == ["g1 21640.0s 722"])
        h.advanceGuestClocks(from: 21610, to: 21639)
        #expect(queues(h, "g1") == ["05.0004"])
        h.advanceGuestClocks(from: 21639, to: 21640)
        #expect(queues(h, "g1") == ["05.0004", "06.0004"])
        #expect(busLines(h) == ["guest g1: AP bus scan 722 (config_time): added 06.0004 card06; removed -"])
        #expect(scans(h, "g1", at: 21640) == 722 && scans(h, "g1", at: 21670) == 723)
    }

    /// A write to config_time re-arms the timer at the time of the write; the
    /// scans counted until then stay counted.
    @Test func configTimeRearmsTheTimerAtTheWrite() throws {
        var h = try seedLikeHost()
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        #expect(scans(h, "g1", at: 95) == 4)
        try h.storeGuestConfigTime("g1", b("120"), at: 95)
        #expect(scans(h, "g1", at: 214) == 4 && scans(h, "g1", at: 215) == 5)
        try h.scanGuestBus("g1", cause: "write to scans", at: 300)
        #expect(scans(h, "g1", at: 300) == 6 && scans(h, "g1", at: 420) == 7)
    }
}
