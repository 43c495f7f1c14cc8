import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// The mdev type and mdev attributes through sysfs (kernel-reference §3, §7; V6, V7, V17, V20).
@Suite struct SysfsMdevTests {
    static let lpar = #"{"domains": [4, 71, 171, 255], "controlDomains": "0-255", "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX5A"}]}"#

    func mdevHost(_ json: String = lpar) throws -> APHost {
        var h = try host(json)
        #expect(h.echo("-0-255", "/bus/ap/apmask") == nil)
        #expect(h.echo(uuidA + "\n", typeDir + "/create") == nil)
        return h
    }

    func attr(_ name: String, _ uuid: String = uuidA) -> String { "\(matrixDir)/\(uuid)/\(name)" }

    @Test func v20CreateAndRemove() throws {
        var h = try host(Self.lpar)
        #expect(h.cat(typeDir + "/available_instances") == "65536\n")
        #expect(h.echo("62177883-F1BB-47F0-914D-32A22E3A8804\n", typeDir + "/create") == nil)
        #expect(h.ls(matrixDir).contains("62177883-f1bb-47f0-914d-32a22e3a8804"))
        #expect(h.ls(typeDir + "/devices") == ["62177883-f1bb-47f0-914d-32a22e3a8804"])
        #expect(h.ls("/bus/mdev/devices") == ["62177883-f1bb-47f0-914d-32a22e3a8804"])
        #expect(h.cat(typeDir + "/available_instances") == "65535\n")
        #expect(h.echo("62177883-f1bb-47f0-914d-32a22e3a8804\n", typeDir + "/create") == "EEXIST")
        #expect(h.echo("62177883-f1bb-47f0-914d-32a22e3a880", typeDir + "/create") == "EINVAL")      // 35 bytes
        #expect(h.echo("62177883-f1bb-47f0-914d-32a22e3a8804\n\n", typeDir + "/create") == "EINVAL")  // 38 bytes
        #expect(h.echo("0\n", attr("remove")) == nil)
        #expect(h.ls(matrixDir).contains(uuidA))
        try h.start("g1", mdev: uuidA)
        #expect(h.echo("1\n", attr("remove")) == "EBUSY")
        try h.stopGuest("g1")
        #expect(h.echo("1\n", attr("remove")) == nil)
        #expect(!h.ls(matrixDir).contains(uuidA))
        #expect(h.cat(typeDir + "/available_instances") == "65536\n")
        #expect(h.cat(attr("matrix")) == "ENODEV")
    }

