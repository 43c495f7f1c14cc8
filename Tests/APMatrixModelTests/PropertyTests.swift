import APMatrixModel
import APMatrixTesting
import Foundation
import Testing

/// A deterministic generator (SplitMix64), so a failing seed can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random operation sequences under each profile; after each one the SPEC §5
/// invariants must hold, a refused operation must change nothing but
/// `events`, and the changes the model recorded must be exactly what changed
/// (and undo exactly). Under the seed profile the shadows are also checked against the
/// SPEC §3 filtering and hot-plug rules, written here from the text.
@Suite struct PropertyTests {
    static let uuids = [mdevA, mdevB, mdevC]
    static let guestNames = ["g0", "g1", "g2"]

    func startHost(_ profile: Profile) throws -> APHost {
        try makeHost(adapters: [0, 1, 2, 3, 4, 5], domains: [0, 1, 2, 3, 4, 5], control: Array(0...7),
                     types: [1: "CEX8P", 2: "CEX3A", 3: "CEX7C", 4: "CEX8A"],
                     restrictions: [3: [0, 1, 2]], deconfigured: [4],
                     apmask: ids([0, 1]), aqmask: ids([0]), profile: profile)
    }

    /// The SPEC §3 filter, written from the text (not from the model).
    func specFilter(_ m: Matrix, _ h: APHost) -> Matrix {
        let hc = h.firmware.hostConfiguration
        let apids = m.apm & hc.apm, apqis = m.aqm & hc.aqm
        var s = Matrix(adm: m.adm)
        if apids.isEmpty || apqis.isEmpty { return s }
        func bound(_ a: APID, _ q: APQI) -> Bool { h.bus.queues[APQN(a, q)]?.driver == .vfioAP }
        let keptA = apids.filter { a in apqis.allSatisfy { bound(a, $0) } }
        if !keptA.isEmpty {
            s.apm = Bitmap256(keptA)
            s.aqm = apqis
            return s
        }
        let keptQ = apqis.filter { q in apids.allSatisfy { bound($0, q) } }
        if !keptQ.isEmpty {
            s.apm = apids
            s.aqm = Bitmap256(keptQ)
        }
        return s
    }

    /// The SPEC §3 hot-plug rule for adapter `a`.
    func specPlug(adapter a: APID, _ s: Matrix, _ m: Matrix, _ h: APHost) -> Matrix {
        let hc = h.firmware.hostConfiguration
        func ok(_ q: APQI) -> Bool { h.bus.queues[APQN(a, q)]?.driver == .vfioAP }
        guard hc.apm.contains(a), !s.apm.contains(a) else { return s }
        var out = s
        if s.aqm.isEmpty {
            let pair = m.aqm & hc.aqm
            guard !pair.isEmpty, pair.allSatisfy(ok) else { return s }
            out.apm.insert(a)
            out.aqm = pair
        } else if s.aqm.allSatisfy(ok) {
            out.apm.insert(a)
        }
        return out
    }

    /// The SPEC §3 hot-plug rule for domain `q`: the adapter rule with the axes swapped.
    func specPlug(domain q: APQI, _ s: Matrix, _ m: Matrix, _ h: APHost) -> Matrix {
        let hc = h.firmware.hostConfiguration
        func ok(_ a: APID) -> Bool { h.bus.queues[APQN(a, q)]?.driver == .vfioAP }
        guard hc.aqm.contains(q), !s.aqm.contains(q) else { return s }
        var out = s
        if s.apm.isEmpty {
            let pair = m.apm & hc.apm
            guard !pair.isEmpty, pair.allSatisfy(ok) else { return s }
            out.aqm.insert(q)
            out.apm = pair
        } else if s.apm.allSatisfy(ok) {
            out.aqm.insert(q)
        }
        return out
    }

    /// Who holds which APQN in a guest: (apqn, guest).
    func inGuests(_ h: APHost) -> Set<[String]> {
        var out = Set<[String]>()
        for m in h.vfio.mdevs.values { if let g = m.guest { for q in m.shadow.apqns { out.insert([q.description, g]) } } }
        return out
    }

