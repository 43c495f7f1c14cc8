import APMatrixModel
import APMatrixRuntime
import APMatrixSysfs
import APMatrixTesting
import Foundation
import Testing

/// A Secure Execution guest's own `/sys` (docs/secure-execution.md §1–§5):
/// `features` with APSB, `se_bind`/`se_associate` on EP11 and accelerator
/// queues with the kernel's texts, parsers and errnos, none on CCA queues,
/// and the BS bits in each queue's `ap_functions`.
@Suite struct GuestSETreeTests {
    static let q2 = "/devices/ap/card02/02.0005", q4 = "/devices/ap/card04/04.0005", q6 = "/devices/ap/card06/06.0005"

    /// EP11 card 2, accelerator 4, CCA 6, usage domain 5; guest `se` (secure,
    /// started at 0 with `cpu`) and, with `plain`, guest `plain` on a second mdev.
    func host(cpu: String = "host", plain: Bool = false) throws -> APHost {
        var h = try APMatrixSysfsTests.host("""
            {"domains": "5-6", "apmask": "0x0", "adapters": [{"id": 2, "type": "CEX8P"}, {"id": 4, "type": "CEX8A"}, {"id": 6, "type": "CEX8C"}]}
            """)
        #expect(h.echo(uuidA, typeDir + "/create") == nil)
        for a in ["2", "4", "6"] { #expect(h.echo(a, "\(matrixDir)/\(uuidA)/assign_adapter") == nil) }
        #expect(h.echo("5", "\(matrixDir)/\(uuidA)/assign_domain") == nil)
        try h.startGuest("se", cpu: CPUModel(parsing: cpu, facilities: h.firmware.facilities), device: device(uuidA), secure: true, at: 0)
        if plain {
            #expect(h.echo(uuidB, typeDir + "/create") == nil)
            #expect(h.echo("2", "\(matrixDir)/\(uuidB)/assign_adapter") == nil)
            #expect(h.echo("6", "\(matrixDir)/\(uuidB)/assign_domain") == nil)
            try h.startGuest("plain", cpu: CPUModel(parsing: "host", facilities: h.firmware.facilities), device: device(uuidB), at: 0)
        }
        return h
    }

    func cat(_ h: APHost, _ path: String, at t: Uptime = 1, guest: String = "se") -> String {
        do { return String(decoding: try GuestSysfsTree(guest: guest).read(path, in: h, at: t), as: UTF8.self) } catch {
            return error.errno.symbol
        }
    }

    func echo(_ h: inout APHost, _ text: String, _ path: String, at t: Uptime = 1) -> String? {
        do { try GuestSysfsTree(guest: "se").write(path, b(text), in: &h, at: t); return nil } catch { return error.errno.symbol }
    }

    func ls(_ h: APHost, _ path: String, guest: String = "se") -> [String] {
        GuestSysfsTree(guest: guest).children(path, in: h) ?? ["ENOENT"]
    }

    @Test func ep11AndAcceleratorQueuesHaveTheAttributesACCAQueueHasNeither() throws {
        let h = try host()
        #expect(cat(h, "/bus/ap/features") == "APSC APXA QACT RC8A APSB\n")
        #expect(ls(h, Self.q2).filter { $0.hasPrefix("se_") } == ["se_associate", "se_bind"])
        #expect(ls(h, Self.q4).filter { $0.hasPrefix("se_") } == ["se_associate", "se_bind"])
        #expect(ls(h, Self.q6).filter { $0.hasPrefix("se_") } == [])
        #expect(cat(h, Self.q6 + "/se_bind") == "ENODEV")
        #expect(cat(h, Self.q6 + "/ap_functions") == "0x7200C000\n", "a CCA queue is illicit (BS 3)")
        #expect(cat(h, Self.q2 + "/ap_functions") == "0x06008000\n")
        #expect(cat(h, Self.q4 + "/ap_functions") == "0x6A008000\n")
        #expect(cat(h, "/devices/ap/card02/ap_functions") == "0x06000000\n", "the card's functions carry no BS bits")
        guard case .attribute(let a)? = GuestSysfsTree(guest: "se").node(Self.q2 + "/se_bind", in: h) else {
            Issue.record("no se_bind")
            return
        }
        #expect(a.mode == 0o644)
    }

    @Test func bindTextsAndWrites() throws {
        var h = try host()
        #expect(cat(h, Self.q2 + "/se_bind") == "unbound\n")
        #expect(cat(h, Self.q2 + "/se_associate") == "unassociated\n")
        #expect(cat(h, Self.q4 + "/se_associate") == "-\n")
        #expect(echo(&h, "2", Self.q2 + "/se_bind") == "EINVAL")
        #expect(echo(&h, "x", Self.q2 + "/se_bind") == "EINVAL")
        #expect(echo(&h, "", Self.q2 + "/se_bind") == nil, "an empty write stores nothing (kernfs)")
        #expect(echo(&h, "1\n", Self.q2 + "/se_bind") == nil)
        #expect(cat(h, Self.q2 + "/se_bind") == "bound\n")
        #expect(cat(h, Self.q2 + "/ap_functions") == "0x06004000\n")
        #expect(echo(&h, "yes", Self.q2 + "/se_bind") == "EINVAL", "bound already")
        #expect(echo(&h, "off", Self.q2 + "/se_bind", at: 2) == nil)
        #expect(cat(h, Self.q2 + "/se_bind", at: 2) == "unbound\n")
        #expect(echo(&h, "on", Self.q2 + "/se_bind", at: 2.01) == "EBUSY", "the unbind's reset is still running")
        #expect(echo(&h, "on", Self.q2 + "/se_bind", at: 2.05) == nil)
        #expect(echo(&h, "0", Self.q4 + "/se_bind", at: 3) == nil, "unbinding an unbound queue succeeds")
        #expect(echo(&h, "Y", Self.q4 + "/se_bind", at: 4) == nil)
        #expect(cat(h, Self.q4 + "/ap_functions", at: 4) == "0x6A000000\n")
    }

    @Test func associateTextsAndWrites() throws {
        var h = try host()
        #expect(echo(&h, "7", Self.q2 + "/se_associate") == "EINVAL", "unbound")
        #expect(echo(&h, "1", Self.q2 + "/se_bind") == nil)
        #expect(echo(&h, "abc", Self.q2 + "/se_associate") == "EINVAL")
        #expect(echo(&h, "-1", Self.q2 + "/se_associate") == "EINVAL")
        #expect(echo(&h, "4294967296", Self.q2 + "/se_associate") == "ERANGE")
        #expect(echo(&h, "0x10000", Self.q2 + "/se_associate") == "EINVAL")
        #expect(echo(&h, "0x7\n", Self.q2 + "/se_associate", at: 2) == nil)
        #expect(cat(h, Self.q2 + "/se_associate", at: 2) == "association pending\n")
        #expect(echo(&h, "8", Self.q2 + "/se_associate", at: 2.5) == "EBUSY")
        #expect(cat(h, Self.q2 + "/se_associate", at: 3) == "associated 7\n")
        #expect(cat(h, Self.q2 + "/ap_functions", at: 3) == "0x06000000\n")
        #expect(echo(&h, "8", Self.q2 + "/se_associate", at: 3) == "EINVAL")
        #expect(echo(&h, "1", Self.q4 + "/se_bind") == nil)
        #expect(echo(&h, "1", Self.q4 + "/se_associate") == "EINVAL")
        #expect(echo(&h, "99999999999", Self.q4 + "/se_associate") == "EINVAL", "not EP11 is checked before parsing")
    }

    @Test func aGuestThatIsNotSecureHasNoneOfIt() throws {
        let h = try host(plain: true)
        #expect(cat(h, "/bus/ap/features", guest: "plain") == "APSC APXA QACT RC8A\n")
        #expect(ls(h, "/devices/ap/card02/02.0006", guest: "plain")
                == ["ap_functions", "chkstop", "config", "driver", "interrupt", "online", "pendingq_count",
                    "request_count", "requestq_count", "subsystem"])
        #expect(cat(h, "/devices/ap/card02/02.0006/ap_functions", guest: "plain") == "0x06000000\n")
    }

