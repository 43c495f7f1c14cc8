/// What one APQN of the 256×256 matrix is right now, from the point of view
/// of an administrator planning pass-through: who has it, and why. The one
/// classification the web page, `apmatrix matrix` and `apmatrix explain` show.
public enum APQNState: Hashable, Sendable {
    /// The queue device is bound to the default driver cex4queue: the host's zcrypt has it.
    case host
    /// Bound to vfio_ap and assigned to no mdev: free to assign.
    case free
    /// The queue device exists but is bound to no driver.
    case unbound
    /// No queue device and assigned to no mdev.
    case absent(Absence)
    /// Assigned to an mdev no guest uses.
    case assigned(mdev: MdevUUID)
    /// In the CRYCB of the guest that uses its mdev (in the shadow).
    case inGuest(mdev: MdevUUID, guest: String)
    /// Assigned to an mdev a guest uses, but filtered out of that guest's CRYCB.
    case filtered(mdev: MdevUUID, guest: String)
    /// Assigned to an mdev, but its adapter or domain is not in the host
    /// configuration (yet): it is plugged when firmware adds it.
    case overProvisioned(mdev: MdevUUID)

    /// Why an APQN has no queue device.
    public enum Absence: Hashable, Sendable {
        /// The adapter or the domain is not in the host configuration: the
        /// LPAR lacks it, or the adapter is deconfigured.
        case notInConfiguration
        /// Adapter and domain are in the host configuration, but the adapter
        /// has no queue for that domain (a type without devices, or its own
        /// domain restriction).
        case noQueue
    }

    /// A stable name for APIs, pages and tools.
    public var name: String {
        switch self {
        case .host: return "host"
        case .free: return "free"
        case .unbound: return "unbound"
        case .absent: return "absent"
        case .assigned: return "assigned"
        case .inGuest: return "in-guest"
        case .filtered: return "filtered"
        case .overProvisioned: return "over-provisioned"
        }
    }

    /// The mdev that has the APQN assigned, if any.
    public var mdev: MdevUUID? {
        switch self {
        case .assigned(let m), .inGuest(let m, _), .filtered(let m, _), .overProvisioned(let m): return m
        case .host, .free, .unbound, .absent: return nil
        }
    }

    /// The guest whose mdev has the APQN assigned, if a guest uses it.
    public var guest: String? {
        switch self {
        case .inGuest(_, let g), .filtered(_, let g): return g
        default: return nil
        }
    }
}

/// One APQN with everything needed to understand it.
public struct APQNInfo: Hashable, Sendable {
    public let apqn: APQN
    public let state: APQNState
    /// Whether the queue device exists (`devices/ap/cardXX/XX.YYYY`).
    public let hasDevice: Bool
    /// The driver the queue device is bound to; nil without a device or when unbound.
    public let driver: QueueDriver?
    /// Who may see the queue's contents now (SPEC §5).
    public let owner: QueueOwner
    /// Why the APQN is in its state, in words an administrator can act on.
    public let explanation: String
}

extension APHost {
    /// The state of one APQN (SPEC §3): assignment first (an assigned APQN
    /// outside H is over-provisioned; with a guest it is in its CRYCB or
    /// filtered out), then the queue device and its driver, then why there
    /// is none. `crycb` is what an mdev's guest has: its shadow, unless the
    /// caller knows better (the tools read it from `guest_matrix`).
    public func apqnState(_ apqn: APQN, crycb: (Mdev) -> Matrix = \.shadow) -> APQNState {
        if let m = vfio.owner(of: apqn) {
            guard firmware.hostConfiguration.contains(apqn) else { return .overProvisioned(mdev: m.uuid) }
            guard let g = m.guest else { return .assigned(mdev: m.uuid) }
            return crycb(m).contains(apqn) ? .inGuest(mdev: m.uuid, guest: g) : .filtered(mdev: m.uuid, guest: g)
        }
        guard let device = bus.queues[apqn] else {
            return .absent(firmware.hostConfiguration.contains(apqn) ? .noQueue : .notInConfiguration)
        }
        switch device.driver {
        case .cex4queue?: return .host
        case .vfioAP?: return .free
        case nil: return .unbound
        }
    }

    /// The APQN with its explanation: the `explain` of one cell of the matrix.
    public func apqnInfo(_ apqn: APQN) -> APQNInfo {
        let state = apqnState(apqn)
        let device = bus.queues[apqn]
        return APQNInfo(apqn: apqn, state: state, hasDevice: device != nil, driver: device?.driver,
                        owner: currentOwner(of: apqn), explanation: explanation(apqn, state))
    }

