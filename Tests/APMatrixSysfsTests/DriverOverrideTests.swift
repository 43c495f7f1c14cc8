import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// `driver_override` on AP queues, Linux 6.19 (docs/upstream-ap-bus.md §3,
/// kernel-reference §9.19): the upstream profile only.
@Suite struct DriverOverrideTests {
    /// Both masks all ones (the default): every queue is the host's.
    static let lpar = #"{"domains": [4, 7], "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8P"}]}"#
    static let override = "/devices/ap/card05/05.0004/driver_override"

    func upstream() throws -> APHost { try host(Self.lpar, profile: .upstream) }

    @Test func existsOnQueuesUpstreamOnly() throws {
        let h = try upstream()
        #expect(h.cat(Self.override) == "\n")
        guard case .attribute(let a)? = SysfsTree.node(Self.override, in: h) else { Issue.record("no driver_override"); return }
        #expect(a.mode == 0o644)
        #expect(SysfsTree.node("/devices/ap/card05/driver_override", in: h) == nil)
        #expect(SysfsTree.node(Self.override, in: try host(Self.lpar, profile: .seed)) == nil)
    }

    /// Only while apmask and aqmask are both all ones (`ap_apmask_aqmask_in_use`).
    @Test(arguments: ["apmask", "aqmask"]) func refusedUnlessBothMasksAreAllOnes(_ mask: String) throws {
        var h = try upstream()
        #expect(h.echo("-0x80", "/bus/ap/" + mask) == nil)
        #expect(h.echo("vfio_ap", Self.override) == "EINVAL")
        #expect(h.cat(Self.override) == "\n")
        #expect(h.echo("+0x80", "/bus/ap/" + mask) == nil)
        #expect(h.echo("vfio_ap", Self.override) == nil)
        #expect(h.cat(Self.override) == "vfio_ap\n")
    }

    /// While an override is active every mask write is EINVAL, before it is
    /// parsed and even when it would change nothing.
    @Test func maskWritesWhileAnOverrideIsActive() throws {
        var h = try upstream()
        #expect(h.echo("vfio_ap\n", Self.override) == nil)
        let all = "0x" + String(repeating: "f", count: 64)
        for (value, file) in [("-5", "apmask"), (all, "apmask"), (all, "aqmask"), ("garbage", "aqmask")] {
            #expect(h.echo(value, "/bus/ap/" + file) == "EINVAL", "\(value) > \(file)")
        }
        #expect(h.cat("/bus/ap/apmask") == all + "\n")
        #expect(h.echo("\n", Self.override) == nil)
        #expect(h.cat(Self.override) == "\n")
        #expect(h.echo("-5", "/bus/ap/apmask") == nil)
    }

    /// The store does not rebind; the queue's next probe takes only the named driver.
    @Test func takesEffectAtTheNextProbe() throws {
        var h = try upstream()
        #expect(h.echo("vfio_ap", Self.override) == nil)
        #expect(h.ls("/bus/ap/drivers/cex4queue").contains("05.0004"))
        #expect(h.echo("05.0004", "/bus/ap/drivers/cex4queue/unbind") == nil)
        #expect(h.echo("05.0004", "/bus/ap/drivers/cex4queue/bind") == "ENODEV")
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/bind") == nil)
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == ["05.0004"])
        #expect(h.cat("/devices/ap/card05/05.0004/uevent") == "DEVTYPE=ap_queue\nDRIVER=vfio_ap\nMODE=cca\n")
        #expect(h.checkInvariants() == [])
    }

    /// An override naming no queue driver leaves the queue unbound, so the bindings never complete.
    @Test func anOverrideOfNoDriverLeavesTheQueueUnbound() throws {
        var h = try upstream()
        #expect(h.echo("nosuchdriver", Self.override) == nil)
        #expect(h.echo("05.0004", "/bus/ap/drivers/cex4queue/unbind") == nil)
        #expect(h.echo("05.0004", "/bus/ap/drivers/cex4queue/bind") == "ENODEV")
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/bind") == "ENODEV")
        #expect(h.echo("1", "/bus/ap/scans") == nil)
        #expect(h.cat("/bus/ap/bindings") == "3/4\n")
        #expect(h.cat("/bus/ap/bindings_complete_count") == "1\n")
    }

    /// `driver_set_override`: the text to the first NUL, cut at the first
    /// newline; an empty one or one starting with a newline clears; a write
    /// of 4095 bytes or more is EINVAL.
    @Test func theKernelsOverrideText() throws {
        var h = try upstream()
        #expect(h.echo("vfio_ap\ncex4queue", Self.override) == nil)
        #expect(h.cat(Self.override) == "vfio_ap\n")
        #expect(h.echo("cex4queue\0vfio_ap", Self.override) == nil)
        #expect(h.cat(Self.override) == "cex4queue\n")
        #expect(h.echo("\0", Self.override) == nil)
        #expect(h.cat(Self.override) == "\n")
        #expect(h.echo(String(repeating: "a", count: 4095), Self.override) == "EINVAL")
        #expect(h.echo(String(repeating: "a", count: 4094), Self.override) == nil)
        #expect(h.cat(Self.override) == String(repeating: "a", count: 4094) + "\n")
    }

    /// vfio_ap's ownership check in override mode (`ap_owned_by_def_drv`,
    /// 6.19): a queue with an override is the host's while it is bound to
    /// cex4queue; any other APQN, one without a device included, by the
    /// (all-ones) masks.
    @Test func assignmentInOverrideMode() throws {
        var h = try upstream()
        #expect(h.echo("vfio_ap", Self.override) == nil)
        #expect(h.echo("vfio_ap", "/devices/ap/card05/05.0007/driver_override") == nil)
        #expect(h.echo("05.0004", "/bus/ap/drivers/cex4queue/unbind") == nil)
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/bind") == nil)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        let m = "\(matrixDir)/\(uuidA)/"
        #expect(h.echo("5", m + "assign_adapter") == nil)
        #expect(h.echo("4", m + "assign_domain") == nil)
        #expect(h.echo("7", m + "assign_domain") == "EADDRNOTAVAIL")   // 05.0007: override, still on cex4queue
        #expect(h.echo("9", m + "assign_adapter") == "EADDRNOTAVAIL")  // 09.0004: no device, masks all ones
        #expect(h.cat(m + "matrix") == "05.0004\n")
        #expect(h.checkInvariants() == [])
    }

    /// The count of overrides goes down only when one is cleared: a queue
    /// device that goes away keeps it up, and masks stay unwritable.
    @Test func aQueueRemovedWithItsOverrideKeepsTheMasksLocked() throws {
        var h = try upstream()
        #expect(h.echo("vfio_ap", Self.override) == nil)
        #expect(h.echo("cex4queue", Self.override) == nil)
        #expect(h.bus.driverOverrideCount == 1)
        try h.removeAdapter(5)
        #expect(h.echo("-6", "/bus/ap/apmask") == "EINVAL")
        try h.addAdapter(5, type: AdapterType("CEX8C")!)
        #expect(h.cat(Self.override) == "\n")
        #expect(h.echo("-6", "/bus/ap/apmask") == "EINVAL")
        #expect(h.checkInvariants() == [])
    }
}
