import APMatrixModel
import APMatrixTesting
import Foundation
import Testing

/// AP configuration change notification (Linux 6.15 + QEMU 10.1,
/// docs/upstream-ap-bus.md §4): every push of a running guest's CRYCB
/// signals the config-change eventfd; the guest's AP bus rescans at once.
@Suite struct ConfigChangeTests {
    /// Adapters 5 and 6, usage domains 4 and 7; mdev A has 5 and 4; guest
    /// g1 runs with `config_time` 120 and has scanned once (at boot).
    func running(_ p: Profile) throws -> APHost {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7], profile: p)
        try h.mk(mdevA, adapters: [5], domains: [4])
        try h.start("g1", mdev: mdevA)
        try h.storeGuestConfigTime("g1", b("120"))
        _ = h.takeEvents()
        return h
    }

    func queues(_ h: APHost) -> [String] { h.guests["g1"]!.bus.queues.map(\.description) }
    func scans(_ h: APHost, at now: Uptime) -> Int { h.guests["g1"]!.busScans(at: now) }

    /// A hot plug reaches the guest's AP bus with one scan, before its timer (120 s) expires.
    @Test func aHotPlugIsSeenAtOnceUpstreamOnly() throws {
        let r = try both { p -> [String] in
            var h = try running(p)
            try h.assign(.adapter, mdev: mdevA, b("6"))
            h.handleConfigChanges(at: 10)
            return queues(h) + ["scans \(scans(h, at: 10))"]
        }
        #expect(r.seed == ["05.0004", "scans 1"])
        #expect(r.upstream == ["05.0004", "06.0004", "scans 2"])
    }

    @Test func theScanIsLoggedWithItsCause() throws {
        var h = try running(.upstream)
        try h.assign(.domain, mdev: mdevA, b("7"))
        h.handleConfigChanges(at: 10)
        #expect(h.events.filter { $0.kind == "bus" }.map(\.line)
                == ["guest g1: AP bus scan 2 (AP configuration change event): added 05.0007; removed -"])
        #expect(h.guests["g1"]!.pendingConfigChanges == 0)
    }

    /// Each push is one event and each event one scan (`chsc_process_sei_nt0` loops).
    @Test func everyPushIsOneEventAndOneScan() throws {
        var h = try running(.upstream)
        try h.assign(.adapter, mdev: mdevA, b("6"))
        try h.assign(.domain, mdev: mdevA, b("7"))
        try h.unassign(.adapter, mdev: mdevA, b("5"))
        #expect(h.guests["g1"]!.pendingConfigChanges == 3)
        h.handleConfigChanges(at: 10)
        #expect(scans(h, at: 10) == 4)
        #expect(queues(h) == ["06.0004", "06.0007"])
    }

    /// Unbind, firmware changes and `ap_config` push the CRYCB too; the
    /// guest sees each at once.
    @Test func unbindFirmwareAndAPConfigSignal() throws {
        var h = try running(.upstream)
        try h.unbind(driver: "vfio_ap", b("05.0004"))
        h.handleConfigChanges(at: 1)
        #expect(queues(h) == [])
        try h.bind(driver: "vfio_ap", b("05.0004"))
        h.handleConfigChanges(at: 2)
        #expect(queues(h) == ["05.0004"])
        try h.storeAPConfig(mdev: mdevA, b("0x06,0x09,0x00"))
        h.handleConfigChanges(at: 3)
        #expect(queues(h) == ["05.0004", "05.0007", "06.0004", "06.0007"])
        try h.removeDomain(7)
        h.handleConfigChanges(at: 4)
        #expect(queues(h) == ["05.0004", "06.0004"])
        #expect(scans(h, at: 4) == 5)
    }

    /// Opening (attach, hot plug) and closing the device push the CRYCB
    /// without a signal: QEMU registers the eventfd after the open, and the
    /// fixed 6.15 close signals nothing. The guest notices on its timer.
    @Test func attachAndReleaseDoNotSignal() throws {
        var h = try running(.upstream)
        try h.unplugDevice("g1", id: "hostdev0")
        #expect(h.guests["g1"]!.pendingConfigChanges == 0)
        try h.plugDevice("g1", VfioAPDevice(id: "hostdev1", mdev: mdevA, sysfsdev: "/sys/devices/vfio_ap/matrix/\(mdevA)"))
        #expect(h.guests["g1"]!.pendingConfigChanges == 0)
        #expect(!h.hasPendingConfigChanges)
    }

    /// `remove` of an mdev in use: `vfio_ap_mdev_request` signals before the
    /// request, so the guest scans its emptied CRYCB.
    @Test func removeInUseSignalsBeforeTheRequest() throws {
        var h = try running(.upstream)
        try h.removeMdev(mdevA, b("1"))
        h.handleConfigChanges(at: 5)
        #expect(queues(h) == [])
        #expect(scans(h, at: 5) == 2)
    }

    @Test func theVFIODevicesIRQs() throws {
        let r = try both { p -> [String] in
            var h = try running(p)
            let with = h.vfioIRQs(of: "g1").map { "\($0.irq.rawValue) \($0.irq.name) \($0.wired)" }
            try h.unplugDevice("g1", id: "hostdev0")
            return with + ["without: \(h.vfioIRQs(of: "g1").count)"]
        }
        #expect(r.seed == ["0 request true", "1 config change false", "without: 0"])
        #expect(r.upstream == ["0 request true", "1 config change true", "without: 0"])
    }

    /// Queued events are state (QEMU's queue): they survive the state file.
    @Test func pendingEventsAreKeptInTheStateFile() throws {
        var h = try running(.upstream)
        try h.assign(.adapter, mdev: mdevA, b("6"))
        let back = try JSONDecoder().decode(APHost.self, from: JSONEncoder().encode(h))
        #expect(back.guests["g1"]!.pendingConfigChanges == 1)
        #expect(HostState(back) == HostState(h))
    }
}