    /// The SPEC §5 invariants that do not hold in `h`.
    func violations(_ h: APHost) -> [String] {
        var out: [String] = []
        func check(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { out.append(what()) } }
        let ms = h.vfio.mdevsInOrder
        let hc = h.firmware.hostConfiguration
        for (i, m1) in ms.enumerated() {
            for m2 in ms[(i + 1)...] {
                let shared = Matrix(apm: m1.matrix.apm & m2.matrix.apm, aqm: m1.matrix.aqm & m2.matrix.aqm).apqns
                check(shared.isEmpty, "APQN \(shared) in two mdevs")
            }
            let reserved = m1.matrix.apqns.filter { h.bus.apmask.contains($0.apid) && h.bus.aqmask.contains($0.apqi) }
            check(reserved.isEmpty, "assigned APQN reserved \(reserved)")
            let s = m1.shadow
            let seed = h.profile == .seed
            guard let g = m1.guest else {
                // Upstream keeps a shadow without a guest (kernel-reference §9.10).
                if seed { check(s == Matrix(), "shadow without guest") }
                continue
            }
            check(h.guests[g]?.device?.mdev == m1.uuid, "guest/mdev link")
            check(s.apm.isSubset(of: m1.matrix.apm) && s.aqm.isSubset(of: m1.matrix.aqm), "S ⊄ M")
            check(seed ? s.adm == m1.matrix.adm : s.adm.isSubset(of: m1.matrix.adm), "S.adm \(s.adm) against M.adm \(m1.matrix.adm)")
            check(s.apm.isSubset(of: hc.apm) && s.aqm.isSubset(of: hc.aqm), "S ⊄ H")
            // Upstream keeps adapters without domains and domains without adapters (V9, V10).
            if seed { check(s.apm.isEmpty == s.aqm.isEmpty, "S.apm empty xor S.aqm empty") }
            for q in s.apqns {
                check(h.bus.queues[q]?.driver == .vfioAP, "\(q) in S not bound to vfio_ap")
                check(h.firmware.records[q]?.holdsStateOf == g, "\(q) in S of \(g) but holds \(String(describing: h.firmware.records[q]?.holdsStateOf))")
            }
        }
        for (g, guest) in h.guests {
            if let d = guest.device { check(h.vfio.mdevs[d.mdev]?.guest == g, "device link") }
        }
        for (apqn, r) in h.firmware.records {
            guard let g = r.holdsStateOf else { continue }
            let m = h.vfio.mdevs.values.first { $0.guest == g }
            check(m?.shadow.contains(apqn) == true, "\(apqn) holds state of \(g) outside its shadow")
        }
        // Queue devices: exactly configured CEX4+ adapters x their usage domains;
        // each bound to the driver the masks give it, or to none.
        for a: APID in 0...7 {
            let ad = h.firmware.adapters[a]
            let expected = ad.map { $0.configured && $0.type.hwtype >= 10 ? hc.aqm & ($0.domains ?? .all) : Bitmap256() } ?? Bitmap256()
            for q: APQI in 0...7 {
                let apqn = APQN(a, q)
                check((h.bus.queues[apqn] != nil) == expected.contains(q), "queue \(apqn) existence")
                if let d = h.bus.queues[apqn]?.driver {
                    let fits: QueueDriver = h.bus.apmask.contains(a) && h.bus.aqmask.contains(q) ? .cex4queue : .vfioAP
                    check(d == fits, "\(apqn) on \(d.rawValue)")
                }
                check(h.bus.isBoundToVfio(apqn) == (h.bus.queues[apqn]?.driver == .vfioAP), "vfioBound \(apqn)")
            }
            check((h.bus.cards[a] != nil) == (ad.map { $0.type.hwtype >= 10 } ?? false), "card \(a)")
        }
        check(h.vfio.availableInstances == 65536 - h.vfio.mdevs.count, "available_instances")
        return out
    }

