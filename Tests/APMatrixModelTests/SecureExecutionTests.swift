import APMatrixModel
import APMatrixTesting
import Foundation
import Testing

/// Secure Execution guests (docs/secure-execution.md): binding and
/// associating queues inside the guest, the BS bits, losing them on reset.
/// Expected texts, errnos and BS values are those of ap_queue.c and ap.h as
/// the docs page states them; card functions are SPEC §2's constants
/// (EP11 0x06000000, accelerator 0x6A000000, CCA 0x72000000).
@Suite struct SecureExecutionTests {
    static let ep11 = APQN(2, 5), ep11b = APQN(2, 6), accel = APQN(4, 5), cca = APQN(6, 5)

    /// EP11 adapter 2, accelerator 4, CCA 6; usage domains 5 and 6; mdev A
    /// has all of them, so the secure guest `se` (started at `start`) sees six queues.
    func host(facilities: Facilities = Facilities(), start: Uptime? = 0) throws -> APHost {
        var h = try makeHost(adapters: [2, 4, 6], domains: [5, 6], types: [2: "CEX8P", 4: "CEX8A", 6: "CEX8C"],
                             facilities: facilities)
        try h.mk(mdevA, adapters: [2, 4, 6], domains: [5, 6])
        if let start { try h.start("se", mdev: mdevA, secure: true, at: start) }
        _ = h.takeEvents()
        return h
    }

    func bindText(_ h: APHost, _ q: APQN, at t: Uptime) -> String {
        do { return try h.seBindText("se", q, at: t) } catch { return error.errno.symbol }
    }
    func associateText(_ h: APHost, _ q: APQN, at t: Uptime) -> String {
        do { return try h.seAssociateText("se", q, at: t) } catch { return error.errno.symbol }
    }
    func functions(_ h: APHost, _ q: APQN, at t: Uptime, guest: String = "se") -> String {
        "0x" + String(h.guestQueueFunctions(h.guests[guest]!, q, at: t), radix: 16, uppercase: true).leftPadded8
    }
    func seLines(_ h: APHost) -> [String] {
        h.events.filter { $0.kind == "se" }.map(\.line)
    }

