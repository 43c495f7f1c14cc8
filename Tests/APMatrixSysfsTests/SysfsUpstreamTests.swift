import APMatrixRuntime
import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

// The attributes only the upstream profile has (kernel-reference §3.5–3.7,
// §9.18), through sysfs paths and texts.

func upstreamHost() throws -> APHost {
    try APHost(HostFile.parse(b(#"{"domains": "0-15,0xab", "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8P"}]}"#)),
               profile: .upstream)
}

@Suite struct SysfsUpstreamTests {
    @Test func featuresAPConfigAndStatusExistOnlyUpstream() throws {
        var seed = try APHost(HostFile.parse(b(#"{"domains": "0-15", "adapters": [{"id": 5, "type": "CEX8C"}]}"#)))
        var up = try upstreamHost()
        seed.echo("-5", "/bus/ap/apmask")
        up.echo("-5", "/bus/ap/apmask")
        seed.echo(uuidA, typeDir + "/create")
        up.echo(uuidA, typeDir + "/create")
        #expect(SysfsTree.node(matrixDir + "/features", in: seed) == nil)
        #expect(up.cat(matrixDir + "/features") == "guest_matrix hotplug ap_config\n")
        #expect(SysfsTree.node(matrixDir + "/\(uuidA)/ap_config", in: seed) == nil)
        #expect(SysfsTree.node("/devices/ap/card05/05.0004/status", in: seed) == nil)
        #expect(up.cat("/devices/ap/card05/05.0004/status") == "unassigned\n")
        #expect(SysfsTree.node("/devices/ap/card06/06.0004/status", in: up) == nil, "a queue bound to cex4queue has no status")
    }

    @Test func apConfigReadWriteAndGuestMatrixWithoutGuest() throws {
        var h = try upstreamHost()
        h.echo("-5,-6", "/bus/ap/apmask")
        h.echo(uuidA, typeDir + "/create")
        let config = matrixDir + "/\(uuidA)/ap_config"
        #expect(h.cat(config) == "0x0000000000000000000000000000000000000000000000000000000000000000,0x0000000000000000000000000000000000000000000000000000000000000000,0x0000000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.echo("0x06,0x08,0x08\n", config) == nil)
        #expect(h.cat(config) == "0x0600000000000000000000000000000000000000000000000000000000000000,0x0800000000000000000000000000000000000000000000000000000000000000,0x0800000000000000000000000000000000000000000000000000000000000000\n")
        #expect(h.cat(matrixDir + "/\(uuidA)/matrix") == "05.0004\n06.0004\n")
        #expect(h.cat(matrixDir + "/\(uuidA)/guest_matrix") == "05.0004\n06.0004\n")
        #expect(h.cat(matrixDir + "/\(uuidA)/control_domains") == "0004\n")
        #expect(h.cat("/devices/ap/card05/05.0004/status") == "assigned\n")
        #expect(h.echo("0x06,0x08", config) == "EINVAL")
        h.echo(uuidB, typeDir + "/create")
        #expect(h.echo("0x04,0x08,0x00", matrixDir + "/\(uuidB)/ap_config") == "EADDRINUSE")
        #expect(h.echo("1", matrixDir + "/\(uuidB)/remove") == nil)
        #expect(h.echo("5", matrixDir + "/\(uuidA)/unassign_adapter") == nil)
        #expect(h.cat(matrixDir + "/\(uuidA)/guest_matrix") == "06.0004\n")
    }
}
