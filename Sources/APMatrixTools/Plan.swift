import APMatrixModel
import APMatrixSysfs
import Foundation
import SystemPackage

/// One sysfs write of a plan: `VALUE` followed by a newline, as `echo VALUE > PATH` writes it.
public struct PlannedWrite: Hashable, Sendable {
    /// The line of the plan file it came from (0 for writes derived from an mdevctl config).
    public let line: Int
    /// Relative to the sysfs root.
    public let path: String
    public let value: String
    public var bytes: [UInt8] { Array((value + "\n").utf8) }

    public init(line: Int, path: String, value: String) {
        self.line = line
        self.path = path
        self.value = value
    }

    /// Parses a plan file: one `PATH VALUE` per line, PATH relative to the
    /// sysfs root (a leading `/sys/` or `/` is dropped); blank lines and `#`
    /// comments are skipped.
    public static func parse(_ text: String) throws(PlanError) -> [PlannedWrite] {
        var out: [PlannedWrite] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            guard let space = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
                throw PlanError("line \(i + 1): '\(line)': write PATH VALUE, e.g. devices/vfio_ap/matrix/UUID/assign_adapter 5")
            }
            var path = String(line[..<space])
            if path.hasPrefix("/sys/") { path.removeFirst(5) }
            while path.hasPrefix("/") { path.removeFirst() }
            out.append(PlannedWrite(line: i + 1, path: path, value: line[space...].trimmingCharacters(in: .whitespaces)))
        }
        return out
    }
}

public struct PlanError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// An mdevctl device config (`/etc/mdevctl.d/matrix/UUID`, or a callout's stdin).
public struct MdevctlConfig: Hashable, Sendable {
    public var type: String
    /// `auto` or `manual`.
    public var start: String
    /// The attributes in the order mdevctl writes them.
    public var attrs: [(name: String, value: String)]

    public static func == (l: Self, r: Self) -> Bool {
        l.type == r.type && l.start == r.start && l.attrs.map(\.name) == r.attrs.map(\.name) && l.attrs.map(\.value) == r.attrs.map(\.value)
    }
    public func hash(into h: inout Hasher) { h.combine(type); h.combine(start) }

    public static func parse(_ text: String) throws(PlanError) -> MdevctlConfig {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw PlanError("not an mdevctl config: expected a JSON object with mdev_type, start and attrs")
        }
        var attrs: [(String, String)] = []
        for item in obj["attrs"] as? [[String: Any]] ?? [] {
            for (k, v) in item { attrs.append((k, v as? String ?? "\(v)")) }
        }
        return MdevctlConfig(type: obj["mdev_type"] as? String ?? "", start: obj["start"] as? String ?? "manual", attrs: attrs)
    }

    /// What mdevctl writes to start the device: `create`, then each attribute in order.
    public func writes(uuid: MdevUUID, create: Bool = true) -> [PlannedWrite] {
        (create ? [PlannedWrite(line: 0, path: Snapshot.typeDir + "/create", value: uuid.description)] : [])
            + attrs.map { PlannedWrite(line: 0, path: Snapshot.matrixDir + "/\(uuid)/\($0.name)", value: $0.value) }
    }
}

/// A private copy of the model, rebuilt from a sysfs snapshot with the
/// model's own typed operations under the tree's profile: what `matrix` and
/// `explain` classify, and what `plan` simulates writes on, through the same
/// sysfs view the emulator serves.
///
/// What the rebuild assumes (also listed in `assumptions` when it matters):
/// the masks, the LPAR's configuration and the card/queue devices are as
/// sysfs shows them; adapters in the LPAR without a card are pre-CEX4
/// adapters; mdevs were created in the order of their iommu groups (sysfs
/// does not show the creation order, which only orders log lines; the kernel
/// gives each new mdev the lowest free group); every running guest opened
/// its mdev now, with `-cpu host` (its shadow is what filtering gives today;
/// when the real guest_matrix differs because of hot-plug history, a note
/// says so and predictions for that mdev assume the filtered shadow).
public struct PlanHost: Sendable {
    public var host: APHost
    public var assumptions: [String]

