import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// The kernel's device model beyond the AP bus (docs/udev-libvirt.md §2.2):
/// `uevent`, `subsystem` and `driver` of the matrix device and mdevs, and
/// the driver core's events for every device that comes, goes, binds or
/// unbinds (§2.4), with the variables its `uevent` file shows.
@Suite struct DeviceUeventTests {
    /// card05 CEX8C, card06 CEX8P, card07 CEX4A deconfigured; 05.* on vfio_ap, 06.* on cex4queue.
    static let lpar = UeventTests.lpar
    static let mdevDir = "/devices/vfio_ap/matrix/\(uuidA)"

    static let files: [(Profile, String, String)] = [
        (.seed, "/devices/vfio_ap/uevent", ""),
        (.seed, "/devices/vfio_ap/matrix/uevent", "DRIVER=vfio_ap\n"),
        (.seed, "\(mdevDir)/uevent", "DRIVER=vfio_mdev\n"),
        (.upstream, "/devices/vfio_ap/uevent", ""),
        (.upstream, "/devices/vfio_ap/matrix/uevent", "DRIVER=vfio_ap\n"),
        (.upstream, "\(mdevDir)/uevent", "DRIVER=vfio_ap_mdev\n"),
    ]

    @Test(arguments: files) func fileShowsTheDevicesVariables(_ p: Profile, _ path: String, _ text: String) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        #expect(h.cat(path) == text)
        guard case .attribute(let a)? = SysfsTree.node(path, in: h) else { Issue.record("no \(path)"); return }
        #expect(a.mode == 0o644)
    }

    /// The links sd-device reads (`subsystem`, `driver`: their basenames) and
    /// the directories they lead to; the mdev driver is the profile's.
    @Test(arguments: [(Profile.seed, "vfio_mdev"), (.upstream, "vfio_ap_mdev")])
    func linksAndTheirDirectories(_ p: Profile, _ driver: String) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        let links: [(String, String)] = [
            ("/devices/ap/card05/subsystem", "../../../bus/ap"),
            ("/devices/ap/card05/driver", "../../../bus/ap/drivers/cex4card"),
            ("/devices/ap/card05/05.0004/subsystem", "../../../../bus/ap"),
            ("/devices/ap/card05/05.0004/driver", "../../../../bus/ap/drivers/vfio_ap"),
            ("/devices/vfio_ap/matrix/subsystem", "../../../bus/matrix"),
            ("/devices/vfio_ap/matrix/driver", "../../../bus/matrix/drivers/vfio_ap"),
            ("\(Self.mdevDir)/subsystem", "../../../../bus/mdev"),
            ("\(Self.mdevDir)/driver", "../../../../bus/mdev/drivers/\(driver)"),
            ("/bus/mdev/drivers/\(driver)/\(uuidA)", "../../../../devices/vfio_ap/matrix/\(uuidA)"),
        ]
        for (path, target) in links {
            #expect(SysfsTree.node(path, in: h).map(linkTarget) == target, "\(path)")
        }
        #expect(h.ls("/bus/mdev/drivers") == [driver])
        #expect(h.ls("/bus/matrix/drivers/vfio_ap") == ["matrix"])
        #expect(h.ls("/devices/vfio_ap") == ["matrix", "uevent"])
        #expect(h.ls(Self.mdevDir).contains("uevent"))
    }

    /// mdev `create`: `add` (no variables: the driver comes after), then
    /// `bind`; `remove`: `unbind`, then `remove`.
    @Test(arguments: [(Profile.seed, "vfio_mdev"), (.upstream, "vfio_ap_mdev")])
    func anMdevComesAndGoes(_ p: Profile, _ driver: String) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        let d = "/devices/vfio_ap/matrix/\(uuidA) (mdev)"
        #expect(h.ueventLines == ["uevent add \(d)", "uevent bind \(d): DRIVER=\(driver)"])
        _ = h.takeEvents()
        #expect(h.echo("1", Self.mdevDir + "/remove") == nil)
        #expect(h.ueventLines == ["uevent unbind \(d)", "uevent remove \(d)"])
    }

    /// A refused create or remove sends nothing.
    @Test func refusalsSendNothing() throws {
        var h = try host(Self.lpar, profile: .upstream)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        _ = h.takeEvents()
        #expect(h.echo(uuidA, typeDir + "/create") == "EEXIST")
        #expect(h.echo("x", Self.mdevDir + "/remove") == "EINVAL")
        #expect(h.ueventLines == [])
    }

    /// `unbind` has no `DRIVER=` (the driver is gone) and no `MODALIAS=`
    /// (`zap_modalias_env`); `bind` has both.
    static let bindings: [(Profile, String, String, [String])] = [
        (.upstream, "05.0004", "/bus/ap/drivers/vfio_ap", [
            "uevent unbind /devices/ap/card05/05.0004 (ap): DEVTYPE=ap_queue MODE=cca",
            "uevent bind /devices/ap/card05/05.0004 (ap): DEVTYPE=ap_queue DRIVER=vfio_ap MODE=cca"]),
        (.seed, "05.0004", "/bus/ap/drivers/vfio_ap", [
            "uevent unbind /devices/ap/card05/05.0004 (ap): DEVTYPE=ap_queue DEV_TYPE=000E",
            "uevent bind /devices/ap/card05/05.0004 (ap): DEVTYPE=ap_queue DRIVER=vfio_ap DEV_TYPE=000E MODALIAS=ap:t0E"]),
        (.upstream, "card06", "/bus/ap/drivers/cex4card", [
            "uevent unbind /devices/ap/card06 (ap): DEVTYPE=ap_card DEV_TYPE=000E MODE=ep11",
            "uevent bind /devices/ap/card06 (ap): DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E MODE=ep11"]),
    ]

    @Test(arguments: bindings) func unbindAndBind(_ p: Profile, _ name: String, _ driver: String, _ lines: [String]) throws {
        var h = try host(Self.lpar, profile: p)
        #expect(h.echo(name, driver + "/unbind") == nil)
        #expect(h.ueventLines == [lines[0]])
        _ = h.takeEvents()
        #expect(h.echo(name, driver + "/bind") == nil)
        #expect(h.ueventLines == [lines[1]])
    }

    /// A mask change rebinds each queue it moves: `unbind` from the old
    /// driver, `bind` to the new one, ascending, before the bus's `APMASK=`.
    @Test func aMaskChangeRebindsWithEvents() throws {
        var h = try host(Self.lpar, profile: .upstream)
        #expect(h.echo("+5", "/bus/ap/apmask") == nil)
        #expect(h.ueventLines == [
            "uevent unbind /devices/ap/card05/05.0004 (ap): DEVTYPE=ap_queue MODE=cca",
            "uevent bind /devices/ap/card05/05.0004 (ap): DEVTYPE=ap_queue DRIVER=cex4queue MODE=cca",
            "uevent unbind /devices/ap/card05/05.0007 (ap): DEVTYPE=ap_queue MODE=cca",
            "uevent bind /devices/ap/card05/05.0007 (ap): DEVTYPE=ap_queue DRIVER=cex4queue MODE=cca",
            "uevent change /devices/ap (ap): APMASK=0x0600000000000000000000000000000000000000000000000000000000000000\\n",
        ])
    }

    /// Firmware: a configured card's queues come (`add`, `bind`), a
    /// deconfigured card's go (`unbind`, `remove`) and the card stays; the
    /// card's `CONFIG=` change event comes first (`config_store` sends it
    /// before the bus scans).
    @Test func cardConfigAddsAndRemovesItsQueues() throws {
        var h = try host(Self.lpar, profile: .upstream)
        #expect(h.echo("1", "/devices/ap/card07/config") == nil)
        #expect(h.ueventLines.filter { $0.contains("card07") } == [
            "uevent change /devices/ap/card07 (ap): CONFIG=1 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000A MODALIAS=ap:t0A MODE=accel",
            "uevent add /devices/ap/card07/07.0004 (ap): DEVTYPE=ap_queue MODE=accel",
            "uevent bind /devices/ap/card07/07.0004 (ap): DEVTYPE=ap_queue DRIVER=vfio_ap MODE=accel",
            "uevent add /devices/ap/card07/07.0007 (ap): DEVTYPE=ap_queue MODE=accel",
            "uevent bind /devices/ap/card07/07.0007 (ap): DEVTYPE=ap_queue DRIVER=vfio_ap MODE=accel",
        ])
        _ = h.takeEvents()
        #expect(h.echo("0", "/devices/ap/card07/config") == nil)
        #expect(h.ueventLines == [
            "uevent change /devices/ap/card07 (ap): CONFIG=0 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000A MODALIAS=ap:t0A MODE=accel",
            "uevent unbind /devices/ap/card07/07.0004 (ap): DEVTYPE=ap_queue MODE=accel",
            "uevent remove /devices/ap/card07/07.0004 (ap): DEVTYPE=ap_queue MODE=accel",
            "uevent unbind /devices/ap/card07/07.0007 (ap): DEVTYPE=ap_queue MODE=accel",
            "uevent remove /devices/ap/card07/07.0007 (ap): DEVTYPE=ap_queue MODE=accel",
        ])
    }

    /// An adapter the LPAR gets: its card (`add`, `bind`), then its queues;
    /// one it loses: its queues, then its card, announced with the type it had.
    @Test func adaptersComeAndGoWithTheirQueues() throws {
        var h = try host(Self.lpar, profile: .seed)
        try h.addAdapter(8, type: AdapterType("CEX8A")!)
        #expect(h.ueventLines.filter { $0.contains("card08") } == [
            "uevent add /devices/ap/card08 (ap): DEVTYPE=ap_card DEV_TYPE=000E MODALIAS=ap:t0E",
            "uevent bind /devices/ap/card08 (ap): DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E",
            "uevent add /devices/ap/card08/08.0004 (ap): DEVTYPE=ap_queue DEV_TYPE=000E MODALIAS=ap:t0E",
            "uevent bind /devices/ap/card08/08.0004 (ap): DEVTYPE=ap_queue DRIVER=vfio_ap DEV_TYPE=000E MODALIAS=ap:t0E",
            "uevent add /devices/ap/card08/08.0007 (ap): DEVTYPE=ap_queue DEV_TYPE=000E MODALIAS=ap:t0E",
            "uevent bind /devices/ap/card08/08.0007 (ap): DEVTYPE=ap_queue DRIVER=vfio_ap DEV_TYPE=000E MODALIAS=ap:t0E",
        ])
        _ = h.takeEvents()
        try h.removeAdapter(6)
        #expect(h.ueventLines == [
            "uevent unbind /devices/ap/card06/06.0004 (ap): DEVTYPE=ap_queue DEV_TYPE=000E",
            "uevent remove /devices/ap/card06/06.0004 (ap): DEVTYPE=ap_queue DEV_TYPE=000E MODALIAS=ap:t0E",
            "uevent unbind /devices/ap/card06/06.0007 (ap): DEVTYPE=ap_queue DEV_TYPE=000E",
            "uevent remove /devices/ap/card06/06.0007 (ap): DEVTYPE=ap_queue DEV_TYPE=000E MODALIAS=ap:t0E",
            "uevent unbind /devices/ap/card06 (ap): DEVTYPE=ap_card DEV_TYPE=000E",
            "uevent remove /devices/ap/card06 (ap): DEVTYPE=ap_card DEV_TYPE=000E MODALIAS=ap:t0E",
        ])
    }

    /// `uevent` writes on the matrix device and an mdev send their synthetic
    /// events; vfio_ap's root device is on no bus, so its write succeeds
    /// and sends nothing, and a bad one is still EINVAL.
    @Test func syntheticEventsOfTheVfioDevices() throws {
        var h = try host(Self.lpar, profile: .upstream)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        _ = h.takeEvents()
        #expect(h.echo("change", "/devices/vfio_ap/matrix/uevent") == nil)
        #expect(h.echo("remove", Self.mdevDir + "/uevent") == nil)
        #expect(h.ueventLines == [
            "uevent change /devices/vfio_ap/matrix (matrix): SYNTH_UUID=0 DRIVER=vfio_ap",
            "uevent remove /devices/vfio_ap/matrix/\(uuidA) (mdev): SYNTH_UUID=0 DRIVER=vfio_ap_mdev",
        ])
        #expect(h.ls(Self.mdevDir).contains("remove"), "a synthetic remove removes nothing")
        _ = h.takeEvents()
        #expect(h.echo("change", "/devices/vfio_ap/uevent") == nil)
        #expect(h.events == [])
        #expect(h.echo("bogus", "/devices/vfio_ap/uevent") == "EINVAL")
        #expect(h.kernelLines == ["synth uevent: /devices/vfio_ap: unknown uevent action string",
                                  " vfio_ap: uevent: failed to send synthetic uevent: -22"])
    }
}