    func pick<T>(_ list: [T], _ rng: inout SplitMix64) -> T { list[Int(rng.next() % UInt64(list.count))] }

    func randomMask(_ rng: inout SplitMix64) -> String {
        let id = Int(rng.next() % 9)
        switch rng.next() % 6 {
        case 0: return "+\(id)"
        case 1: return "-\(id)"
        case 2: return "+\(id)-\(id + Int(rng.next() % 3)),-\(Int(rng.next() % 8))\n"
        case 3: return Bitmap256<APID>((0...7).filter { _ in rng.next() % 2 == 0 }).hexString
        case 4: return "-0-255"
        default: return pick(["+x", "0X1", "+1, +2", "\n", "+0-7"], &rng)
        }
    }

    func randomId(_ rng: inout SplitMix64) -> String {
        let v = Int(rng.next() % 8)
        switch rng.next() % 10 {
        case 0: return pick(["256", "x", "-1", "0x", "08", " 1"], &rng)
        case 1, 2: return "0x" + String(v, radix: 16)
        default: return "\(v)\n"
        }
    }

    @Test(arguments: Profile.allCases, 0..<24)
    func randomSequencesKeepTheInvariants(_ profile: Profile, _ seed: Int) throws {
        let (succeeded, _, completed, _) = try run(profile, seed: seed)
        if completed { #expect(succeeded > 80, "only \(succeeded) operations succeeded") }
    }

    /// The sequences must exercise the model, not bounce off errors: guests
    /// must have queues for a good share of the steps.
    @Test(arguments: Profile.allCases)
    func randomSequencesReachGuestsWithQueues(_ profile: Profile) throws {
        var total = 0, idle = 0
        for seed in 0..<24 {
            let (_, plugged, _, _) = try run(profile, seed: seed)
            total += plugged
            if plugged == 0 { idle += 1 }
        }
        #expect(total > 24 * 30, "guests had queues in only \(total) steps")
        #expect(idle <= 3, "\(idle) sequences never gave a guest a queue")
    }

    /// With guests putting state into every queue they see after each step:
    /// no state ever reaches the host or another guest, whatever the operations.
    @Test(arguments: Profile.allCases, 0..<24)
    func guestStateNeverLeaks(_ profile: Profile, _ seed: Int) throws {
        let (_, _, completed, _) = try run(profile, seed: seed, putState: true)
        #expect(completed)
    }

    /// The secure guest binds queues in most sequences, so its bindings are
    /// checked against every operation that takes queues away.
    @Test(arguments: Profile.allCases)
    func secureGuestsBindQueuesInTheSequences(_ profile: Profile) throws {
        var binds = 0
        for seed in 0..<8 { binds += try run(profile, seed: seed, putState: true).seBinds }
        #expect(binds > 8, "only \(binds) binds in 8 sequences")
    }

    /// The state the guests put: a token naming the guest, so a leak shows
    /// who leaked. A Secure Execution guest first scans, then binds every
    /// unbound queue it can and associates its EP11 queues (at the step's
    /// time, after the new devices' reset).
    /// Returns how many queues were bound.
    func putStateEverywhere(_ h: inout APHost, step: Int) -> Int {
        var binds = 0
        for g in h.guests.keys.sorted() {
            if h.guests[g]!.hasAPSB { binds += bindEverything(&h, g, at: Uptime(seconds: Double(step))) }
            for q in (try? h.guestView(g).queues) ?? [] {
                #expect(throws: Never.self) { try h.putHeldState(g, q, "\(g)#\(step)") }
            }
        }
        return binds
    }

    func bindEverything(_ h: inout APHost, _ g: String, at t: Uptime) -> Int {
        var binds = 0
        #expect(throws: Never.self) { try h.scanGuestBus(g, cause: "write to scans", at: t) }
        for (q, s) in h.seStates(g, at: t + 0.1) where h.guests[g]!.bus.queues.contains(q) {
            if s.bind == .unbound {
                #expect(throws: Never.self) { try h.seBind(g, q, at: t + 0.1) }
                binds += 1
            }
            if s.bind != .illicit, h.guests[g]!.bus.cards[q.apid]?.supportsSEAssociation == true, s.association == nil {
                #expect(throws: Never.self) { try h.seAssociate(g, q, index: UInt32(q.apqi.value), at: t + 0.2) }
            }
        }
        return binds
    }

    /// Who holds a guest's token that is not that guest.
    func leaks(_ h: APHost) -> [String] {
        h.firmware.records.compactMap { apqn, r in
            guard let token = r.heldState else { return nil }
            let writer = String(token.prefix { $0 != "#" })
            return h.currentOwner(of: apqn) == .guest(writer) ? nil : "\(apqn) holds \(token), owner \(h.currentOwner(of: apqn))"
        }
    }

    /// Runs one sequence, checking after every step; returns how many
    /// operations succeeded, in how many steps some guest had queues, and
    /// whether it ran to the end (it stops at the first broken step).
    /// Every step also checks the model's own invariant checker and that the
    /// state document decodes to the same host.
    func run(_ profile: Profile, seed: Int, putState: Bool = false) throws
        -> (succeeded: Int, plugged: Int, completed: Bool, seBinds: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &* 7919 &+ 17)
        var h = try startHost(profile)
        #expect(violations(h).isEmpty, "\(profile) seed \(seed) start: \(violations(h))")
        var succeeded = 0, plugged = 0, seBinds = 0
        for step in 0..<300 {
            let before = HostState(h)
            _ = h.takeChanges()
            let unsettled = h
            let held = inGuests(h)
            let uuid = pick(Self.uuids, &rng), g = pick(Self.guestNames, &rng)
            let a = APID(rawValue: UInt8(rng.next() % 8)), q = APQI(rawValue: UInt8(rng.next() % 8))
            let device = VfioAPDevice(id: "hostdev0", mdev: uuid, sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuid)")
            var what = ""
            var expectedShadow: (MdevUUID, Matrix)?
            let error = errorOf {
                switch rng.next() % 100 {
                case 0..<6:
                    let axis = pick(MaskAxis.allCases, &rng), text = randomMask(&rng)
                    what = "\(axis.rawValue) \(text.debugDescription)"
                    try h.storeMask(axis, b(text))
                case 6..<12:
                    what = "create \(uuid)"
                    try h.createMdev(b(rng.next() % 2 == 0 ? "\(uuid)" : "\(uuid)".uppercased() + "\n"))
                case 12..<15:
                    let v = pick(["1", "0", "1\n", "x"], &rng)
                    what = "remove \(uuid) \(v.debugDescription)"
                    try h.removeMdev(uuid, b(v))
                case 15..<47:
                    let t = pick(AssignTarget.allCases, &rng), id = randomId(&rng)
                    what = "assign_\(t.rawValue) \(uuid) \(id.debugDescription)"
                    let m = h.vfio.mdevs[uuid]
                    try h.assign(t, mdev: uuid, b(id))
                    // The seed's hot plug; upstream re-filters (V11).
                    if profile == .seed, let m, m.guest != nil, let n = h.vfio.mdevs[uuid],
                       case .success(let v) = KernelParse.kstrtoul(b(id)), let raw = UInt8(exactly: v) {
                        switch t {
                        case .adapter:
                            let a = APID(rawValue: raw)
                            expectedShadow = (uuid, m.matrix.apm.contains(a) ? m.shadow : specPlug(adapter: a, m.shadow, n.matrix, h))
                        case .domain:
                            let q = APQI(rawValue: raw)
                            expectedShadow = (uuid, m.matrix.aqm.contains(q) ? m.shadow : specPlug(domain: q, m.shadow, n.matrix, h))
                        case .controlDomain: break
                        }
                    }
                case 47..<53:
                    let t = pick(AssignTarget.allCases, &rng), id = randomId(&rng)
                    what = "unassign_\(t.rawValue) \(uuid) \(id.debugDescription)"
                    try h.unassign(t, mdev: uuid, b(id))
                case 53..<65:
                    // g2 is a Secure Execution guest: its bindings must go wherever its queues go.
                    what = "start \(g) with \(uuid)"
                    try h.start(g, mdev: uuid, secure: g == "g2")
                    if profile == .seed, let m = h.vfio.mdevs[uuid] { expectedShadow = (uuid, specFilter(m.matrix, h)) }
                case 65..<69:
                    what = "stop \(g)"
                    try h.stopGuest(g)
                case 69..<75:
                    what = rng.next() % 2 == 0 ? "plug \(g) \(uuid)" : "unplug \(g)"
                    if what.hasPrefix("plug") {
                        try h.plugDevice(g, device)
                        if profile == .seed, let m = h.vfio.mdevs[uuid] { expectedShadow = (uuid, specFilter(m.matrix, h)) }
                    } else {
                        _ = try h.unplugDevice(g, id: "hostdev0")
                    }
                case 75..<85:
                    let driver = pick(["vfio_ap", "cex4queue", "cex4card"], &rng)
                    let name = driver == "cex4card" ? a.cardName : APQN(a, q).description + (rng.next() % 2 == 0 ? "\n" : "")
                    let bind = rng.next() % 3 != 0
                    what = "\(bind ? "bind" : "unbind") \(driver) \(name.debugDescription)"
                    if bind { try h.bind(driver: driver, b(name)) } else { try h.unbind(driver: driver, b(name)) }
                case 85..<90:
                    let v = pick(["0", "1", "1\n", " 1", "2"], &rng)
                    what = "\(a.cardName)/config \(v.debugDescription)"
                    if h.bus.cards[a] != nil { try h.storeCardConfig(a, b(v)) }
                case 90..<95:
                    if rng.next() % 3 != 0 {
                        let restricted = rng.next() % 3 == 0
                        what = "add adapter \(a)\(restricted ? " domains 0-1" : "")"
                        try h.addAdapter(a, type: AdapterType(pick(["CEX8C", "CEX6A", "CEX3C"], &rng))!,
                                         domains: restricted ? ids([0, 1]) : nil)
                    } else {
                        what = "remove adapter \(a)"
                        try h.removeAdapter(a)
                    }
                default:
                    if rng.next() % 3 != 0 {
                        what = "add domain \(q)"
                        try h.addDomain(q)
                    } else {
                        what = "remove domain \(q)"
                        try h.removeDomain(q)
                    }
                }
            }
            let context = "\(profile) seed \(seed) step \(step): \(what)"
            if error == nil { succeeded += 1 }
            if h.vfio.mdevs.values.contains(where: { $0.guest != nil && !$0.shadow.apm.isEmpty }) { plugged += 1 }
            var broken = violations(h) + h.checkInvariants().map { "checkInvariants: \($0)" } + leaks(h)
                + changeTrackingProblems(before: unsettled, after: &h)
            var settled = h
            _ = settled.takeEvents()
            if try JSONDecoder().decode(APHost.self, from: JSONEncoder().encode(settled)) != settled {
                broken.append("the state document does not decode to the same host")
            }
            if let error {
                if HostState(h) != before { broken.append("refused (\(error)) but changed the host") }
            } else if let (u, s) = expectedShadow, h.shadow(u) != s {
                broken.append("shadow \(h.shadow(u).summary), SPEC says \(s.summary)")
            }
            // A queue that left a guest was reset.
            for pair in held.subtracting(inGuests(h)) {
                let apqn = APQN(sysfsName: pair[0])!
                if (h.firmware.records[apqn]?.resets ?? 0) <= (before.records[apqn]?.resets ?? 0) {
                    broken.append("\(pair[0]) left guest \(pair[1]) without a reset")
                }
            }
            #expect(broken.isEmpty, "\(broken.prefix(5)); \(context)")
            if !broken.isEmpty { return (succeeded, plugged, false, seBinds) }   // one report per sequence
            if putState { seBinds += putStateEverywhere(&h, step: step) }
        }
        return (succeeded, plugged, true, seBinds)
    }
}