    public init(_ s: Snapshot) throws(PlanError) {
        var notes = s.notes
        let d = Self.description(of: s, notes: &notes)
        var host: APHost
        do { host = try APHost(d, profile: s.profile) } catch { throw PlanError("cannot rebuild the host from \(s.root): \(error)") }
        func replay(_ what: String, _ op: (inout APHost) throws(APError) -> Void) throws(PlanError) {
            do throws(APError) { try op(&host) } catch { throw PlanError("cannot rebuild the state of \(s.root): \(what): \(error)") }
        }
        for card in s.cards.values.sorted(by: { $0.apid < $1.apid }) {
            let id = card.apid
            if card.driver == nil { try replay(id.cardName) { h throws(APError) in try h.unbindCard(id) } }
            if card.online == false { try replay(id.cardName) { h throws(APError) in try h.setCardOnline(id, false) } }
        }
        for q in s.queues.values.sorted(by: { $0.apqn < $1.apqn }) {
            guard let model = host.bus.queues[q.apqn] else { continue }
            if let name = q.override {
                try replay("queue \(q.apqn) driver_override") { h throws(APError) in try h.setDriverOverride(q.apqn, name) }
            }
            if q.driver == nil, let current = model.driver {
                try replay("queue \(q.apqn)") { h throws(APError) in try h.unbindQueue(q.apqn, from: current) }
            } else if q.driver != model.driver?.rawValue {
                // Bound where the masks would not bind it: a driver_override may have made it so.
                var trial = host
                if let current = model.driver, let d = q.driver.flatMap(QueueDriver.init(rawValue:)),
                   (try? trial.unbindQueue(q.apqn, from: current)) != nil, (try? trial.bindQueue(q.apqn, to: d)) != nil {
                    host = trial
                } else {
                    notes.append("queue \(q.apqn) is bound to \(q.driver ?? "no driver") where the masks give it to \(model.driver?.rawValue ?? "none"): taken as \(model.driver?.rawValue ?? "none")")
                }
            }
            // After the card's: a card's online write forces its queues, a queue's own write comes later.
            if let online = q.online, online != host.bus.queues[q.apqn]?.online { host.setQueueOnline(q.apqn, online) }
        }
        host.restoreHistory(uninitiated: s.queues.values.filter(\.uninitiated).map(\.apqn), busScans: s.busScans, at: .boot)
        let rebuilt = Set(host.bus.queues.keys), seen = Set(s.queues.keys)
        if rebuilt != seen {
            notes.append("queue devices differ from sysfs: \(rebuilt.subtracting(seen).sorted().prefix(4).map(\.description)) only in the rebuild, \(seen.subtracting(rebuilt).sorted().prefix(4).map(\.description)) only in sysfs")
        }
        if let dom = s.apDomain, dom != host.bus.apDomain {
            try replay("ap_domain") { h throws(APError) in try h.setAPDomain(dom) }
        }
        try replay("the mdevs") { h throws(APError) in try Self.createMdevs(s.mdevs, on: &h) }
        for m in s.mdevs {
            try replay("mdev \(m.uuid)") { h throws(APError) in
                for a in m.matrix.apm { try h.assign(.adapter(a), to: m.uuid) }
                for q in m.matrix.aqm { try h.assign(.domain(q), to: m.uuid) }
                for q in m.matrix.adm { try h.assign(.controlDomain(q), to: m.uuid) }
            }
        }
        for m in s.mdevs {
            guard let seen = m.guestMatrix else { continue }
            try replay("the guest of mdev \(m.uuid)") { h throws(APError) in
                let cpu = try CPUModel(parsing: "host", facilities: h.firmware.facilities)
                try h.startGuest(Self.guestName(m.uuid), cpu: cpu, device: VfioAPDevice(
                    id: "hostdev0", mdev: m.uuid, sysfsdev: "/sys/\(Snapshot.matrixDir)/\(m.uuid)"), at: .boot)
            }
            let rebuiltShadow = host.vfio.mdevs[m.uuid]!.shadow
            if rebuiltShadow.apm != seen.apm || rebuiltShadow.aqm != seen.aqm {
                notes.append("mdev \(m.uuid): its guest has \(seen.summary) but filtering now gives \(rebuiltShadow.summary) (hot-plug history); predictions for it assume the latter")
            }
        }
        _ = host.takeEvents()
        self.host = host
        assumptions = notes
        guestMatrices = Dictionary(uniqueKeysWithValues: s.mdevs.compactMap { m in m.guestMatrix.map { (m.uuid, $0) } })
    }

