import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// Card `config` and driver bind/unbind through sysfs (SPEC §1, §2).
@Suite struct SysfsBusTests {
    static let lpar = #"{"apmask": "+6", "aqmask": "0xffff", "domains": [4, 7], "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8P"}, {"id": 7, "type": "CEX8A", "configured": false}]}"#

    @Test func cardConfigDeconfiguresAndConfigures() throws {
        var h = try host(Self.lpar)
        #expect(h.cat("/devices/ap/card05/config") == "1\n")
        #expect(h.cat("/devices/ap/card07/config") == "0\n")
        #expect(h.ls("/devices/ap/card07").allSatisfy { !$0.hasPrefix("07.") })
        #expect(h.cat("/bus/ap/ap_adapter_mask") == "0x0600000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.echo("0\n", "/devices/ap/card05/config") == nil)
        #expect(h.cat("/devices/ap/card05/config") == "0\n")
        #expect(h.ls("/devices/ap").contains("card05"))
        #expect(!h.ls("/bus/ap/devices").contains("05.0004"))
        #expect(h.ls("/bus/ap/devices").contains("card05"))
        #expect(h.cat("/bus/ap/ap_adapter_mask") == "0x0200000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.echo(" 1", "/devices/ap/card05/config") == nil)
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == ["05.0004", "05.0007"])
        #expect(h.echo("+1", "/devices/ap/card07/config") == nil)
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == ["05.0004", "05.0007", "07.0004", "07.0007"])
    }

    @Test(arguments: ["x", "2", "-1", "\n", "+"])
    func cardConfigRejects(_ input: String) throws {
        var h = try host(Self.lpar)
        #expect(h.echo(input, "/devices/ap/card05/config") == "EINVAL")
        #expect(h.cat("/devices/ap/card05/config") == "1\n")
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == ["05.0004", "05.0007"])
    }

    @Test func unbindAndBind() throws {
        var h = try host(Self.lpar)
        #expect(h.ls("/bus/ap/drivers/cex4queue") == ["06.0004", "06.0007"])
        #expect(h.echo("05.0004\n", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(!h.ls("/bus/ap/drivers/vfio_ap").contains("05.0004"))
        #expect(!h.ls("/devices/ap/card05/05.0004").contains("driver"))
        #expect(h.echo("05.0004", "/bus/ap/drivers/cex4queue/bind") == "ENODEV")   // masks give it to vfio_ap
        #expect(h.echo("05.0004", "/bus/ap/drivers/vfio_ap/bind") == nil)
        #expect(h.ls("/bus/ap/drivers/vfio_ap").contains("05.0004"))
        #expect(h.echo("06.0004", "/bus/ap/drivers/cex4queue/unbind") == nil)
        #expect(h.echo("06.0004", "/bus/ap/drivers/vfio_ap/bind") == "ENODEV")     // reserved
        #expect(h.echo("06.0004", "/bus/ap/drivers/cex4queue/bind") == nil)
    }

    @Test(arguments: [
        ("05.0099", "/bus/ap/drivers/vfio_ap/unbind"),      // no such queue
        ("07.0004", "/bus/ap/drivers/vfio_ap/unbind"),      // deconfigured adapter: no queue
        ("06.0004", "/bus/ap/drivers/vfio_ap/unbind"),      // bound to cex4queue
        ("05.0004", "/bus/ap/drivers/cex4queue/unbind"),    // bound to vfio_ap
        ("05.0004\n\n", "/bus/ap/drivers/vfio_ap/unbind"),  // two newlines
        ("5.4", "/bus/ap/drivers/vfio_ap/unbind"),
        ("05.0004 ", "/bus/ap/drivers/vfio_ap/unbind"),
        ("05.0004", "/bus/ap/drivers/vfio_ap/bind"),        // already bound
        ("05.0004", "/bus/ap/drivers/cex4queue/bind"),      // already bound
        ("05.0099", "/bus/ap/drivers/vfio_ap/bind"),
    ])
    func bindUnbindENODEV(_ name: String, _ path: String) throws {
        var h = try host(Self.lpar)
        #expect(h.echo(name, path) == "ENODEV")
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == ["05.0004", "05.0007"])
        #expect(h.ls("/bus/ap/drivers/cex4queue") == ["06.0004", "06.0007"])
    }

    @Test func unbindUnplugsFromAGuest() throws {
        var h = try host(#"{"apmask": "0x", "domains": [4, 7], "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8C"}]}"#)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        for (f, v) in [("assign_adapter", "5"), ("assign_adapter", "6"), ("assign_domain", "4"), ("assign_domain", "7")] {
            #expect(h.echo(v, "\(matrixDir)/\(uuidA)/\(f)") == nil)
        }
        try h.start("g1", mdev: uuidA)
        #expect(h.cat("\(matrixDir)/\(uuidA)/guest_matrix") == "05.0004\n05.0007\n06.0004\n06.0007\n")
        #expect(h.echo("06.0007", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(h.cat("\(matrixDir)/\(uuidA)/guest_matrix") == "05.0004\n05.0007\n")
        #expect(h.firmware.records[APQN(6, 4)]?.resets == 1 && h.firmware.records[APQN(6, 7)]?.resets == 1)
        #expect(h.echo("06.0007", "/bus/ap/drivers/vfio_ap/bind") == nil)
        #expect(h.cat("\(matrixDir)/\(uuidA)/guest_matrix") == "05.0004\n05.0007\n06.0004\n06.0007\n")
    }
}
