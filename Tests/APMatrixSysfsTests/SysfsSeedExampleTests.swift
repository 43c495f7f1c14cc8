import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// The seed's three-guest example (vfio-ap.rst "Example"), driven through sysfs.
@Suite struct SysfsSeedExampleTests {
    func attr(_ uuid: String, _ name: String) -> String { "\(matrixDir)/\(uuid)/\(name)" }

    @Test func threeGuests() throws {
        var h = try APHost(.seedExample)
        // 2. Secure the AP queues.
        #expect(h.echo("-5,-6\n", "/bus/ap/apmask") == nil)
        #expect(h.echo("-4,-0x47,-0xab,-0xff\n", "/bus/ap/aqmask") == nil)
        for apqn in ["05.0004", "05.0047", "05.00ab", "05.00ff", "06.0004", "06.0047", "06.00ab", "06.00ff"] {
            #expect(h.ls("/bus/ap/drivers/vfio_ap").contains(apqn))
        }
        // 3. Create the mdevs.
        for u in [uuidA, uuidB, uuidC] { #expect(h.echo(u + "\n", typeDir + "/create") == nil) }
        #expect(h.cat(typeDir + "/available_instances") == "65533\n")
        // 4. Assign.
        for (u, f, v) in [(uuidA, "assign_adapter", "5"), (uuidA, "assign_adapter", "6"),
                          (uuidA, "assign_domain", "4"), (uuidA, "assign_domain", "0xab"),
                          (uuidB, "assign_adapter", "5"), (uuidB, "assign_domain", "0x47"), (uuidB, "assign_domain", "0xff"),
                          (uuidC, "assign_adapter", "6"), (uuidC, "assign_domain", "0x47"), (uuidC, "assign_domain", "0xff")] {
            #expect(h.echo(v + "\n", attr(u, f)) == nil, "\(f) \(v) on \(u)")
        }
        #expect(h.cat(attr(uuidA, "matrix")) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
        #expect(h.cat(attr(uuidB, "matrix")) == "05.0047\n05.00ff\n")
        #expect(h.cat(attr(uuidC, "matrix")) == "06.0047\n06.00ff\n")
        // 5.–7. Start the guests.
        try h.start("Guest1", mdev: uuidA)
        try h.start("Guest2", mdev: uuidB)
        try h.start("Guest3", mdev: uuidC)
        #expect(h.cat(attr(uuidA, "guest_matrix")) == "05.0004\n05.00ab\n06.0004\n06.00ab\n")
        #expect(h.cat(attr(uuidB, "guest_matrix")) == "05.0047\n05.00ff\n")
        #expect(h.cat(attr(uuidC, "guest_matrix")) == "06.0047\n06.00ff\n")
        // A mask change that would take assigned queues is refused and logged per mdev.
        // (Adapters 5 and 6 back in apmask reserve nothing assigned: their
        // domains are clear in aqmask.)
        #expect(h.echo("+5,+6\n", "/bus/ap/apmask") == nil)
        _ = h.takeEvents()
        #expect(h.echo("+0x47\n", "/bus/ap/aqmask") == "EADDRINUSE")
        #expect(h.kernelLines == [inUse("05.0047", uuidB), inUse("06.0047", uuidC)])
        #expect(h.cat("/bus/ap/aqmask") == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe\n")
        // Shut Guest1 down; then its mdev may be removed.
        #expect(h.echo("1", attr(uuidA, "remove")) == "EBUSY")
        try h.stopGuest("Guest1")
        #expect(h.echo("1", attr(uuidA, "remove")) == nil)
        #expect(h.cat(typeDir + "/available_instances") == "65534\n")
    }
}
