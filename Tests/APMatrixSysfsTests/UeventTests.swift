import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// The `uevent` file of AP devices (docs/upstream-ap-bus.md §2.1–2.2,
/// docs/udev-libvirt.md §2): what it shows per device type and profile, and
/// the synthetic events a write sends (`uevent_store`, `kobject_synth_uevent`).
@Suite struct UeventTests {
    /// card05 CEX8C and card06 CEX8P, card07 CEX4A deconfigured; 05.* on vfio_ap, 06.* on cex4queue.
    static let lpar = #"{"apmask": "+6", "aqmask": "0xffff", "domains": [4, 7], "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8P"}, {"id": 7, "type": "CEX4A", "configured": false}]}"#
    static let uuid = "12345678-90ab-cdef-1234-567890abcdef"

    static let files: [(Profile, String, String)] = [
        // 5.x (seed): DEV_TYPE and MODALIAS on cards and queues, no MODE.
        (.seed, "/devices/ap/card05/uevent", "DEVTYPE=ap_card\nDRIVER=cex4card\nDEV_TYPE=000E\nMODALIAS=ap:t0E\n"),
        (.seed, "/devices/ap/card07/uevent", "DEVTYPE=ap_card\nDRIVER=cex4card\nDEV_TYPE=000A\nMODALIAS=ap:t0A\n"),
        (.seed, "/devices/ap/card05/05.0004/uevent", "DEVTYPE=ap_queue\nDRIVER=vfio_ap\nDEV_TYPE=000E\nMODALIAS=ap:t0E\n"),
        (.seed, "/devices/ap/card06/06.0007/uevent", "DEVTYPE=ap_queue\nDRIVER=cex4queue\nDEV_TYPE=000E\nMODALIAS=ap:t0E\n"),
        (.seed, "/devices/ap/uevent", ""),
        // 6.x (upstream): cards add MODE, queues have MODE only.
        (.upstream, "/devices/ap/card05/uevent", "DEVTYPE=ap_card\nDRIVER=cex4card\nDEV_TYPE=000E\nMODALIAS=ap:t0E\nMODE=cca\n"),
        (.upstream, "/devices/ap/card06/uevent", "DEVTYPE=ap_card\nDRIVER=cex4card\nDEV_TYPE=000E\nMODALIAS=ap:t0E\nMODE=ep11\n"),
        (.upstream, "/devices/ap/card07/uevent", "DEVTYPE=ap_card\nDRIVER=cex4card\nDEV_TYPE=000A\nMODALIAS=ap:t0A\nMODE=accel\n"),
        (.upstream, "/devices/ap/card05/05.0004/uevent", "DEVTYPE=ap_queue\nDRIVER=vfio_ap\nMODE=cca\n"),
        (.upstream, "/devices/ap/card06/06.0007/uevent", "DEVTYPE=ap_queue\nDRIVER=cex4queue\nMODE=ep11\n"),
        (.upstream, "/devices/ap/uevent", ""),
    ]

    @Test(arguments: files) func fileShowsTheDevicesVariables(_ p: Profile, _ path: String, _ text: String) throws {
        let h = try host(Self.lpar, profile: p)
        #expect(h.cat(path) == text)
        guard case .attribute(let a)? = SysfsTree.node(path, in: h) else { Issue.record("no \(path)"); return }
        #expect(a.mode == 0o644)
    }

    /// An unbound device has no `DRIVER=` line.
    @Test(arguments: Profile.allCases) func unboundDevicesHaveNoDriver(_ p: Profile) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(h.echo("card06", "/bus/ap/drivers/cex4card/unbind") == nil)
        #expect(h.cat("/devices/ap/card05/05.0004/uevent")
                == (p == .upstream ? "DEVTYPE=ap_queue\nMODE=cca\n" : "DEVTYPE=ap_queue\nDEV_TYPE=000E\nMODALIAS=ap:t0E\n"))
        #expect(h.cat("/devices/ap/card06/uevent")
                == (p == .upstream ? "DEVTYPE=ap_card\nDEV_TYPE=000E\nMODALIAS=ap:t0E\nMODE=ep11\n" : "DEVTYPE=ap_card\nDEV_TYPE=000E\nMODALIAS=ap:t0E\n"))
    }

    static let writes: [(String, String, String)] = [
        ("/devices/ap/card05/uevent", "change",
         "uevent change /devices/ap/card05 (ap): SYNTH_UUID=0 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E MODE=cca"),
        ("/devices/ap/card05/uevent", "add\n",
         "uevent add /devices/ap/card05 (ap): SYNTH_UUID=0 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E MODE=cca"),
        ("/devices/ap/card05/05.0004/uevent", "remove \(uuid) FOO=bar1 X=y",
         "uevent remove /devices/ap/card05/05.0004 (ap): SYNTH_UUID=\(uuid) SYNTH_ARG_FOO=bar1 SYNTH_ARG_X=y DEVTYPE=ap_queue DRIVER=vfio_ap MODE=cca"),
        ("/devices/ap/card06/06.0004/uevent", "online \(uuid)\n",
         "uevent online /devices/ap/card06/06.0004 (ap): SYNTH_UUID=\(uuid) DEVTYPE=ap_queue DRIVER=cex4queue MODE=ep11"),
        ("/devices/ap/uevent", "change", "uevent change /devices/ap (ap): SYNTH_UUID=0"),
    ]

    @Test(arguments: writes) func writeSendsASyntheticEvent(_ path: String, _ text: String, _ line: String) throws {
        var h = try host(Self.lpar, profile: .upstream)
        let before = h.settled
        #expect(h.echo(text, path) == nil)
        #expect(h.ueventLines == [line])
        #expect(h.settled == before, "a synthetic event changes nothing in sysfs")
    }

    static let refusals: [(String, String)] = [
        ("explode", "unknown uevent action string"),
        ("Change", "unknown uevent action string"),
        ("change\n\n", "unknown uevent action string"),
        ("\0", "unknown uevent action string"),
        ("change ", "incorrect uevent action arguments"),
        ("change not-a-uuid", "incorrect uevent action arguments"),
        ("change \(uuid)X", "incorrect uevent action arguments"),
        ("change \(uuid) FOO=a-b", "incorrect uevent action arguments"),
        ("change \(uuid) FOO=", "incorrect uevent action arguments"),
        ("change \(uuid) =bar", "incorrect uevent action arguments"),
        ("change \(uuid)  FOO=bar", "incorrect uevent action arguments"),
        ("change \(uuid) FOO", "incorrect uevent action arguments"),
    ]

    @Test(arguments: refusals) func badWritesAreEINVALAndLogged(_ text: String, _ why: String) throws {
        var h = try host(Self.lpar, profile: .upstream)
        let before = h.settled
        #expect(h.echo(text, "/devices/ap/card05/uevent") == "EINVAL")
        #expect(h.kernelLines == ["synth uevent: /devices/ap/card05: \(why)",
                                  "cex4card card05: uevent: failed to send synthetic uevent: -22"])
        #expect(h.ueventLines == [])
        #expect(h.settled == before)
    }

    /// `dev_err` names the bus when no driver is bound.
    @Test func anUnboundQueuesErrorNamesTheBus() throws {
        var h = try host(Self.lpar, profile: .seed)
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        _ = h.takeEvents()
        #expect(h.echo("bogus", "/devices/ap/card05/05.0004/uevent") == "EINVAL")
        #expect(h.kernelLines == ["synth uevent: /devices/ap/card05/05.0004: unknown uevent action string",
                                  "ap 05.0004: uevent: failed to send synthetic uevent: -22"])
    }
}
