import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// The host's `bus/ap` attributes beyond the masks (docs/upstream-ap-bus.md
/// §1): formats, parsers per profile, errnos, the scans and bindings.
@Suite struct BusAttributeTests {
    /// Queues 05.0004 05.0007 on vfio_ap, 06.0004 06.0007 on cex4queue; card07 deconfigured.
    static let lpar = #"{"apmask": "+6", "aqmask": "0xffff", "domains": [4, 7], "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8P"}, {"id": 7, "type": "CEX8A", "configured": false}]}"#
    /// The same LPAR on a machine without AP interrupts (facility 65).
    static let polled = #"{"apmask": "+6", "aqmask": "0xffff", "facilities": {"apqi": false}, "domains": [4, 7], "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8P"}]}"#

    func mode(_ h: APHost, _ path: String) -> UInt16? {
        guard case .attribute(let a)? = SysfsTree.node(path, in: h) else { return nil }
        return a.mode
    }

    @Test(arguments: Profile.allCases) func readsOfAFreshHost(_ p: Profile) throws {
        let h = try host(Self.lpar, profile: p)
        #expect(h.cat("/bus/ap/ap_interrupts") == "1\n")
        #expect(h.cat("/bus/ap/config_time") == "30\n")
        #expect(h.cat("/bus/ap/poll_thread") == "0\n")
        #expect(h.cat("/bus/ap/poll_timeout") == "250000\n")
        #expect(h.cat("/bus/ap/scans") == "1\n")
        #expect(h.cat("/bus/ap/bindings") == "4/4 (complete)\n")
        #expect(h.cat("/bus/ap/features") == "APSC APXA QACT RC8A\n")
        for (file, m) in [("config_time", 0o644), ("poll_thread", 0o644), ("poll_timeout", 0o644), ("scans", 0o644),
                          ("ap_interrupts", 0o444), ("bindings", 0o444), ("features", 0o444)] as [(String, UInt16)] {
            #expect(mode(h, "/bus/ap/" + file) == m, "\(file)")
        }
        #expect(mode(h, "/bus/ap/bindings_complete_count") == (p == .upstream ? 0o444 : nil))
        #expect(h.cat("/bus/ap/bindings_complete_count") == (p == .upstream ? "1\n" : "ENODEV"))
        let polled = try host(Self.polled, profile: p)
        #expect(polled.cat("/bus/ap/ap_interrupts") == "0\n")
        let legacy = try host(#"{"apxa": false, "domains": [4], "adapters": [{"id": 5, "type": "CEX8C"}]}"#, profile: p)
        #expect(legacy.cat("/bus/ap/features") == "APSC QACT RC8A\n")
    }

    /// `sscanf("%d")` read as SPEC §1 reads it (an optional sign), 5–120, both profiles.
    @Test(arguments: Profile.allCases) func configTime(_ p: Profile) throws {
        var h = try host(Self.lpar, profile: p)
        for bad in ["4", "121", "abc", "-30", "+", "0x10"] {
            #expect(h.echo(bad, "/bus/ap/config_time") == "EINVAL", "\(bad)")
        }
        #expect(h.cat("/bus/ap/config_time") == "30\n")
        #expect(h.echo("+45", "/bus/ap/config_time") == nil)
        #expect(h.cat("/bus/ap/config_time") == "45\n")
        #expect(h.echo(" 5 seconds", "/bus/ap/config_time") == nil)
        #expect(h.cat("/bus/ap/config_time") == "5\n")
        #expect(h.echo("120\n", "/bus/ap/config_time") == nil)
        #expect(h.cat("/bus/ap/config_time") == "120\n")
    }

    /// The periodic scans count from the time; a `config_time` write re-arms the timer.
    @Test func scansCountThePeriodicScansAndAWriteScansNow() throws {
        var h = try host(Self.lpar, profile: .upstream)
        #expect(h.cat("/bus/ap/scans", at: 29) == "1\n")
        #expect(h.cat("/bus/ap/scans", at: 65) == "3\n")
        #expect(h.echo("1", "/bus/ap/scans", at: 65) == nil)
        #expect(h.cat("/bus/ap/scans", at: 65) == "4\n")
        #expect(h.cat("/bus/ap/scans", at: 94) == "4\n")
        #expect(h.cat("/bus/ap/scans", at: 95) == "5\n")
        #expect(h.echo("60", "/bus/ap/config_time", at: 100) == nil)
        #expect(h.cat("/bus/ap/scans", at: 159) == "5\n")
        #expect(h.cat("/bus/ap/scans", at: 160) == "6\n")
        #expect(h.echo("anything at all", "/bus/ap/scans", at: 160) == nil)
        #expect(h.cat("/bus/ap/scans", at: 160) == "7\n")
    }

    static let pollTimeouts: [(Profile, String, String)] = [
        // 5.x: sscanf("%llu"), 1 … 120 s.
        (.seed, "0", "EINVAL"), (.seed, "120000000001", "EINVAL"), (.seed, "-5", "EINVAL"), (.seed, "x", "EINVAL"),
        (.seed, "0x10", "EINVAL"), (.seed, "120000000000", "120000000000\n"), (.seed, "+7", "7\n"),
        (.seed, "1000abc", "1000\n"), (.seed, " 1500000\n", "1500000\n"),
        // 6.x: kstrtoul(buf, 0), 0 … 120 s.
        (.upstream, "0", "0\n"), (.upstream, "120000000001", "EINVAL"), (.upstream, "-5", "EINVAL"),
        (.upstream, "x", "EINVAL"), (.upstream, "1000abc", "EINVAL"), (.upstream, " 1500000", "EINVAL"),
        (.upstream, "0x10", "16\n"), (.upstream, "18446744073709551616", "ERANGE"), (.upstream, "+7", "7\n"),
        (.upstream, "120000000000\n", "120000000000\n"),
    ]

    @Test(arguments: pollTimeouts) func pollTimeout(_ p: Profile, _ input: String, _ result: String) throws {
        var h = try host(Self.lpar, profile: p)
        let e = h.echo(input, "/bus/ap/poll_timeout")
        #expect((e ?? h.cat("/bus/ap/poll_timeout")) == result)
        if e != nil { #expect(h.cat("/bus/ap/poll_timeout") == "250000\n") }
    }

    static let pollThreads: [(Profile, String, String)] = [
        // 5.x: sscanf("%d"), any non-zero number starts the thread.
        (.seed, "1", "1\n"), (.seed, "0", "0\n"), (.seed, "2", "1\n"), (.seed, "-1", "1\n"), (.seed, "+1", "1\n"),
        (.seed, "x", "EINVAL"), (.seed, "yes", "EINVAL"),
        // 6.x: kstrtobool (6.16+ letters).
        (.upstream, "1", "1\n"), (.upstream, "0", "0\n"), (.upstream, "y", "1\n"), (.upstream, "yes", "1\n"),
        (.upstream, "enabled", "1\n"), (.upstream, "disable", "0\n"), (.upstream, "on", "1\n"), (.upstream, "off", "0\n"),
        (.upstream, "True", "1\n"), (.upstream, "n", "0\n"), (.upstream, "2", "EINVAL"), (.upstream, "-1", "EINVAL"),
        (.upstream, "o", "EINVAL"), (.upstream, "x", "EINVAL"),
    ]

    /// Without AP interrupts the poll thread runs when asked; the value is
    /// written after a `1`, so a refusal shows as the thread still running.
    @Test(arguments: pollThreads) func pollThread(_ p: Profile, _ input: String, _ result: String) throws {
        var h = try host(Self.polled, profile: p)
        #expect(h.echo("1", "/bus/ap/poll_thread") == nil)
        let e = h.echo(input, "/bus/ap/poll_thread")
        #expect((e ?? h.cat("/bus/ap/poll_thread")) == result)
        if e != nil { #expect(h.cat("/bus/ap/poll_thread") == "1\n") }
    }

    /// With AP interrupts, starting the thread succeeds and does nothing (`ap_poll_thread_start`).
    @Test(arguments: Profile.allCases) func pollThreadWithInterruptsStaysOff(_ p: Profile) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo("1", "/bus/ap/poll_thread") == nil)
        #expect(h.cat("/bus/ap/poll_thread") == "0\n")
    }

    @Test(arguments: Profile.allCases) func bindingsBeforeAndAfterAllAreBound(_ p: Profile) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(h.cat("/bus/ap/bindings") == "3/4\n")
        #expect(h.echo("06.0007", "/bus/ap/drivers/cex4queue/unbind") == nil)
        #expect(h.cat("/bus/ap/bindings") == "2/4\n")
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/bind") == nil)
        #expect(h.echo("06.0007", "/bus/ap/drivers/cex4queue/bind") == nil)
        #expect(h.cat("/bus/ap/bindings") == "4/4 (complete)\n")
    }

