import APMatrixModel
import APMatrixTesting
import Foundation
import Testing

/// The host as a state document: what is saved comes back identical, and a
/// document the kernel could never reach is refused with the broken rule.
@Suite struct StateCodingTests {
    /// Adapters 5 and 6, domains 4 and 7, nothing reserved; mdev A has 05.0004
    /// and 05.0007 and is used by g1, which put state into 05.0004; mdev B is empty.
    func host() throws -> APHost {
        var h = try makeHost(adapters: [5, 6], domains: [4, 7], types: [6: "CEX7P"], restrictions: [6: [4]])
        try h.mk(mdevA, adapters: [5], domains: [4, 7], control: [4])
        try h.mk(mdevB)
        try h.start("g1", mdev: mdevA, cpu: "host,apqi=off")
        try h.putHeldState("g1", APQN(5, 4), "key-1")
        try h.storeMask(.aqmask, b("+9"))
        try h.unbind(driver: "vfio_ap", b("06.0004"))
        _ = h.takeEvents()
        return h
    }

    func json(_ h: APHost) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(h)) as! [String: Any]
    }

    /// Decodes a document; the refusal's text, or nil when accepted.
    func refusal(_ doc: [String: Any]) -> String? {
        do {
            _ = try JSONDecoder().decode(APHost.self, from: JSONSerialization.data(withJSONObject: doc))
            return nil
        } catch DecodingError.dataCorrupted(let c) {
            return c.debugDescription
        } catch {
            return "\(error)"
        }
    }

    @Test func roundTripIsIdentity() throws {
        let h = try host()
        let back = try JSONDecoder().decode(APHost.self, from: JSONEncoder().encode(h))
        #expect(back == h)
        #expect(back.vfio.mdevsInOrder.map(\.uuid) == [mdevA, mdevB])
        #expect(back.vfio.mdevs[mdevB]?.iommuGroup == 1)
        #expect(back.guests["g1"]?.cpu.description == "host,ap=on,apqci=on,apft=on,apqi=off,appv=on,appvi=on")
        #expect(back.firmware.records[APQN(5, 4)]?.heldState == "key-1")
        #expect(back.bus.queues[APQN(6, 4)]?.driver == nil)
        #expect(back.bus.aqmask.hexString == maskHex("0040"))
    }

    @Test func theDocumentIsReadable() throws {
        let doc = try json(try host())
        let bus = doc["bus"] as! [String: Any]
        #expect(bus["aqmask"] as? String == "9")
        let mdevs = doc["mdevs"] as! [[String: Any]]
        #expect(mdevs.first?["matrix"] as? [String: String] == ["apm": "5", "aqm": "4,7", "adm": "4"])
    }

    /// Each edit breaks one rule; the expected text names it.
    @Test func unreachableStatesAreRefused() throws {
        let good = try json(try host())
        func edited(_ change: (inout [String: Any]) -> Void) -> [String: Any] {
            var d = good
            change(&d)
            return d
        }
        func mdev(_ d: inout [String: Any], _ i: Int, _ change: (inout [String: Any]) -> Void) {
            var list = d["mdevs"] as! [[String: Any]]
            change(&list[i])
            d["mdevs"] = list
        }
        let cases: [(String, [String: Any])] = [
            ("apqn-in-two-mdevs: queue 05.0004 is assigned to mdevs \(mdevA) and \(mdevB)",
             edited { d in mdev(&d, 1) { $0["matrix"] = ["apm": "5", "aqm": "4", "adm": ""] } }),
            ("assigned-reserved: queue 05.0004 is assigned to mdev \(mdevA) and reserved for the host",
             edited { d in
                 var bus = d["bus"] as! [String: Any]
                 bus["apmask"] = "5"
                 bus["aqmask"] = "4"
                 d["bus"] = bus
             }),
            ("crycb-subset: guest g1: CRYCB APM 5,6 AQM 4,7 ADM 4 is not within mdev \(mdevA)'s assignment APM 5 AQM 4,7 ADM 4",
             edited { d in mdev(&d, 0) { $0["shadow"] = ["apm": "5-6", "aqm": "4,7", "adm": "4"] } }),
            ("iommu-group: mdevs \(mdevA) and \(mdevB) share iommu group 0",
             edited { d in mdev(&d, 1) { $0["iommuGroup"] = 0 } }),
            ("shadow: mdev \(mdevB) has a shadow CRYCB but no guest",
             edited { d in mdev(&d, 1) { $0["shadow"] = ["apm": "", "aqm": "", "adm": "4"] } }),
            ("state-leak: queue 05.0007 holds state of guest g2 but belongs to guest g1",
             edited { d in
                 var records = d["queueRecords"] as! [[String: Any]]
                 records.append(["apqn": "05.0007", "resets": 0, "holdsStateOf": "g2", "guestState": "k"])
                 d["queueRecords"] = records
             }),
            ("binding: queue 05.0004 is bound to cex4queue but apmask/aqmask give it to vfio_ap",
             edited { d in
                 var bus = d["bus"] as! [String: Any]
                 var queues = bus["queues"] as! [[String: Any]]
                 queues[0]["driver"] = "cex4queue"
                 bus["queues"] = queues
                 d["bus"] = bus
             }),
            ("the queue devices are not those the firmware's adapters and usage domains give",
             edited { d in
                 var bus = d["bus"] as! [String: Any]
                 bus["queues"] = Array((bus["queues"] as! [[String: Any]]).dropLast())
                 d["bus"] = bus
             }),
            ("'62177883-F1BB-47f0-914d-32a22e3a8804' is not a canonical lowercase mdev UUID",
             edited { d in mdev(&d, 0) { $0["uuid"] = "62177883-F1BB-47f0-914d-32a22e3a8804" } }),
            ("id 300 is above the maximum 255",
             edited { d in
                 var bus = d["bus"] as! [String: Any]
                 bus["apmask"] = "0-300"
                 d["bus"] = bus
             }),
            ("maxMdevs: 0 is outside 1-65536",
             edited { d in
                 var fw = d["firmware"] as! [String: Any]
                 fw["maxMdevs"] = 0
                 d["firmware"] = fw
             }),
            ("guest g1: CPU feature apqi is not available: the host lacks facility apqi (STFLE bit 65)",
             edited { d in
                 var fw = d["firmware"] as! [String: Any]
                 fw["facilities"] = ["qci": true, "apft": true, "apqi": false, "aiv": true]
                 d["firmware"] = fw
                 var guests = d["guests"] as! [[String: Any]]
                 guests[0]["cpu"] = "host,apqi=on"
                 d["guests"] = guests
             }),
        ]
        #expect(refusal(good) == nil)
        for (expected, doc) in cases {
            let r = refusal(doc)
            #expect(r?.contains(expected) == true, "expected …\(expected), got \(r ?? "accepted")")
        }
    }

    /// A guest bus saved before time was derived (`scans`, `sinceTimerArmed`,
    /// no `timerArmed`) loads with its count and its timer armed at boot.
    @Test func aGuestBusOfTheEarlierFormatLoads() throws {
        var doc = try json(try host())
        var guests = doc["guests"] as! [[String: Any]]
        var bus = guests[0]["bus"] as! [String: Any]
        #expect(bus["scans"] as? Int == 1 && bus["timerArmed"] as? Double == 0)
        bus["timerArmed"] = nil
        bus["sinceTimerArmed"] = 12.5
        bus["scans"] = 3
        guests[0]["bus"] = bus
        doc["guests"] = guests
        let back = try JSONDecoder().decode(APHost.self, from: JSONSerialization.data(withJSONObject: doc))
        #expect(back.guests["g1"]?.bus.timers.timerArmed == .boot)
        #expect(back.guests["g1"]?.busScans(at: 61) == 5)
    }
}
