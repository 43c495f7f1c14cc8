import APMatrixModel
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

/// Random operation sequences; after each one the SPEC §5 invariants must hold
/// and a refused operation must change nothing but `events`.
@Suite struct PropertyTests {
    static let uuids = [uuidA, uuidB, uuidC]
    static let guestNames = ["g0", "g1", "g2"]

    func startHost() throws -> APHost {
        try makeHost(adapters: [0, 1, 2, 3, 4, 5], domains: [0, 1, 2, 3, 4, 5], control: Array(0...7),
                     types: [1: "CEX8P", 2: "CEX3A", 3: "CEX7C", 4: "CEX8A"],
                     restrictions: [3: [0, 1, 2]], deconfigured: [4],
                     apmask: ids([0, 1]), aqmask: ids([0]))
    }

    /// The SPEC §3 filter, written from the text (not from the model).
    func specFilter(_ m: Matrix, _ h: APHost) -> Matrix {
        let hc = h.hostConfiguration
        let apids = m.apm & hc.apm, apqis = m.aqm & hc.aqm
        var s = Matrix(adm: m.adm)
        if apids.isEmpty || apqis.isEmpty { return s }
        func bound(_ a: Int, _ q: Int) -> Bool { h.queues[APQN(a, q)]?.driver == .vfioAP }
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

    /// The SPEC §3 hot-plug rule for adapter `a` (domains: `transpose`).
    func specPlug(_ id: Int, adapter: Bool, _ s: Matrix, _ m: Matrix, _ h: APHost) -> Matrix {
        let hc = h.hostConfiguration
        func bound(_ a: Int, _ q: Int) -> Bool { h.queues[APQN(a, q)]?.driver == .vfioAP }
        func ok(_ other: Int) -> Bool { adapter ? bound(id, other) : bound(other, id) }
        let (inH, mine, others, mOthers, hOthers) = adapter
            ? (hc.apm.contains(id), s.apm, s.aqm, m.aqm, hc.aqm)
            : (hc.aqm.contains(id), s.aqm, s.apm, m.apm, hc.apm)
        guard inH, !mine.contains(id) else { return s }
        var out = s
        if others.isEmpty {
            let pair = mOthers & hOthers
            guard !pair.isEmpty, pair.allSatisfy(ok) else { return s }
            if adapter { out.apm.insert(id); out.aqm = pair } else { out.aqm.insert(id); out.apm = pair }
        } else if others.allSatisfy(ok) {
            if adapter { out.apm.insert(id) } else { out.aqm.insert(id) }
        }
        return out
    }

    /// Who holds which APQN in a guest: (apqn, guest).
    func inGuests(_ h: APHost) -> Set<[String]> {
        var out = Set<[String]>()
        for m in h.mdevs.values { if let g = m.guest { for q in m.shadow.apqns { out.insert([q.description, g]) } } }
        return out
    }

    /// The SPEC §5 invariants that do not hold in `h`.
    func violations(_ h: APHost) -> [String] {
        var out: [String] = []
        func check(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { out.append(what()) } }
        let ms = h.mdevsInOrder
        let hc = h.hostConfiguration
        for (i, m1) in ms.enumerated() {
            for m2 in ms[(i + 1)...] {
                let shared = Matrix(apm: m1.matrix.apm & m2.matrix.apm, aqm: m1.matrix.aqm & m2.matrix.aqm).apqns
                check(shared.isEmpty, "APQN \(shared) in two mdevs")
            }
            let reserved = m1.matrix.apqns.filter { h.apmask.contains($0.apid) && h.aqmask.contains($0.apqi) }
            check(reserved.isEmpty, "assigned APQN reserved \(reserved)")
            let s = m1.shadow
            guard let g = m1.guest else {
                check(s == Matrix(), "shadow without guest")
                continue
            }
            check(h.guests[g]?.device?.mdev == m1.uuid, "guest/mdev link")
            check(s.apm.isSubset(of: m1.matrix.apm) && s.aqm.isSubset(of: m1.matrix.aqm), "S ⊄ M")
            check(s.adm == m1.matrix.adm, "S.adm != M.adm")
            check(s.apm.isSubset(of: hc.apm) && s.aqm.isSubset(of: hc.aqm), "S ⊄ H")
            check(s.apm.isEmpty == s.aqm.isEmpty, "S.apm empty xor S.aqm empty")
            for q in s.apqns {
                check(h.queues[q]?.driver == .vfioAP, "\(q) in S not bound to vfio_ap")
                check(h.records[q]?.holdsStateOf == g, "\(q) in S of \(g) but holds \(String(describing: h.records[q]?.holdsStateOf))")
            }
        }
        for (g, guest) in h.guests {
            if let d = guest.device { check(h.mdevs[d.mdev]?.guest == g, "device link") }
        }
        for (apqn, r) in h.records {
            guard let g = r.holdsStateOf else { continue }
            let m = h.mdevs.values.first { $0.guest == g }
            check(m?.shadow.contains(apqn) == true, "\(apqn) holds state of \(g) outside its shadow")
        }
        // Queue devices: exactly configured CEX4+ adapters x their usage domains;
        // each bound to the driver the masks give it, or to none.
        for a in 0..<8 {
            let ad = h.adapters[a]
            let expected = ad.map { $0.configured && $0.type.hwtype >= 10 ? hc.aqm & ($0.domains ?? .all) : Bitmap256() } ?? Bitmap256()
            for q in 0..<8 {
                let apqn = APQN(a, q)
                check((h.queues[apqn] != nil) == expected.contains(q), "queue \(apqn) existence")
                if let d = h.queues[apqn]?.driver {
                    let fits: QueueDriver = h.apmask.contains(a) && h.aqmask.contains(q) ? .cex4queue : .vfioAP
                    check(d == fits, "\(apqn) on \(d.rawValue)")
                }
                check(h.isBoundToVfio(a, q) == (h.queues[apqn]?.driver == .vfioAP), "vfioBound \(apqn)")
            }
            check((h.cards[a] != nil) == (ad.map { $0.type.hwtype >= 10 } ?? false), "card \(a)")
        }
        check(h.availableInstances == 65536 - h.mdevs.count, "available_instances")
        return out
    }

    func pick<T>(_ list: [T], _ rng: inout SplitMix64) -> T { list[Int(rng.next() % UInt64(list.count))] }

    func randomMask(_ rng: inout SplitMix64) -> String {
        let id = Int(rng.next() % 9)
        switch rng.next() % 6 {
        case 0: return "+\(id)"
        case 1: return "-\(id)"
        case 2: return "+\(id)-\(id + Int(rng.next() % 3)),-\(Int(rng.next() % 8))\n"
        case 3: return Bitmap256((0..<8).filter { _ in rng.next() % 2 == 0 }).hexString
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

    @Test(arguments: 0..<24)
    func randomSequencesKeepTheInvariants(_ seed: Int) throws {
        let (succeeded, _, completed) = try run(seed: seed)
        if completed { #expect(succeeded > 80, "only \(succeeded) operations succeeded") }
    }

    /// The sequences must exercise the model, not bounce off errors: guests
    /// must have queues for a good share of the steps.
    @Test func randomSequencesReachGuestsWithQueues() throws {
        var total = 0, idle = 0
        for seed in 0..<24 {
            let (_, plugged, _) = try run(seed: seed)
            total += plugged
            if plugged == 0 { idle += 1 }
        }
        #expect(total > 24 * 30, "guests had queues in only \(total) steps")
        #expect(idle <= 3, "\(idle) sequences never gave a guest a queue")
    }

    /// With guests putting state into every queue they see after each step:
    /// no state ever reaches the host or another guest, whatever the operations.
    @Test(arguments: 0..<24)
    func guestStateNeverLeaks(_ seed: Int) throws {
        let (_, _, completed) = try run(seed: seed, putState: true)
        #expect(completed)
    }

    /// The state the guests put: a token naming the guest, so a leak shows who leaked.
    func putStateEverywhere(_ h: inout APHost, step: Int) {
        for g in h.guests.keys.sorted() {
            for q in (try? h.guestView(g).queues) ?? [] {
                #expect(throws: Never.self) { try h.putGuestState(g, q, "\(g)#\(step)") }
            }
        }
    }

    /// Who holds a guest's token that is not that guest.
    func leaks(_ h: APHost) -> [String] {
        h.records.compactMap { apqn, r in
            guard let token = r.guestState else { return nil }
            let writer = String(token.prefix { $0 != "#" })
            return h.currentOwner(of: apqn) == .guest(writer) ? nil : "\(apqn) holds \(token), owner \(h.currentOwner(of: apqn))"
        }
    }

    /// Runs one sequence, checking after every step; returns how many
    /// operations succeeded, in how many steps some guest had queues, and
    /// whether it ran to the end (it stops at the first broken step).
    /// Every step also checks the model's own invariant checker and that the
    /// state document decodes to the same host.
    func run(seed: Int, putState: Bool = false) throws -> (succeeded: Int, plugged: Int, completed: Bool) {
        var rng = SplitMix64(seed: UInt64(seed) &* 7919 &+ 17)
        var h = try startHost()
        #expect(violations(h).isEmpty, "seed \(seed) start: \(violations(h))")
        var succeeded = 0, plugged = 0
        for step in 0..<300 {
            let before = HostState(h)
            let held = inGuests(h)
            let uuid = pick(Self.uuids, &rng), g = pick(Self.guestNames, &rng)
            let a = Int(rng.next() % 8), q = Int(rng.next() % 8)
            let device = VfioAPDevice(id: "hostdev0", mdev: uuid, sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuid)")
            var what = ""
            var expectedShadow: (String, Matrix)?
            let error = errorOf {
                switch rng.next() % 100 {
                case 0..<6:
                    let axis = pick(MaskAxis.allCases, &rng), text = randomMask(&rng)
                    what = "\(axis.rawValue) \(text.debugDescription)"
                    try h.storeMask(axis, b(text))
                case 6..<12:
                    what = "create \(uuid)"
                    try h.createMdev(b(rng.next() % 2 == 0 ? uuid : uuid.uppercased() + "\n"))
                case 12..<15:
                    let v = pick(["1", "0", "1\n", "x"], &rng)
                    what = "remove \(uuid) \(v.debugDescription)"
                    try h.removeMdev(uuid, b(v))
                case 15..<47:
                    let t = pick(AssignTarget.allCases, &rng), id = randomId(&rng)
                    what = "assign_\(t.rawValue) \(uuid) \(id.debugDescription)"
                    let m = h.mdevs[uuid]
                    try h.assign(t, mdev: uuid, b(id))
                    if let m, m.guest != nil, t != .controlDomain, let n = h.mdevs[uuid],
                       case .success(let v) = KernelParse.kstrtoul(b(id)) {
                        let already = t == .adapter ? m.matrix.apm.contains(Int(v)) : m.matrix.aqm.contains(Int(v))
                        expectedShadow = (uuid, already ? m.shadow
                            : specPlug(Int(v), adapter: t == .adapter, m.shadow, n.matrix, h))
                    }
                case 47..<53:
                    let t = pick(AssignTarget.allCases, &rng), id = randomId(&rng)
                    what = "unassign_\(t.rawValue) \(uuid) \(id.debugDescription)"
                    try h.unassign(t, mdev: uuid, b(id))
                case 53..<65:
                    what = "start \(g) with \(uuid)"
                    try h.start(g, mdev: uuid)
                    if let m = h.mdevs[uuid] { expectedShadow = (uuid, specFilter(m.matrix, h)) }
                case 65..<69:
                    what = "stop \(g)"
                    try h.stopGuest(g)
                case 69..<75:
                    what = rng.next() % 2 == 0 ? "plug \(g) \(uuid)" : "unplug \(g)"
                    if what.hasPrefix("plug") {
                        try h.plugDevice(g, device)
                        if let m = h.mdevs[uuid] { expectedShadow = (uuid, specFilter(m.matrix, h)) }
                    } else {
                        _ = try h.unplugDevice(g, id: "hostdev0")
                    }
                case 75..<85:
                    let driver = pick(["vfio_ap", "cex4queue", "cex4card"], &rng)
                    let name = driver == "cex4card" ? "card0\(a)" : APQN(a, q).description + (rng.next() % 2 == 0 ? "\n" : "")
                    let bind = rng.next() % 3 != 0
                    what = "\(bind ? "bind" : "unbind") \(driver) \(name.debugDescription)"
                    if bind { try h.bind(driver: driver, b(name)) } else { try h.unbind(driver: driver, b(name)) }
                case 85..<90:
                    let v = pick(["0", "1", "1\n", " 1", "2"], &rng)
                    what = "card\(a)/config \(v.debugDescription)"
                    if h.cards[a] != nil { try h.storeCardConfig(a, b(v)) }
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
            let context = "seed \(seed) step \(step): \(what)"
            if error == nil { succeeded += 1 }
            if h.mdevs.values.contains(where: { !$0.shadow.apm.isEmpty }) { plugged += 1 }
            var broken = violations(h) + h.checkInvariants().map { "checkInvariants: \($0)" } + leaks(h)
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
                if (h.records[apqn]?.resets ?? 0) <= (before.records[apqn]?.resets ?? 0) {
                    broken.append("\(pair[0]) left guest \(pair[1]) without a reset")
                }
            }
            #expect(broken.isEmpty, "\(broken.prefix(5)); \(context)")
            if !broken.isEmpty { return (succeeded, plugged, false) }   // one report per sequence
            if putState { putStateEverywhere(&h, step: step) }
        }
        return (succeeded, plugged, true)
    }
}