    /// A queue a driver let go stays uninitiated until zcrypt probes it
    /// again (`ap_queue_remove`, `ap_queue_init_state`): its `request_count`
    /// reads `-` (docs/upstream-ap-bus.md §5.2).
    @Test(arguments: Profile.allCases) func requestCountOfAnUninitiatedQueue(_ p: Profile) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.cat("/devices/ap/card05/05.0004/request_count") == "0\n")
        #expect(h.echo("-6", "/bus/ap/apmask") == nil)
        #expect(h.cat("/devices/ap/card06/06.0004/request_count") == "-\n")
        #expect(h.cat("/devices/ap/card06/06.0004/requestq_count") == "0\n")
        #expect(h.echo("+6", "/bus/ap/apmask") == nil)
        #expect(h.cat("/devices/ap/card06/06.0004/request_count") == "0\n")
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(h.cat("/devices/ap/card05/05.0004/request_count") == "-\n")
    }

    /// 6.x sends `BINDINGS=complete` once per re-arming, at the end of the
    /// next scan: a probe re-arms it; the seed era has no `COMPLETECOUNT`.
    @Test(arguments: Profile.allCases) func bindingsCompleteEventAtTheNextScan(_ p: Profile) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(h.echo("1", "/bus/ap/scans") == nil)
        _ = h.takeEvents()
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/bind") == nil)
        #expect(h.busUeventLines == [])
        #expect(h.echo("1", "/bus/ap/scans") == nil)
        let expected = p == .upstream ? "uevent change /devices/ap (ap): BINDINGS=complete COMPLETECOUNT=2"
                                      : "uevent change /devices/ap (ap): BINDINGS=complete"
        #expect(h.busUeventLines == [expected])
        #expect(h.cat("/bus/ap/bindings_complete_count") == (p == .upstream ? "2\n" : "ENODEV"))
        _ = h.takeEvents()
        #expect(h.echo("1", "/bus/ap/scans") == nil)
        #expect(h.ueventLines == [])
    }

    /// The bus's own rescan timer sends it too, `config_time` after the last scan.
    @Test func bindingsCompleteEventAtThePeriodicScan() throws {
        var h = try host(Self.lpar, profile: .upstream)
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/bind") == nil)
        _ = h.takeEvents()
        #expect(h.dueHostScan(from: 0, to: 29) == nil)
        h.advanceHostClock(from: 0, to: 29)
        #expect(h.ueventLines == [])
        let due = try #require(h.dueHostScan(from: 29, to: 30))
        #expect(due.expiry == 30 && due.number == 2)
        h.advanceHostClock(from: 29, to: 30)
        #expect(h.ueventLines == ["uevent change /devices/ap (ap): BINDINGS=complete COMPLETECOUNT=2"])
        #expect(h.cat("/bus/ap/scans", at: 30) == "2\n")
        #expect(h.dueHostScan(from: 30, to: 3600) == nil, "an idle host has nothing to scan for")
    }

    /// A firmware change that adds an adapter is a scan that finds new
    /// devices: the event comes with it. A removal re-arms nothing.
    @Test func firmwareAdditionsSendBindingsComplete() throws {
        var h = try host(Self.lpar, profile: .upstream)
        try h.addAdapter(8, type: AdapterType("CEX8C")!)
        #expect(h.busUeventLines == ["uevent change /devices/ap (ap): BINDINGS=complete COMPLETECOUNT=2"])
        #expect(h.cat("/bus/ap/scans") == "2\n")
        _ = h.takeEvents()
        try h.removeAdapter(8)
        #expect(h.busUeventLines == [])
        #expect(h.cat("/bus/ap/bindings") == "4/4 (complete)\n")
    }

    /// 6.x announces a changed mask with its new value, newline included;
    /// the seed era (B513) does not.
    @Test(arguments: Profile.allCases) func maskChangeUevent(_ p: Profile) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo("+5", "/bus/ap/apmask") == nil)
        let sent = h.uevents.filter { $0.devpath == "/devices/ap" }
        let expected = Uevent(action: .change, devpath: "/devices/ap", subsystem: "ap",
                              properties: ["APMASK=0x0600000000000000000000000000000000000000000000000000000000000000\n"])
        #expect(sent == (p == .upstream ? [expected] : []))
        _ = h.takeEvents()
        #expect(h.echo("+5", "/bus/ap/apmask") == nil)
        #expect(h.ueventLines == [], "an unchanged mask sends nothing")
    }
}
