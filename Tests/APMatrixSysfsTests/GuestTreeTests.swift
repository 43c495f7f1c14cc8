import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// A guest's own `/sys` (GuestSysfsTree): its AP bus as its last scan found it.
@Suite struct GuestTreeTests {
    func attr(_ uuid: String, _ name: String) -> String { "\(matrixDir)/\(uuid)/\(name)" }

    /// The seed's three guests (vfio-ap.rst "Example"), Guest1 with control domain 4.
    func seedGuests(cpu: [String] = ["host", "host", "host"]) throws -> APHost {
        var h = try APHost(.seedExample)
        #expect(h.echo("-5,-6\n", "/bus/ap/apmask") == nil)
        #expect(h.echo("-4,-0x47,-0xab,-0xff\n", "/bus/ap/aqmask") == nil)
        for u in [uuidA, uuidB, uuidC] { #expect(h.echo(u + "\n", typeDir + "/create") == nil) }
        for (u, f, v) in [(uuidA, "assign_adapter", "5"), (uuidA, "assign_adapter", "6"),
                          (uuidA, "assign_domain", "4"), (uuidA, "assign_domain", "0xab"),
                          (uuidA, "assign_control_domain", "4"),
                          (uuidB, "assign_adapter", "5"), (uuidB, "assign_domain", "0x47"), (uuidB, "assign_domain", "0xff"),
                          (uuidC, "assign_adapter", "6"), (uuidC, "assign_domain", "0x47"), (uuidC, "assign_domain", "0xff")] {
            #expect(h.echo(v + "\n", attr(u, f)) == nil, "\(f) \(v) on \(u)")
        }
        for (i, u) in [uuidA, uuidB, uuidC].enumerated() {
            try h.startGuest("Guest\(i + 1)", cpu: CPUModel(parsing: cpu[i], facilities: h.firmware.facilities),
                             device: device(u), at: .boot)
        }
        return h
    }

    func cat(_ h: APHost, _ guest: String, _ path: String, at now: Uptime = .boot) -> String {
        do { return String(decoding: try GuestSysfsTree(guest: guest).read(path, in: h, at: now), as: UTF8.self) } catch {
            return error.errno.symbol
        }
    }

    func echo(_ h: inout APHost, _ guest: String, _ text: String, _ path: String, at now: Uptime = .boot) -> String? {
        do { try GuestSysfsTree(guest: guest).write(path, b(text), in: &h, at: now); return nil } catch { return error.errno.symbol }
    }

    func ls(_ h: APHost, _ guest: String, _ path: String) -> [String] {
        GuestSysfsTree(guest: guest).children(path, in: h) ?? ["ENOENT"]
    }

    @Test func eachGuestSeesExactlyItsGuestMatrix() throws {
        let h = try seedGuests()
        #expect(ls(h, "Guest1", "/bus/ap/devices") == ["05.0004", "05.00ab", "06.0004", "06.00ab", "card05", "card06"])
        #expect(ls(h, "Guest2", "/bus/ap/devices") == ["05.0047", "05.00ff", "card05"])
        #expect(ls(h, "Guest3", "/bus/ap/devices") == ["06.0047", "06.00ff", "card06"])
        #expect(ls(h, "Guest1", "/devices/ap") == ["card05", "card06"])
        #expect(ls(h, "Guest1", "/devices/ap/card05").filter { $0.hasPrefix("05.") } == ["05.0004", "05.00ab"])
        #expect(cat(h, "Guest1", "/bus/ap/ap_adapter_mask") == maskText("06"))
        #expect(cat(h, "Guest1", "/bus/ap/ap_usage_domain_mask") == maskText("08" + String(repeating: "0", count: 40) + "1"))
        #expect(cat(h, "Guest1", "/bus/ap/ap_control_domain_mask") == maskText("08"))
        #expect(cat(h, "Guest2", "/bus/ap/ap_control_domain_mask") == maskText(""))
        #expect(cat(h, "Guest2", "/bus/ap/ap_domain") == "71\n")
        #expect(cat(h, "Guest1", "/bus/ap/bindings") == "4/4 (complete)\n")
        #expect(cat(h, "Guest1", "/bus/ap/scans") == "1\n")
        #expect(cat(h, "Guest1", "/bus/ap/config_time") == "30\n")
        #expect(cat(h, "Guest1", "/bus/ap/ap_max_adapter_id") == "255\n")
        #expect(cat(h, "Guest1", "/bus/ap/ap_interrupts") == "1\n")
        #expect(cat(h, "Guest1", "/bus/ap/features") == "APSC APXA QACT RC8A\n")
    }

    @Test func cardsAndQueuesCarryTheHostCardsTypeAndTheDefaultDrivers() throws {
        let h = try seedGuests()
        // seedExample: adapter 5 is a CEX8C (hwtype 14), CCA with APXA.
        #expect(cat(h, "Guest1", "/devices/ap/card05/type") == "CEX8C\n")
        #expect(cat(h, "Guest1", "/devices/ap/card05/hwtype") == "14\n")
        #expect(cat(h, "Guest1", "/devices/ap/card05/ap_functions") == "0x72000000\n")
        #expect(cat(h, "Guest1", "/devices/ap/card05/online") == "1\n")
        #expect(cat(h, "Guest1", "/devices/ap/card05/config") == "1\n")
        #expect(cat(h, "Guest1", "/devices/ap/card05/05.0004/interrupt") == "Interrupts enabled.\n")
        #expect(cat(h, "Guest1", "/devices/ap/card05/05.0004/online") == "1\n")
        let tree = GuestSysfsTree(guest: "Guest1")
        #expect(tree.node("/devices/ap/card05/driver", in: h).map(linkTarget) == "../../../bus/ap/drivers/cex4card")
        #expect(tree.node("/devices/ap/card05/05.0004/driver", in: h).map(linkTarget) == "../../../../bus/ap/drivers/cex4queue")
        #expect(tree.node("/bus/ap/devices/05.0004", in: h).map(linkTarget) == "../../../devices/ap/card05/05.0004")
        #expect(ls(h, "Guest1", "/bus/ap/drivers/cex4card") == ["card05", "card06"])
        #expect(ls(h, "Guest2", "/bus/ap/drivers/cex4queue") == ["05.0047", "05.00ff"])
        #expect(ls(h, "Guest1", "/devices/ap/card07") == ["ENOENT"], "adapter 7 is not in Guest1's CRYCB")
    }

    @Test func writesGoToTheGuestsBus() throws {
        var h = try seedGuests()
        #expect(echo(&h, "Guest1", "0", "/devices/ap/card05/online") == nil)
        #expect(cat(h, "Guest1", "/devices/ap/card05/online") == "0\n")
        #expect(echo(&h, "Guest1", "2", "/devices/ap/card05/05.0004/online") == "EINVAL")
        #expect(echo(&h, "Guest1", "0", "/devices/ap/card05/config") == "EIO")
        #expect(echo(&h, "Guest1", "4", "/bus/ap/config_time") == "EINVAL")
        #expect(echo(&h, "Guest1", "5", "/bus/ap/config_time") == nil)
        #expect(cat(h, "Guest1", "/bus/ap/config_time") == "5\n")
        #expect(echo(&h, "Guest1", "0xab", "/bus/ap/ap_domain") == nil)
        #expect(cat(h, "Guest1", "/bus/ap/ap_domain") == "171\n")
        #expect(echo(&h, "Guest1", "1", "/bus/ap/scans") == nil)
        #expect(cat(h, "Guest1", "/bus/ap/scans") == "2\n")
        #expect(echo(&h, "Guest1", "1", "/bus/ap/bindings") == "EACCES")
        #expect(cat(h, "Guest2", "/bus/ap/scans") == "1\n", "another guest's bus did not scan")
        #expect(cat(h, "Guest1", "/devices/ap/card05/online") == "0\n", "a scan keeps the devices it finds again")
    }

    @Test func hotPlugAppearsAfterAWriteToScans() throws {
        var h = try seedGuests()
        #expect(h.echo("06.0004", "/bus/ap/drivers/vfio_ap/unbind") == nil)
        #expect(h.cat(attr(uuidA, "guest_matrix")) == "05.0004\n05.00ab\n")
        #expect(ls(h, "Guest1", "/devices/ap") == ["card05", "card06"], "before the scan the guest still has card06")
        #expect(echo(&h, "Guest1", "1", "/bus/ap/scans") == nil)
        #expect(ls(h, "Guest1", "/devices/ap") == ["card05"])
        #expect(h.echo("06.0004", "/bus/ap/drivers/vfio_ap/bind") == nil)
        #expect(ls(h, "Guest1", "/devices/ap") == ["card05"])
        #expect(echo(&h, "Guest1", "1\n", "/bus/ap/scans") == nil)
        #expect(ls(h, "Guest1", "/devices/ap") == ["card05", "card06"])
    }

    @Test func cpuModelVariants() throws {
        let h = try seedGuests(cpu: ["host,apft=off", "host,apqci=off", "host,apqi=off"])
        #expect(ls(h, "Guest1", "/devices/ap") == [])
        #expect(ls(h, "Guest1", "/bus/ap/devices") == [])
        #expect(cat(h, "Guest1", "/bus/ap/bindings") == "0/0 (complete)\n")
        #expect(cat(h, "Guest1", "/bus/ap/ap_adapter_mask") == maskText("06"))
        // apqci=off: 0x47 and 0xff are above 15; no QCI.
        #expect(ls(h, "Guest2", "/bus/ap/devices") == [])
        #expect(cat(h, "Guest2", "/bus/ap/ap_adapter_mask") == "not supported\n")
        #expect(cat(h, "Guest2", "/bus/ap/ap_max_adapter_id") == "63\n")
        #expect(cat(h, "Guest2", "/bus/ap/ap_max_domain_id") == "15\n")
        #expect(cat(h, "Guest2", "/bus/ap/features") == "-\n")
        #expect(cat(h, "Guest3", "/bus/ap/ap_interrupts") == "0\n")
        #expect(cat(h, "Guest3", "/devices/ap/card06/06.0047/interrupt") == "Interrupts disabled.\n")
    }

    @Test func apOffHasNoAPBusAndAStoppedGuestNoTree() throws {
        var h = try APHost(.seedExample)
        try h.startGuest("g", cpu: CPUModel(parsing: "host,ap=off", facilities: h.firmware.facilities), device: nil, at: .boot)
        #expect(ls(h, "g", "/") == ["bus", "devices"])
        #expect(ls(h, "g", "/bus") == [])
        #expect(ls(h, "g", "/devices") == [])
        #expect(ls(h, "g", "/bus/ap") == ["ENOENT"])
        try h.stopGuest("g")
        #expect(ls(h, "g", "/") == ["ENOENT"])
        #expect(cat(h, "g", "/bus/ap/scans") == "ENODEV")
    }

    /// `scans` and `bindings` are read at a time: the periodic scans of a
    /// guest with apqci count from its boot scan; without apqci they do not.
    @Test func scansAreReadAtATime() throws {
        var h = try seedGuests(cpu: ["host", "host,apqci=off", "host"])
        #expect(cat(h, "Guest1", "/bus/ap/scans", at: 29) == "1\n")
        #expect(cat(h, "Guest1", "/bus/ap/scans", at: 95) == "4\n")
        #expect(cat(h, "Guest2", "/bus/ap/scans", at: 95) == "1\n")
        #expect(echo(&h, "Guest1", "1", "/bus/ap/scans", at: 100) == nil)
        #expect(cat(h, "Guest1", "/bus/ap/scans", at: 100) == "5\n")
        #expect(cat(h, "Guest1", "/bus/ap/scans", at: 130) == "6\n")
        #expect(cat(h, "Guest1", "/bus/ap/bindings", at: 130) == "4/4 (complete)\n")
    }
}