    @Test func withoutQCIASecureGuestHasNoAPSB() throws {
        let h = try host(cpu: "host,apqci=off")
        #expect(cat(h, "/bus/ap/features") == "-\n")
        #expect(ls(h, Self.q2).filter { $0.hasPrefix("se_") } == [])
        #expect(cat(h, Self.q2 + "/ap_functions") == "0x06000000\n")
    }

    @Test func appvAndAppviShapeTheTree() throws {
        let noInterrupts = try host(cpu: "host,appvi=off")
        #expect(cat(noInterrupts, "/bus/ap/ap_interrupts") == "0\n")
        #expect(cat(noInterrupts, Self.q2 + "/interrupt") == "Interrupts disabled.\n")
        let noAP = try host(cpu: "host,appv=off,appvi=off")
        #expect(ls(noAP, "/bus") == [])
        #expect(ls(noAP, "/devices") == [])
    }

    @Test func aQueueThatLeftTheGuestReadsZeroFunctionsUntilTheNextScan() throws {
        var h = try host()
        #expect(echo(&h, "1", Self.q2 + "/se_bind") == nil)
        #expect(h.echo("2", "\(matrixDir)/\(uuidA)/unassign_adapter") == nil)
        #expect(cat(h, Self.q2 + "/ap_functions", at: 2) == "0x00000000\n")
        #expect(cat(h, Self.q2 + "/se_bind", at: 2) == "bound\n")
        #expect(cat(h, Self.q2 + "/se_associate", at: 2) == "EIO")
        #expect(echo(&h, "1", Self.q2 + "/se_bind", at: 2) == "EIO")
        #expect(echo(&h, "1", "/bus/ap/scans", at: 3) == nil)
        #expect(ls(h, "/devices/ap") == ["card04", "card06"])
    }

    @Test func hostFileFacilitiesAreOnUnlessTheFileSaysFalse() throws {
        func parse(_ facilities: String) -> String {
            do {
                let d = try HostFile.parse(b(#"{"domains": "0", "adapters": []\#(facilities)}"#))
                return ["pv", "appv", "appvi"].enumerated().map { i, n in
                    "\(n)=\([d.facilities.pv, d.facilities.appv, d.facilities.appvi][i])"
                }.joined(separator: " ")
            } catch {
                return "\(error)"
            }
        }
        #expect(parse("") == "pv=true appv=true appvi=true")
        #expect(parse(#", "facilities": {"pv": false, "appvi": false}"#) == "pv=false appv=true appvi=false")
        #expect(parse(#", "facilities": {"appv": "yes"}"#) == "facilities.appv: must be true or false")
        #expect(parse(#", "facilities": {"apsb": true}"#)
                == "facilities.apsb: unknown field (known: aiv, apft, appv, appvi, apqi, pv, qci)")
        // A state file written before these facilities existed: they are on.
        let old = try JSONDecoder().decode(Facilities.self, from: Data(#"{"qci": true, "apft": true, "apqi": false, "aiv": true}"#.utf8))
        #expect(old == Facilities(apqi: false))
    }
}
