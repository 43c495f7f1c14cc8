import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// `bus/ap/apmask` and `bus/ap/aqmask` through sysfs (kernel-reference §2, V1–V5, V13).
@Suite struct SysfsMaskTests {
    let fourAdapters = #"{"domains": "0-3", "adapters": [{"id": 4, "type": "CEX8C"}, {"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX5A"}, {"id": 7, "type": "CEX7C"}]}"#

    @Test func bootDefaultIsAllOnes() throws {
        let h = try host(fourAdapters)
        #expect(h.cat("/bus/ap/apmask") == "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n")
        #expect(h.cat("/bus/ap/aqmask") == "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n")
        #expect(h.ls("/bus/ap/drivers/vfio_ap").isEmpty)
    }

    @Test func v2AbsoluteStrings() throws {
        var h = try host(fourAdapters)
        #expect(h.echo("0x41\n", "/bus/ap/apmask") == nil)
        #expect(h.cat("/bus/ap/apmask") == "0x4100000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.echo("0x123", "/bus/ap/apmask") == nil)
        #expect(h.cat("/bus/ap/apmask") == "0x1230000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.echo("0X41", "/bus/ap/apmask") == "EINVAL")
        #expect(h.echo("0x" + String(repeating: "1", count: 65), "/bus/ap/apmask") == "EINVAL")
        #expect(h.cat("/bus/ap/apmask") == "0x1230000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.echo("\n", "/bus/ap/apmask") == nil)
        #expect(h.cat("/bus/ap/apmask") == "0x0000000000000000000000000000000000000000000000000000000000000000\n")
    }

    @Test func v3RelativeStrings() throws {
        var h = try host(fourAdapters)
        #expect(h.echo("+0,-6,+0x47,-0xf0\n", "/bus/ap/apmask") == nil)
        #expect(h.cat("/bus/ap/apmask") == "0xfdffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7fff\n")
        for bad in ["+1, +2\n", "+5-3\n", "+256\n"] {
            #expect(h.echo(bad, "/bus/ap/apmask") == "EINVAL")
        }
        #expect(h.cat("/bus/ap/apmask") == "0xfdffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7fff\n")
    }

    @Test func v4SecuringMovesEveryQueueOfTheSecuredIds() throws {
        var h = try host(#"{"domains": [4, 71, 171, 255], "adapters": [{"id": 4, "type": "CEX8C"}, {"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX5A"}, {"id": 7, "type": "CEX7C"}]}"#)
        #expect(h.echo("-5,-6\n", "/bus/ap/apmask") == nil)
        #expect(h.echo("-4,-0x47,-0xab,-0xff\n", "/bus/ap/aqmask") == nil)
        #expect(h.cat("/bus/ap/apmask") == "0xf9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n")
        #expect(h.cat("/bus/ap/aqmask") == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe\n")
        // Reserved needs both bits: adapters 4 and 7 lose every domain too.
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == [
            "04.0004", "04.0047", "04.00ab", "04.00ff", "05.0004", "05.0047", "05.00ab", "05.00ff",
            "06.0004", "06.0047", "06.00ab", "06.00ff", "07.0004", "07.0047", "07.00ab", "07.00ff",
        ])
        #expect(h.ls("/bus/ap/drivers/cex4queue").isEmpty)
    }

    @Test func v4OnlyAdaptersFiveAndSixSecured() throws {
        // Securing by apmask alone: exactly the queues of adapters 5 and 6.
        var h = try host(#"{"domains": [4, 71, 171, 255], "adapters": [{"id": 4, "type": "CEX8C"}, {"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX5A"}, {"id": 7, "type": "CEX7C"}]}"#)
        #expect(h.echo("-5,-6", "/bus/ap/apmask") == nil)
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == [
            "05.0004", "05.0047", "05.00ab", "05.00ff", "06.0004", "06.0047", "06.00ab", "06.00ff",
        ])
        #expect(SysfsTree.node("/devices/ap/card05/05.0004/driver", in: h).map(linkTarget)
            == "../../../../bus/ap/drivers/vfio_ap")
    }

    @Test func v1SeedMaskExample() throws {
        var h = try host(#"{"domains": "0-1", "adapters": [{"id": 0, "type": "CEX8C"}, {"id": 1, "type": "CEX8C"}, {"id": 2, "type": "CEX8C"}, {"id": 3, "type": "CEX8C"}, {"id": 4, "type": "CEX8C"}, {"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8C"}, {"id": 7, "type": "CEX8C"}]}"#)
        #expect(h.echo("0x7d00000000000000000000000000000000000000000000000000000000000000", "/bus/ap/apmask") == nil)
        #expect(h.echo("0x8000000000000000000000000000000000000000000000000000000000000000", "/bus/ap/aqmask") == nil)
        #expect(h.ls("/bus/ap/drivers/cex4queue") == ["01.0000", "02.0000", "03.0000", "04.0000", "05.0000", "07.0000"])
        #expect(h.ls("/bus/ap/drivers/vfio_ap").contains("00.0000"))
        #expect(h.ls("/bus/ap/drivers/vfio_ap").contains("06.0000"))
        #expect(h.ls("/bus/ap/drivers/vfio_ap").contains("01.0001"))
    }

    @Test func v5BootParameters() throws {
        let h = try host(#"{"apmask": "0xffff", "aqmask": "0x40", "domains": "0-2", "adapters": [{"id": 0, "type": "CEX8C"}, {"id": 15, "type": "CEX8C"}, {"id": 16, "type": "CEX8C"}]}"#)
        #expect(h.cat("/bus/ap/apmask") == "0xffff000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.cat("/bus/ap/aqmask") == "0x4000000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.ls("/bus/ap/drivers/cex4queue") == ["00.0001", "0f.0001"])
    }

    @Test func v13SeedMaskChangeBlocked() throws {
        var h = try host(#"{"aqmask": "+0-83,+85-255", "domains": [4, 84], "adapters": [{"id": 4, "type": "CEX8C"}, {"id": 5, "type": "CEX8C"}]}"#)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        #expect(h.echo(uuidB + "\n", typeDir + "/create") == nil)
        #expect(h.echo("5", "\(matrixDir)/\(uuidA)/assign_adapter") == nil)
        #expect(h.echo("0x54", "\(matrixDir)/\(uuidA)/assign_domain") == nil)
        #expect(h.echo("4", "\(matrixDir)/\(uuidB)/assign_adapter") == nil)
        #expect(h.echo("0x54", "\(matrixDir)/\(uuidB)/assign_domain") == nil)
        let before = h.cat("/bus/ap/aqmask")
        _ = h.takeEvents()
        #expect(h.echo("+0x54\n", "/bus/ap/aqmask") == "EADDRINUSE")
        #expect(h.kernelLines == [
            "Userspace may not re-assign queue 05.0054 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804",
            "Userspace may not re-assign queue 04.0054 already assigned to cef03c3c-903d-4ecc-9a83-40694cb8aee4",
        ])
        #expect(h.cat("/bus/ap/aqmask") == before)
        #expect(before == "0xfffffffffffffffffffff7ffffffffffffffffffffffffffffffffffffffffff\n")
        #expect(h.ls("/bus/ap/drivers/vfio_ap") == ["04.0054", "05.0054"])
    }

    @Test func emptyWriteDoesNothing() throws {
        var h = try host(fourAdapters)
        #expect(h.echo("", "/bus/ap/apmask") == nil)
        #expect(h.cat("/bus/ap/apmask") == maskText("", fill: "f"))
    }
}