    /// What each mdev's guest has, as `guest_matrix` shows it: the real
    /// CRYCB, which differs from the rebuilt shadow after hot-plug history.
    public let guestMatrices: [MdevUUID: Matrix]

    /// The state of an APQN by the model's one classification, with the
    /// guests' CRYCBs as sysfs shows them.
    public func state(of apqn: APQN) -> APQNState {
        host.apqnState(apqn) { guestMatrices[$0.uuid] ?? $0.shadow }
    }

    /// What one write would return on `host`, which it changes on success:
    /// the errno an `open(O_WRONLY)` + `write()` on the mount gives.
    public static func simulate(_ w: PlannedWrite, on host: inout APHost) -> APError? {
        guard let path = resolve(w.path, host) else {
            return APError(.noSuchFileOrDirectory, "\(w.path): no such file")
        }
        switch SysfsTree.node(path, in: host) {
        case .attribute(let a)?:
            guard a.isWritable else { return APError(.permissionDenied, "\(w.path) is read-only") }
        case .directory?: return APError(.isDirectory, "\(w.path) is a directory")
        default: return APError(.noSuchFileOrDirectory, "\(w.path): no such file")
        }
        do throws(APError) { try SysfsTree.write(path, w.bytes, in: &host) } catch { return error }
        return nil
    }

    /// The path with every symlink followed, as the kernel's path walk does; nil if a component is missing.
    static func resolve(_ path: String, _ host: APHost) -> String? {
        var done: [Substring] = []
        var todo = Array(path.split(separator: "/").reversed())
        var hops = 0
        while let c = todo.popLast() {
            if c == "." { continue }
            if c == ".." { _ = done.popLast(); continue }
            let here = (done + [c]).joined(separator: "/")
            switch SysfsTree.node(here, in: host) {
            case nil: return nil
            case .symlink(let target)?:
                hops += 1
                guard hops <= 40 else { return nil }
                todo.append(contentsOf: target.split(separator: "/").reversed())
            default: done.append(c)
            }
        }
        return done.joined(separator: "/")
    }
}

/// `apmatrix plan`: each write's predicted result and the state it leads to.
public struct PlanReport: Sendable {
    public struct Step: Sendable {
        public let write: PlannedWrite
        public let predicted: APError?
        /// With --apply: nil = not attempted; .some(nil) = succeeded.
        public var actual: Errno??
    }

    public let root: String
    public let assumptions: [String]
    public let before: APHost
    public let after: APHost
    public var steps: [Step]
    public var applied: Bool { steps.contains { $0.actual != nil } }

    /// Predicts every write in order; a failed write changes nothing and the
    /// next one is predicted on the same state (as a shell running the file would).
    public init(_ s: Snapshot, _ writes: [PlannedWrite]) throws(PlanError) {
        let rebuilt = try PlanHost(s)
        var host = rebuilt.host
        steps = writes.map { Step(write: $0, predicted: PlanHost.simulate($0, on: &host), actual: nil) }
        root = s.root
        assumptions = rebuilt.assumptions
        before = rebuilt.host
        after = host
    }

    /// Performs the writes through sysfs and stops at the first failure.
    /// Returns whether every write succeeded.
    public mutating func apply(_ dir: SysfsDirectory) -> Bool {
        for i in steps.indices {
            let e = dir.write(steps[i].write.path, steps[i].write.bytes)
            steps[i].actual = .some(e)
            if e != nil { return false }
        }
        return true
    }