    @Test func eachBindableQueueStartsUnboundAndACCAQueueIsIllicit() throws {
        let h = try host()
        #expect(h.seStates("se", at: 1).map { "\($0.apqn) \($0.state)" }
                == ["02.0005 unbound", "02.0006 unbound", "04.0005 unbound", "04.0006 unbound", "06.0005 illicit", "06.0006 illicit"])
        #expect(functions(h, Self.ep11, at: 1) == "0x06008000")
        #expect(functions(h, Self.accel, at: 1) == "0x6A008000")
        #expect(functions(h, Self.cca, at: 1) == "0x7200C000")
        #expect(bindText(h, Self.ep11, at: 1) == "unbound")
        #expect(associateText(h, Self.ep11, at: 1) == "unassociated")
        #expect(bindText(h, Self.accel, at: 1) == "unbound")
        #expect(associateText(h, Self.accel, at: 1) == "-")
        #expect(errorOf { _ = try h.seQueue("se", Self.cca, association: false) }?.errno == .invalidArgument)
        #expect(h.guests["se"]!.hasAPSB && h.guests["se"]!.apInterrupts)
        #expect(h.checkInvariants().isEmpty)
    }

    @Test func bindIsSynchronousAndBindingTwiceIsEINVAL() throws {
        var h = try host()
        try h.seBind("se", Self.ep11, at: 1)
        #expect(bindText(h, Self.ep11, at: 1) == "bound")
        #expect(associateText(h, Self.ep11, at: 1) == "unassociated")
        #expect(functions(h, Self.ep11, at: 1) == "0x06004000")
        let twice = errorOf { try h.seBind("se", Self.ep11, at: 2) }
        #expect(twice?.errno == .invalidArgument)
        #expect(twice?.message == "se_bind: queue 02.0005 is bound already (bind state 1); write 0 to unbind it first")
        try h.seBind("se", Self.accel, at: 1)
        #expect(bindText(h, Self.accel, at: 1) == "bound")
        #expect(functions(h, Self.accel, at: 1) == "0x6A000000", "an accelerator is usable once bound")
        #expect(errnoOf { try h.seBind("se", Self.accel, at: 2) } == "EINVAL")
        #expect(seLines(h) == ["guest se: queue 02.0005 SE bound (se_bind 1)", "guest se: queue 04.0005 SE bound (se_bind 1)"])
        #expect(h.firmware.records[Self.ep11]?.seBinding == SEBinding(guest: "se", association: nil))
    }

    @Test func anIllicitQueueCannotBeBoundOrAssociated() throws {
        var h = try host()
        let e = errorOf { try h.seBind("se", Self.cca, at: 1) }
        #expect(e?.errno == .invalidArgument)
        #expect(e?.message == "06.0005 is a queue of a CEX8C (CCA) card: an SE guest cannot bind it")
        #expect(errnoOf { try h.seAssociate("se", Self.cca, index: 1, at: 1) } == "EINVAL")
        #expect(h.firmware.records[Self.cca]?.seBinding == nil)
    }

    @Test func associationIsPendingThenDone() throws {
        var h = try host()
        try h.seBind("se", Self.ep11, at: 1)
        _ = h.takeEvents()
        try h.seAssociate("se", Self.ep11, index: 7, at: 2)
        #expect(associateText(h, Self.ep11, at: 2) == "association pending")
        #expect(associateText(h, Self.ep11, at: 2.99) == "association pending")
        #expect(functions(h, Self.ep11, at: 2.99) == "0x06004000")
        #expect(bindText(h, Self.ep11, at: 2.99) == "bound")
        let pending = errorOf { try h.seAssociate("se", Self.ep11, index: 8, at: 2.5) }
        #expect(pending?.errno == .resourceBusy)
        #expect(pending?.message == "se_associate: queue 02.0005 is waiting for its association with index 7")
        #expect(h.dueAssociations(from: 2, to: 2.99).isEmpty)
        #expect(associateText(h, Self.ep11, at: 3) == "associated 7")
        #expect(functions(h, Self.ep11, at: 3) == "0x06000000")
        #expect(bindText(h, Self.ep11, at: 3) == "bound")
        #expect(h.seStates("se", at: 3).first.map { "\($0.state)" } == "usable (associated 7)")
        #expect(errnoOf { try h.seAssociate("se", Self.ep11, index: 8, at: 3) } == "EINVAL")
        h.advanceGuestClocks(from: 2.5, to: 3.5)
        #expect(seLines(h) == ["guest se: queue 02.0005 SE association with index 7 requested (se_associate 7)",
                               "guest se: queue 02.0005 SE associated with index 7 (the firmware completed the association)"])
    }

    @Test func associationErrnos() throws {
        var h = try host()
        try h.seBind("se", Self.accel, at: 1)
        let accel = errorOf { try h.seAssociate("se", Self.accel, index: 1, at: 2) }
        #expect(accel?.errno == .invalidArgument)
        #expect(accel?.message == "se_associate: 04.0005 is a queue of a CEX8A card: only EP11 queues are associated")
        let unbound = errorOf { try h.seAssociate("se", Self.ep11, index: 1, at: 2) }
        #expect(unbound?.errno == .invalidArgument)
        #expect(unbound?.message == "se_associate: queue 02.0005 is unbound (bind state 2): bind it first")
        try h.seBind("se", Self.ep11, at: 2)
        let tooBig = errorOf { try h.seAssociate("se", Self.ep11, index: 0x10000, at: 3) }
        #expect(tooBig?.errno == .invalidArgument)
        #expect(tooBig?.message == "se_associate: 65536 is not an association index 0-65535")
        try h.seAssociate("se", Self.ep11, index: 0xffff, at: 3)
        #expect(associateText(h, Self.ep11, at: 4) == "associated 65535")
    }

    @Test func unbindIsAlwaysAcceptedResetsTheQueueAndDropsTheAssociation() throws {
        var h = try host()
        try h.seUnbind("se", Self.ep11, at: 1)
        #expect(seLines(h) == [], "unbinding an unbound queue changes no binding")
        let busy = errorOf { try h.seBind("se", Self.ep11, at: 1.01) }
        #expect(busy?.errno == .resourceBusy, "the state machine is still in its reset")
        #expect(busy?.message == "se_bind: queue 02.0005 is still being reset after its creation or unbind (its state machine is idle from 1.04s on); try again")
        try h.seBind("se", Self.ep11, at: 1.04)
        try h.seAssociate("se", Self.ep11, index: 9, at: 2)
        try h.seUnbind("se", Self.ep11, at: 4)
        #expect(bindText(h, Self.ep11, at: 4) == "unbound")
        #expect(associateText(h, Self.ep11, at: 4) == "unassociated")
        #expect(functions(h, Self.ep11, at: 4) == "0x06008000")
        #expect(h.firmware.records[Self.ep11]?.seBinding == nil)
        #expect(errnoOf { try h.seAssociate("se", Self.ep11, index: 9, at: 5) } == "EINVAL")
        #expect(seLines(h).last == "guest se: queue 02.0005 SE unbound (se_bind 0)")
        #expect(h.dueAssociations(from: 0, to: 10).isEmpty, "an unbound queue completes no association")
    }

    @Test func aQueueJustCreatedByAScanIsStillBeingReset() throws {
        var h = try host(start: 10)
        #expect(errnoOf { try h.seBind("se", Self.ep11, at: 10.02) } == "EBUSY")
        try h.seBind("se", Self.ep11, at: 10.04)
        #expect(bindText(h, Self.ep11, at: 10.04) == "bound")
    }

    @Test func hotUnplugLosesBindingAndAssociationVisibleAfterTheNextScan() throws {
        var h = try host()
        try h.seBind("se", Self.ep11, at: 1)
        try h.seAssociate("se", Self.ep11, index: 7, at: 1)
        try h.seBind("se", Self.ep11b, at: 1)
        try h.seBind("se", Self.accel, at: 1)
        _ = h.takeEvents()
        try h.unassign(.adapter, mdev: mdevA, b("2"))
        #expect(seLines(h) == ["guest se: queue 02.0005 SE binding and association 7 lost (queue reset: left the shadow: adapter 02 unassigned)",
                               "guest se: queue 02.0006 SE binding lost (queue reset: left the shadow: adapter 02 unassigned)"])
        #expect(h.resets(2, 5) == 1 && h.firmware.records[Self.ep11]?.seBinding == nil)
        // Until the guest scans, its devices stay; TAPQ answers 0x01 and GR2 stays zero (BS 0).
        #expect(h.guests["se"]!.bus.queues.contains(Self.ep11))
        #expect(functions(h, Self.ep11, at: 5) == "0x00000000")
        #expect(bindText(h, Self.ep11, at: 5) == "bound")
        #expect(associateText(h, Self.ep11, at: 5) == "associated 7")
        #expect(associateText(h, Self.ep11b, at: 5) == "EIO", "BS 0 but the guest kernel asked for no association")
        let bind = errorOf { try h.seBind("se", Self.ep11, at: 5) }
        #expect(bind?.errno == .ioError)
        #expect(bind?.message == "se_bind: queue 02.0005 is not in the guest's AP configuration any more (TAPQ response code 0x01); its next scan removes it")
        #expect(errnoOf { try h.seAssociate("se", Self.ep11b, index: 1, at: 5) } == "EIO")
        #expect(bindText(h, Self.accel, at: 5) == "bound", "the accelerator stayed in the guest")
        try h.scanGuestBus("se", cause: "write to scans", at: 6)
        #expect(!h.guests["se"]!.bus.queues.contains(Self.ep11))
        #expect(bindText(h, Self.ep11, at: 6) == "ENODEV")
        // Plugged back: a new device, unbound, and still being reset right after the scan.
        try h.assign(.adapter, mdev: mdevA, b("2"))
        try h.scanGuestBus("se", cause: "write to scans", at: 7)
        #expect(bindText(h, Self.ep11, at: 7) == "unbound")
        #expect(associateText(h, Self.ep11, at: 7) == "unassociated")
        #expect(functions(h, Self.ep11, at: 7) == "0x06008000")
        #expect(errnoOf { try h.seBind("se", Self.ep11, at: 7.01) } == "EBUSY")
        try h.seBind("se", Self.ep11, at: 7.1)
        #expect(bindText(h, Self.ep11, at: 7.1) == "bound")
        #expect(h.checkInvariants().isEmpty)
    }

    @Test func unplugAndReplugBeforeAScanShowTheSameDeviceUnbound() throws {
        var h = try host()
        try h.seBind("se", Self.ep11, at: 1)
        try h.unassign(.adapter, mdev: mdevA, b("2"))
        try h.assign(.adapter, mdev: mdevA, b("2"))
        #expect(bindText(h, Self.ep11, at: 2) == "unbound")
        try h.seBind("se", Self.ep11, at: 2)
        #expect(bindText(h, Self.ep11, at: 2) == "bound")
    }

    @Test func stoppingTheGuestDropsItsBindings() throws {
        var h = try host()
        try h.seBind("se", Self.accel, at: 1)
        _ = h.takeEvents()
        try h.stopGuest("se")
        #expect(seLines(h) == ["guest se: queue 04.0005 SE binding lost (queue reset: left the shadow: guest se stopped)"])
        #expect(h.firmware.records.values.allSatisfy { $0.seBinding == nil })
    }

    @Test func aGuestThatIsNotSecureHasNoSEState() throws {
        var h = try host(start: nil)
        try h.start("plain", mdev: mdevA)
        #expect(!h.guests["plain"]!.hasAPSB)
        #expect(h.seStates("plain", at: 1).isEmpty)
        #expect(functions(h, Self.ep11, at: 1, guest: "plain") == "0x06000000")
        #expect(functions(h, Self.cca, at: 1, guest: "plain") == "0x72000000")
        let e = errorOf { try h.seBind("plain", Self.ep11, at: 1) }
        #expect(e?.errno == .noSuchDevice)
        #expect(e?.message == "guest plain is not a Secure Execution guest with AP pass-through (no APSB): its queues have no se_bind")
        #expect(h.guests["plain"]!.bus.seQueues.isEmpty)
    }

    @Test func aSecureGuestNeedsProtectedVirtualization() throws {
        var h = try host(facilities: Facilities(pv: false), start: nil)
        let e = errorOf { try h.start("se", mdev: mdevA, secure: true) }
        #expect(e?.errno == .invalidArgument)
        #expect(e?.message == "CPU model does not support Protected Virtualization: the host lacks facility pv (the Ultravisor and a host kernel with prot_virt=1), so it cannot run a Secure Execution guest")
        #expect(h.guests.isEmpty)
        try h.start("plain", mdev: mdevA)
        #expect(h.guests["plain"]!.cpu.description == "host,ap=on,apqci=on,apft=on,apqi=on,appv=off,appvi=off")
    }

    @Test func withoutAPPVASecureGuestHasNoAPBus() throws {
        var h = try host(facilities: Facilities(appv: false, appvi: false), start: nil)
        try h.start("se", mdev: mdevA, secure: true)
        let g = h.guests["se"]!
        #expect(!g.hasAPBus && !g.hasAPSB && g.bus.queues.isEmpty)
        #expect(try h.guestView("se").queues.isEmpty)
        #expect(h.events.map(\.line).contains("guest se: a Secure Execution guest without appv has no AP instructions: it sees no AP bus"))
        try h.stopGuest("se")
        try h.start("plain", mdev: mdevA)
        #expect(h.guests["plain"]!.hasAPBus, "appv matters only to a secure guest")
    }

    @Test func withoutAPPVIASecureGuestHasNoAPInterrupts() throws {
        var h = try host(start: nil)
        try h.start("se", mdev: mdevA, cpu: "host,appvi=off", secure: true)
        #expect(!h.guests["se"]!.apInterrupts && h.guests["se"]!.hasAPSB)
    }

    @Test func withoutAPQCIASecureGuestHasNoAPSB() throws {
        var h = try host(start: nil)
        try h.start("se", mdev: mdevA, cpu: "host,apqci=off", secure: true)
        #expect(h.guests["se"]!.hasAPBus && !h.guests["se"]!.hasAPSB)
        #expect(errnoOf { try h.seBind("se", Self.ep11, at: 1) } == "ENODEV")
    }

    @Test func secureGuestsCannotMigrate() throws {
        var h = try host()
        let e = errorOf { try h.checkMigratable("se") }
        #expect(e?.errno == .notSupported)
        #expect(e?.message == "guest se is a Secure Execution guest: protected VMs are currently not migratable.")
        try h.startGuest("plain", cpu: CPUModel(parsing: "host", facilities: h.firmware.facilities), device: nil, at: 0)
        #expect(errorOf { try h.checkMigratable("plain") } == nil)
        #expect(errnoOf { try h.checkMigratable("nobody") } == "ENOENT")
    }

    @Test func theStateDocumentKeepsBindingsAssociationsAndDevices() throws {
        var h = try host()
        try h.seBind("se", Self.ep11, at: 1)
        try h.seAssociate("se", Self.ep11, index: 300, at: 1)
        try h.seUnbind("se", Self.accel, at: 2)
        _ = h.takeEvents()
        let back = try JSONDecoder().decode(APHost.self, from: JSONEncoder().encode(h))
        #expect(back == h)
        #expect(back.guests["se"]!.secure)
        #expect(back.firmware.records[Self.ep11]?.seBinding?.association == SEAssociation(index: 300, completes: 2))
        #expect(back.guests["se"]!.bus.seQueues[Self.accel] == SEQueueDevice(associationIndex: nil, idle: 2.04))
        let event = Event.seQueueChanged(guest: "se", apqn: Self.ep11, change: .lost(association: 300), cause: "queue reset: x")
        #expect(try JSONDecoder().decode(Event.self, from: JSONEncoder().encode(event)) == event)
    }

    @Test func aBindingOfAQueueOutsideTheGuestIsAStateTheKernelCannotReach() throws {
        var h = try host()
        try h.seBind("se", Self.ep11, at: 1)
        try h.unassign(.domain, mdev: mdevA, b("6"))
        var doc = try JSONSerialization.jsonObject(with: JSONEncoder().encode(h)) as! [String: Any]
        var records = doc["queueRecords"] as! [[String: Any]]
        let i = records.firstIndex { $0["apqn"] as? String == "02.0006" }!
        records[i]["seBinding"] = ["guest": "se"]
        doc["queueRecords"] = records
        let data = try JSONSerialization.data(withJSONObject: doc)
        var why = ""
        do { _ = try JSONDecoder().decode(APHost.self, from: data) } catch DecodingError.dataCorrupted(let c) { why = c.debugDescription }
        #expect(why.contains("se-binding: queue 02.0006 is bound to guest se"), "\(why)")
    }
}