    private func explanation(_ apqn: APQN, _ state: APQNState) -> String {
        let a = apqn.apid, q = apqn.apqi
        switch state {
        case .absent(.notInConfiguration):
            return "\(absence(apqn) ?? "not in the host configuration"); no mdev has \(apqn) assigned"
        case .absent(.noQueue):
            return "\(deviceState(apqn)); adapter \(a) and domain \(q) are in the LPAR"
        case .host where bus.queues[apqn]?.driverOverride != nil:
            return "bound to cex4queue (\(deviceState(apqn))); its driver_override decides its next probe, not apmask/aqmask"
        case .host:
            return "apmask bit \(a.value) and aqmask bit \(q.value) are both set: reserved for the host (\(deviceState(apqn))); clear one of them to give it to vfio_ap"
        case .free:
            return "not reserved (apmask bit \(a.value) or aqmask bit \(q.value) is clear) and assigned to no mdev: free to assign (\(deviceState(apqn)))"
        case .unbound:
            let rule = bus.queues[apqn]?.driverOverride.map { "its driver_override \($0)" } ?? "apmask/aqmask"
            let fits = bus.fittingDriver(apqn).map { "give it to \($0.rawValue): bind it there to use it" } ?? "names no queue driver: it stays unbound"
            return "\(deviceState(apqn)) and assigned to no mdev; \(rule) \(fits)"
        case .assigned(let m):
            return "assigned to mdev \(m), which no guest uses (\(deviceState(apqn)))"
        case .inGuest(let m, let g):
            return "in guest \(g)'s CRYCB through mdev \(m)"
        case .overProvisioned(let m):
            return "assigned to mdev \(m), but \(absence(apqn) ?? "not in the host configuration"): over-provisioned, it is plugged when firmware adds it"
        case .filtered(let m, let g):
            return "assigned to mdev \(m) but filtered out of guest \(g)'s CRYCB: \(filterReason(apqn, vfio.mdevs[m]!))"
        }
    }

    /// Why the adapter or the domain of `apqn` is outside the host configuration, nil if both are in it.
    private func absence(_ apqn: APQN) -> String? {
        let a = apqn.apid
        if let ad = firmware.adapters[a] {
            if !ad.configured { return "adapter \(a) is deconfigured (\(a.cardName)/config is 0)" }
        } else {
            return "adapter \(a) is not in the LPAR"
        }
        if !firmware.usageDomains.contains(apqn.apqi) { return "domain \(apqn.apqi) is not a usage domain of the LPAR" }
        return nil
    }

    /// Whether the queue device exists and which driver has it, with the reason when it is missing.
    private func deviceState(_ apqn: APQN) -> String {
        if let d = bus.queues[apqn] {
            return d.driver.map { "queue \(apqn) is bound to \($0.rawValue)" } ?? "queue \(apqn) is bound to no driver (unbound)"
        }
        if let reason = absence(apqn) { return "queue \(apqn) does not exist: \(reason)" }
        let a = apqn.apid, ad = firmware.adapters[a]!
        if !ad.type.hasDevices { return "queue \(apqn) does not exist: adapter \(a) is a \(ad.type), which gets no queue devices" }
        return "queue \(apqn) does not exist: adapter \(a) has queues for domains \(firmware.queueDomains(of: a)) only"
    }

    /// Why an APQN of `m` (in H) is not in its shadow S (SPEC §3 filtering and
    /// hot plug): an adapter is in S only with all its queues in S's domains
    /// bound to vfio_ap, a domain only with all its queues on S's adapters.
    private func filterReason(_ apqn: APQN, _ m: Mdev) -> String {
        let s = m.shadow
        let subject: String, rule: String, missing: [APQN]
        if !s.apm.contains(apqn.apid) {
            let domains = s.aqm.isEmpty ? m.matrix.aqm & firmware.usageDomains : s.aqm
            subject = "adapter \(apqn.apid)"
            rule = "all its queues in the guest's domains"
            missing = domains.map { APQN(apqn.apid, $0) }.filter { !bus.isBoundToVfio($0) }
        } else {
            subject = "domain \(apqn.apqi)"
            rule = "all its queues on the guest's adapters"
            missing = s.apm.map { APQN($0, apqn.apqi) }.filter { !bus.isBoundToVfio($0) }
        }
        guard !missing.isEmpty else {
            return "\(subject) is not in the guest (CRYCB \(s.summary)); it is plugged when one of its queues is bound to vfio_ap again"
        }
        return "\(subject) is passed to a guest only with \(rule) bound to vfio_ap, and "
            + missing.prefix(3).map(deviceState).joined(separator: ", ")
            + (missing.count > 3 ? " (and \(missing.count - 3) more)" : "")
    }
}