    static func errnoName(_ e: Errno?) -> String { e.map(\.symbol) ?? "ok" }

    func mdevLines(_ h: APHost) -> [MdevUUID: (matrix: String, guest: String)] {
        var out: [MdevUUID: (String, String)] = [:]
        for m in h.vfio.mdevs.values {
            out[m.uuid] = (m.matrix.summary, m.guest == nil ? "ENODEV (no guest)" : "APM \(m.shadow.apm.isEmpty ? "-" : m.shadow.apm.description) AQM \(m.shadow.aqm.isEmpty ? "-" : m.shadow.aqm.description)")
        }
        return out
    }

    public var text: String {
        var out = "plan for \(root): \(steps.count) write(s)\n"
        for a in assumptions { out += "assumes: \(a)\n" }
        var rows: [[String]] = []
        for (i, st) in steps.enumerated() {
            var row = ["\(i + 1)", "\(st.write.path) \(st.write.value)", Self.errnoName(st.predicted?.errno)]
            if applied { row.append(st.actual.map { "applied: " + Self.errnoName($0) } ?? "not applied") }
            rows.append(row)
        }
        out += Output.table(rows)
        for (i, st) in steps.enumerated() {
            if let e = st.predicted { out += "\(i + 1): \(e.message)\n" }
        }
        let b = mdevLines(before), a = mdevLines(after)
        out += "\nafter the writes (all of them: a failed write changes nothing):\n"
        if before.bus.apmask != after.bus.apmask { out += "apmask \(after.bus.apmask.hexString)\n" }
        if before.bus.aqmask != after.bus.aqmask { out += "aqmask \(after.bus.aqmask.hexString)\n" }
        for uuid in Set(a.keys).union(b.keys).sorted() {
            guard let now = a[uuid] else { out += "mdev \(uuid): removed\n"; continue }
            let changed = b[uuid].map { $0 != now } ?? true
            out += "mdev \(uuid)\(b[uuid] == nil ? " (new)" : changed ? " (changed)" : ""): \(now.matrix); guest_matrix \(now.guest)\n"
        }
        if applied {
            let n = steps.filter { $0.actual == .some(nil) }.count
            out += "\napplied \(n) of \(steps.count) write(s)"
            if let f = steps.firstIndex(where: { ($0.actual ?? nil) != nil }) { out += "; write \(f + 1) failed, the rest were not attempted" }
            out += "\n"
        }
        return out
    }

    /// Schema `apmatrix.plan/1`: see README "JSON output".
    public var jsonObject: [String: Any] {
        func matrixObject(_ h: APHost) -> [[String: Any]] {
            h.vfio.mdevs.values.sorted { $0.uuid < $1.uuid }.map { m in
                ["uuid": m.uuid.description, "matrix": m.matrix.apqns.map(\.description), "adapters": m.matrix.apm.map(\.value),
                 "domains": m.matrix.aqm.map(\.value), "controlDomains": m.matrix.adm.map(\.value),
                 "guestMatrix": m.guest == nil ? NSNull() : m.shadow.apqns.map(\.description) as Any]
            }
        }
        return [
            "schema": "apmatrix.plan/1",
            "sysfs": root,
            "assumptions": assumptions,
            "writes": steps.map { st -> [String: Any] in
                var o: [String: Any] = ["line": st.write.line, "path": st.write.path, "value": st.write.value,
                                        "predicted": Output.orNull(st.predicted?.errno.symbol),
                                        "message": Output.orNull(st.predicted?.message)]
                if applied { o["applied"] = st.actual.map { $0 == nil } ?? false; o["actual"] = Output.orNull(st.actual.flatMap { $0?.symbol }) }
                return o
            },
            "result": ["apmask": after.bus.apmask.hexString, "aqmask": after.bus.aqmask.hexString, "mdevs": matrixObject(after)] as [String: Any],
        ]
    }

    public var json: String { Output.json(jsonObject) }
}