extension SecureExecutionTests {
    /// The host document with `edit` applied; nil when it decodes, else why not.
    func refusal(_ h: APHost, _ edit: (inout [String: Any]) -> Void) throws -> String? {
        var doc = try JSONSerialization.jsonObject(with: JSONEncoder().encode(h)) as! [String: Any]
        edit(&doc)
        do { _ = try JSONDecoder().decode(APHost.self, from: try JSONSerialization.data(withJSONObject: doc)) } catch {
            return "\(error)"
        }
        return nil
    }

    @Test func stateDocumentsWithImpossibleSEValuesAreRefused() throws {
        var h = try host()
        try h.seBind("se", Self.ep11, at: 1)
        try h.seAssociate("se", Self.ep11, index: 7, at: 1)
        _ = h.takeEvents()
        #expect(try refusal(h) { _ in } == nil)
        let index = try refusal(h) { doc in
            var records = doc["queueRecords"] as! [[String: Any]]
            let i = records.firstIndex { $0["apqn"] as? String == "02.0005" }!
            records[i]["seBinding"] = ["guest": "se", "association": ["index": 70000, "completes": 2]]
            doc["queueRecords"] = records
        }
        #expect(index?.contains("queue 02.0005: association index 70000 is outside 0-65535") == true, "\(String(describing: index))")
        let device = try refusal(h) { doc in
            var guests = doc["guests"] as! [[String: Any]]
            var bus = guests[0]["bus"] as! [String: Any]
            bus["seQueues"] = [["apqn": "09.0005", "idle": 0]]
            guests[0]["bus"] = bus
            doc["guests"] = guests
        }
        #expect(device?.contains("queue 09.0005: no such queue device, or an association index outside 0-65535") == true,
                "\(String(describing: device))")
        let missing = try refusal(h) { doc in
            var guests = doc["guests"] as! [[String: Any]]
            var bus = guests[0]["bus"] as! [String: Any]
            bus["seQueues"] = nil
            guests[0]["bus"] = bus
            doc["guests"] = guests
        }
        #expect(missing?.contains("se-devices: guest se's SE queue devices [] are not its queue devices") == true,
                "\(String(describing: missing))")
        let event = #"{"kind": "se", "guest": "se", "apqn": "02.0005", "change": "associated", "cause": "x"}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Event.self, from: Data(event.utf8)) }
    }
}

extension String {
    /// Eight hex digits, as `ap_functions` prints them.
    var leftPadded8: String { String(repeating: "0", count: max(0, 8 - count)) + self }
}
