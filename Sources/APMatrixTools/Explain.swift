import APMatrixModel

/// Why one assigned APQN is not in the guest, the rule that decided it, and what to do.
public struct Explanation: Hashable, Sendable {
    /// A stable code: `no-guest`, `guest-unknown`, `adapter-deconfigured`,
    /// `adapter-not-in-lpar`, `domain-not-in-lpar`, `adapter-filtered`,
    /// `domain-filtered`, `nothing-bound`, `hot-plug-history`.
    public let reason: String
    public let why: String
    public let rule: String
    public let action: String
}

/// `apmatrix explain UUID [APQN]`: for each APQN assigned to the mdev and not
/// in its `guest_matrix`, the reason: the model rebuilt from sysfs classifies
/// the APQN (`APQNState`) and its filtering rule (`APHost.filterTrace`) says
/// which step left it out.
public struct ExplainReport: Sendable {
    public let snapshot: Snapshot
    public let model: PlanHost
    public let mdev: MdevInfo
    /// The APQNs asked about: all assigned ones, or the one given.
    public let asked: [APQN]
    public let missing: [(apqn: APQN, explanation: Explanation)]

    public init(_ s: Snapshot, mdev m: MdevInfo, apqn: APQN? = nil) throws(PlanError) {
        snapshot = s
        model = try PlanHost(s)
        mdev = m
        asked = apqn.map { [$0] } ?? m.matrix.apqns
        let trace = model.host.filterTrace(m.matrix)
        missing = asked.filter { m.matrix.contains($0) && !(m.guestMatrix?.contains($0) ?? false) }
            .map { [model] in ($0, Self.explain($0, m, trace, model)) }
    }

    static let filterRule = "SPEC §3 Filtering"

    static func explain(_ apqn: APQN, _ m: MdevInfo, _ trace: FilterTrace, _ model: PlanHost) -> Explanation {
        let a = apqn.apid, q = apqn.apqi
        let path = "/sys/devices/vfio_ap/matrix/\(m.uuid)"
        switch m.guest {
        case .none:
            return Explanation(reason: "no-guest", why: "no guest uses the mdev (guest_matrix: ENODEV)",
                               rule: "SPEC §3 guest_matrix: a shadow CRYCB exists only while a guest has the mdev open",
                               action: "start a guest with -device vfio-ap,sysfsdev=\(path), or hot plug it (device_add)")
        case .unknown:
            return Explanation(reason: "guest-unknown", why: "this kernel has no guest_matrix attribute, so what the guest has cannot be read",
                               rule: "kernels before dynamic configuration give the guest M unfiltered",
                               action: "check the guest itself (lszcrypt inside it)")
        case .matrix: break
        }
        let firmware = model.host.firmware
        if case .overProvisioned = model.state(of: apqn), !firmware.hostConfiguration.apm.contains(a) {
            let step1 = "\(filterRule) step 1: only M.apm ∩ H.apm (ap_adapter_mask) can reach a guest"
            if firmware.adapters[a]?.configured == false {
                return Explanation(reason: "adapter-deconfigured",
                                   why: "adapter \(a) is deconfigured (devices/ap/\(a.cardName)/config is 0), so it is not in the host's AP configuration",
                                   rule: step1,
                                   action: "echo 1 > devices/ap/\(a.cardName)/config; vfio_ap hot plugs the adapter into the running guest")
            }
            return Explanation(reason: "adapter-not-in-lpar",
                               why: "adapter \(a) is not in the LPAR's AP configuration (ap_adapter_mask): the mdev is over-provisioned",
                               rule: step1,
                               action: "add adapter \(a) to the LPAR's crypto configuration (HMC/SE; emulator: apmatrix host adapter add); vfio_ap hot plugs it when it arrives")
        }
        if case .overProvisioned = model.state(of: apqn) {
            return Explanation(reason: "domain-not-in-lpar",
                               why: "usage domain \(q) is not in the LPAR's AP configuration (ap_usage_domain_mask): the mdev is over-provisioned",
                               rule: "\(filterRule) step 1: only M.aqm ∩ H.aqm (ap_usage_domain_mask) can reach a guest",
                               action: "add usage domain \(q) to the LPAR (HMC/SE; emulator: apmatrix host domain add); vfio_ap hot plugs it when it arrives")
        }
        let c = trace.candidates
        if trace.shadow.contains(apqn) {
            return Explanation(reason: "hot-plug-history",
                               why: "filtering would give \(apqn) to a guest starting now, but this guest's CRYCB was built earlier and hot plug, which is all-or-nothing per adapter and domain, did not add it",
                               rule: "SPEC §3 Hot plug",
                               action: "echo 0x\(a) > \(path)/unassign_adapter; echo 0x\(a) > \(path)/assign_adapter (hot plugs it again), or restart the guest")
        }
        switch trace.step {
        case .byAdapter, .outsideHost:
            let blocker = c.aqm.lazy.map { APQN(a, $0) }.first { !model.host.bus.isBoundToVfio($0) } ?? apqn
            let (state, fix) = queueState(blocker, model.host.bus)
            return Explanation(reason: "adapter-filtered",
                               why: "adapter \(a) is filtered out: queue \(blocker) \(state), and an adapter reaches the guest only if every queue it has in the mdev's domains is bound to vfio_ap",
                               rule: "\(filterRule) step 2 (by APID)", action: fix)
        case .byDomain:
            let blocker = c.apm.lazy.map { APQN($0, q) }.first { !model.host.bus.isBoundToVfio($0) } ?? apqn
            let (state, fix) = queueState(blocker, model.host.bus)
            return Explanation(reason: "domain-filtered",
                               why: "no adapter had all its queues bound to vfio_ap, so the APQI fallback chose domains instead; domain \(q) is dropped because queue \(blocker) \(state)",
                               rule: "\(filterRule) step 3 (APQI fallback)", action: fix)
        case .nothingBound:
            let blocker = c.apqns.first { !model.host.bus.isBoundToVfio($0) } ?? apqn
            let (state, fix) = queueState(blocker, model.host.bus)
            return Explanation(reason: "nothing-bound",
                               why: "no adapter and no domain of the mdev has all its queues bound to vfio_ap (queue \(blocker) \(state)), so the guest gets no APQN",
                               rule: "\(filterRule) step 4", action: fix)
        }
    }