    @Test func exhaustedInstancesIsEPERM() throws {
        var h = try host(#"{"maxMdevs": 1, "domains": [4], "adapters": [{"id": 5, "type": "CEX8C"}]}"#)
        #expect(h.cat(typeDir + "/available_instances") == "1\n")
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        #expect(h.cat(typeDir + "/available_instances") == "0\n")
        #expect(h.echo(uuidB, typeDir + "/create") == "EPERM")
        #expect(h.echo(uuidA, typeDir + "/create") == "EEXIST")
        #expect(h.echo("nonsense", typeDir + "/create") == "EINVAL")
    }

    @Test func typeAttributes() throws {
        let h = try host(Self.lpar)
        #expect(h.cat(typeDir + "/name") == "VFIO AP Passthrough Device\n")
        #expect(h.cat(typeDir + "/device_api") == "vfio-ap\n")
    }

    @Test(arguments: [
        ("5", "05.\n"), ("5\n", "05.\n"), ("+5", "05.\n"), ("0x5", "05.\n"), ("05", "05.\n"), ("010", "08.\n"),
        ("08", "EINVAL"), ("-5", "EINVAL"), (" 5", "EINVAL"), ("5 ", "EINVAL"), ("0x", "EINVAL"),
        ("18446744073709551616", "ERANGE"), ("256", "ENODEV"), ("255", "ff.\n"),
    ])
    func v6AssignAdapterParsing(_ input: String, _ result: String) throws {
        var h = try mdevHost()
        let err = h.echo(input, attr("assign_adapter"))
        #expect((err ?? h.cat(attr("matrix"))) == result)
        if err != nil { #expect(h.cat(attr("matrix")) == "") }
    }

    @Test func v6NonAPXAHost() throws {
        var h = try mdevHost(#"{"apxa": false, "domains": [4], "adapters": [{"id": 5, "type": "CEX8C"}]}"#)
        #expect(h.cat("/bus/ap/ap_max_adapter_id") == "63\n")
        #expect(h.cat("/bus/ap/ap_max_domain_id") == "15\n")
        #expect(h.echo("64", attr("assign_adapter")) == "ENODEV")
        #expect(h.echo("16", attr("assign_domain")) == "ENODEV")
        #expect(h.echo("16", attr("assign_control_domain")) == "ENODEV")
        #expect(h.echo("63", attr("assign_adapter")) == nil)
        #expect(h.echo("15", attr("assign_domain")) == nil)
        #expect(h.cat(attr("matrix")) == "3f.000f\n")
    }

    @Test func v7ShowFormats() throws {
        var h = try mdevHost()
        for (file, id) in [("assign_adapter", "5"), ("assign_adapter", "6"), ("assign_domain", "4"), ("assign_domain", "0xab"),
                           ("assign_control_domain", "4"), ("assign_control_domain", "0xab")] {
            #expect(h.echo(id, attr(file)) == nil)
        }
        #expect(h.cat(attr("matrix")) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
        #expect(h.cat(attr("control_domains")) == "0004\n00ab\n")
        #expect(h.echo(uuidB, typeDir + "/create") == nil)
        #expect(h.cat(attr("matrix", uuidB)) == "")
        #expect(h.cat(attr("control_domains", uuidB)) == "")
        #expect(h.echo("0x47", attr("assign_domain", uuidB)) == nil)
        #expect(h.cat(attr("matrix", uuidB)) == ".0047\n")
        #expect(h.echo(uuidC, typeDir + "/create") == nil)
        #expect(h.echo("5", attr("assign_adapter", uuidC)) == nil)
        #expect(h.cat(attr("matrix", uuidC)) == "05.\n")
    }

    @Test func writeOnlyAndReadOnlyAttributes() throws {
        var h = try mdevHost()
        #expect(h.cat(attr("assign_adapter")) == "EACCES")
        #expect(h.echo("x", attr("matrix")) == "EACCES")
        #expect(h.echo("x", attr("guest_matrix")) == "EACCES")
    }

    @Test func guestMatrixNeedsAGuest() throws {
        var h = try mdevHost()
        #expect(h.echo("5", attr("assign_adapter")) == nil)
        #expect(h.echo("4", attr("assign_domain")) == nil)
        #expect(h.cat(attr("guest_matrix")) == "ENODEV")
        try h.start("g1", mdev: uuidA)
        #expect(h.cat(attr("guest_matrix")) == "05.0004\n")
        #expect(h.echo("6", attr("assign_adapter")) == nil)
        #expect(h.cat(attr("guest_matrix")) == "05.0004\n06.0004\n")
        #expect(h.echo("4", attr("unassign_domain")) == nil)
        #expect(h.cat(attr("guest_matrix")) == "")
        #expect(h.cat(attr("matrix")) == "05.\n06.\n")
    }

    @Test func v17SharingOnAssign() throws {
        var h = try mdevHost()
        #expect(h.echo("5", attr("assign_adapter")) == nil)
        #expect(h.echo("4", attr("assign_domain")) == nil)
        #expect(h.echo(uuidB, typeDir + "/create") == nil)
        #expect(h.echo("4", attr("assign_domain", uuidB)) == nil)
        _ = h.takeEvents()
        #expect(h.echo("5", attr("assign_adapter", uuidB)) == "EADDRINUSE")
        #expect(h.kernelLines == ["Userspace may not re-assign queue 05.0004 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804"])
        #expect(h.cat(attr("matrix", uuidB)) == ".0004\n")
        #expect(h.echo("4", attr("assign_control_domain")) == nil)
        #expect(h.echo("4", attr("assign_control_domain", uuidB)) == nil)
        #expect(h.cat(attr("control_domains", uuidB)) == "0004\n")
    }

    @Test func v18ReservationOnAssign() throws {
        var h = try host(#"{"apmask": "+0-4,+6-255", "domains": [4], "adapters": [{"id": 5, "type": "CEX8C"}, {"id": 6, "type": "CEX8C"}]}"#)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        #expect(h.echo("5", attr("assign_adapter")) == nil)
        #expect(h.echo("4", attr("assign_domain")) == nil)
        #expect(h.echo(uuidB, typeDir + "/create") == nil)
        #expect(h.echo("6", attr("assign_adapter", uuidB)) == nil)
        #expect(h.echo("4", attr("assign_domain", uuidB)) == "EADDRNOTAVAIL")
        #expect(h.cat(attr("matrix", uuidB)) == "06.\n")
    }

    @Test func iommuGroupsAreTheLowestFree() throws {
        var h = try mdevHost()
        #expect(h.echo(uuidB, typeDir + "/create") == nil)
        #expect(SysfsTree.node(attr("iommu_group", uuidB), in: h).map(linkTarget) == "../../../../kernel/iommu_groups/1")
        #expect(h.echo("1", attr("remove")) == nil)
        #expect(h.echo(uuidC, typeDir + "/create") == nil)
        #expect(SysfsTree.node(attr("iommu_group", uuidC), in: h).map(linkTarget) == "../../../../kernel/iommu_groups/0")
    }
}

/// SPEC §2: a read whose text passes one page is cut at 4095 bytes (kernel-reference §3.4).
@Suite struct SysfsPageTests {
    @Test func fullMatrixIsCutAt4095Bytes() throws {
        var h = try host(#"{"apmask": "0x", "aqmask": "0x", "domains": [4], "adapters": [{"id": 5, "type": "CEX8C"}]}"#)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        for id in 0...255 {
            #expect(h.echo("\(id)", "\(matrixDir)/\(uuidA)/assign_adapter") == nil)
            #expect(h.echo("\(id)", "\(matrixDir)/\(uuidA)/assign_domain") == nil)
        }
        let text = h.cat("\(matrixDir)/\(uuidA)/matrix")
        #expect(text.utf8.count == 4095)
        #expect(text.hasPrefix("00.0000\n00.0001\n"))
        #expect(text.hasSuffix("01.00fe\n01.00ff"))
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 512)
    }
}