    /// What is wrong with a queue that is not bound to vfio_ap, and the fix.
    /// In the model a bound queue has the driver its masks give it, so a
    /// queue not bound to vfio_ap is missing, unbound, or reserved for the host
    /// (then a mask change rebinds it, unbound or not).
    static func queueState(_ apqn: APQN, _ bus: APBus) -> (String, String) {
        let a = apqn.apid, q = apqn.apqi
        guard let dev = bus.queues[apqn] else {
            return ("does not exist (the adapter has no queue for that domain)",
                    "unassign adapter \(a) or domain \(q) from the mdev: a queue the adapter does not have can never be bound")
        }
        guard bus.isReserved(apqn) else {
            return ("is bound to no driver (it was unbound)", "echo \(apqn) > bus/ap/drivers/vfio_ap/bind")
        }
        let binding = dev.driver.map { "is bound to the host's driver \($0.rawValue) because" } ?? "is bound to no driver, and"
        return ("\(binding) apmask bit \(a) and aqmask bit \(q) reserve it for the host",
                "echo -0x\(a) > bus/ap/apmask (or echo -0x\(q) > bus/ap/aqmask) to give it to vfio_ap")
    }

    public var text: String {
        let inGuest = mdev.guestMatrix.map { "\($0.apqns.count) in its guest" } ?? (mdev.guest == .none ? "no guest" : "guest unknown")
        var out = "mdev \(mdev.uuid): \(mdev.matrix.apqns.count) APQNs assigned, \(inGuest) (\(snapshot.profileName) rules)\n"
        for apqn in asked where !mdev.matrix.contains(apqn) {
            out += "\(apqn) is not assigned to this mdev" + (snapshot.owner(of: apqn).map { " (mdev \($0.uuid) has it)" } ?? "") + "\n"
        }
        if missing.isEmpty && asked.allSatisfy(mdev.matrix.contains) {
            out += asked.count == 1 ? "\(asked[0]) is in the guest\n" : "every assigned APQN is in the guest\n"
        }
        // APQNs with the same explanation are listed together.
        var groups: [(apqns: [APQN], e: Explanation)] = []
        for (apqn, e) in missing {
            if let i = groups.firstIndex(where: { $0.e == e }) { groups[i].apqns.append(apqn) } else { groups.append(([apqn], e)) }
        }
        for g in groups {
            out += "\n" + Self.wrap(g.apqns.map(\.description)) + "\n"
            out += "  why:  \(g.e.why)\n  rule: \(g.e.rule)\n  do:   \(g.e.action)\n"
        }
        return out
    }

    /// APQN lists wrap at 80 columns.
    static func wrap(_ words: [String]) -> String {
        var lines: [String] = [], line = ""
        for w in words {
            if !line.isEmpty && line.count + 1 + w.count > 80 { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + w
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }

    /// Schema `apmatrix.explain/1`: see README "JSON output".
    public var jsonObject: [String: Any] {
        [
            "schema": "apmatrix.explain/1",
            "mdev": mdev.uuid.description,
            "guest": Output.orNull(mdev.hasGuest),
            "assigned": mdev.matrix.apqns.map(\.description),
            "inGuest": (mdev.guestMatrix?.apqns ?? []).map(\.description),
            "missing": missing.map { ["apqn": $0.apqn.description, "reason": $0.explanation.reason, "why": $0.explanation.why,
                                      "rule": $0.explanation.rule, "action": $0.explanation.action] },
        ]
    }

    public var json: String { Output.json(jsonObject) }
}

