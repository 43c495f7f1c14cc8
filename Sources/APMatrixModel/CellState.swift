/// What one APQN of the 256×256 matrix is right now, from the point of view
/// of an administrator planning pass-through: who has it, and why.
public enum CellState: Hashable, Sendable {
    /// The adapter or the domain is not in the LPAR's configuration, and no mdev has the APQN.
    case notInLPAR
    /// Adapter and domain are in the LPAR, but there is no queue device (a CEX3,
    /// or an adapter whose own domains leave this one out).
    case noDevice
    /// apmask bit and aqmask bit both set: the host's zcrypt has (or may have) it.
    case hostReserved
    /// Not reserved and assigned to no mdev: free to assign.
    case free
    /// Assigned to an mdev no guest uses.
    case assigned(mdev: String)
    /// In the CRYCB of the guest that uses its mdev.
    case inGuest(mdev: String, guest: String)
    /// Assigned to an mdev a guest uses, but filtered out of that guest's CRYCB.
    case filtered(mdev: String, guest: String)
    /// Assigned to an mdev, but its adapter or domain is not in the host
    /// configuration (yet): it is plugged when firmware adds it.
    case overProvisioned(mdev: String)

    /// A stable name for APIs and pages.
    public var name: String {
        switch self {
        case .notInLPAR: return "not-in-lpar"
        case .noDevice: return "no-device"
        case .hostReserved: return "host-reserved"
        case .free: return "free"
        case .assigned: return "assigned"
        case .inGuest: return "in-guest"
        case .filtered: return "filtered"
        case .overProvisioned: return "over-provisioned"
        }
    }

    /// The mdev that has the APQN assigned, if any.
    public var mdev: String? {
        switch self {
        case .assigned(let m), .inGuest(let m, _), .filtered(let m, _), .overProvisioned(let m): return m
        case .notInLPAR, .noDevice, .hostReserved, .free: return nil
        }
    }
}

/// One cell of the matrix with everything needed to understand it.
public struct CellInfo: Hashable, Sendable {
    public let apqn: APQN
    public let state: CellState
    /// Whether the queue device exists (`devices/ap/cardXX/XX.YYYY`).
    public let hasDevice: Bool
    /// The driver the queue device is bound to; nil without a device or when unbound.
    public let driver: QueueDriver?
    /// Who may see the queue's contents now (SPEC §5).
    public let owner: QueueOwner
    /// Why the cell is in its state, in words an administrator can act on.
    public let explanation: String
}

extension APHost {
    /// The state of one APQN (SPEC §3): assignment first (an assigned APQN
    /// outside H is over-provisioned; with a guest it is in S or filtered
    /// out), then the LPAR, the queue device and the masks.
    public func cellState(_ apqn: APQN) -> CellState {
        let h = hostConfiguration
        let inHost = h.apm.contains(apqn.apid) && h.aqm.contains(apqn.apqi)
        if let m = owner(of: apqn) {
            guard inHost else { return .overProvisioned(mdev: m.uuid) }
            guard let g = m.guest else { return .assigned(mdev: m.uuid) }
            return m.shadow.contains(apqn) ? .inGuest(mdev: m.uuid, guest: g) : .filtered(mdev: m.uuid, guest: g)
        }
        guard inHost else { return .notInLPAR }
        guard queues[apqn] != nil else { return .noDevice }
        return isReserved(apqn) ? .hostReserved : .free
    }

    /// The cell with its explanation: the `explain` of one APQN.
    public func cell(_ apqn: APQN) -> CellInfo {
        let state = cellState(apqn)
        let device = queues[apqn]
        return CellInfo(apqn: apqn, state: state, hasDevice: device != nil, driver: device?.driver,
                        owner: currentOwner(of: apqn), explanation: explanation(apqn, state))
    }

    private func explanation(_ apqn: APQN, _ state: CellState) -> String {
        let a = hex(apqn.apid, width: 2), q = hex(apqn.apqi, width: 4)
        switch state {
        case .notInLPAR:
            return "\(absence(apqn) ?? "not in the host configuration"); no mdev has \(apqn) assigned"
        case .noDevice:
            return "\(deviceState(apqn)); adapter \(a) and domain \(q) are in the LPAR"
        case .hostReserved:
            return "apmask bit \(apqn.apid) and aqmask bit \(apqn.apqi) are both set: reserved for the host (\(deviceState(apqn))); clear one of them to give it to vfio_ap"
        case .free:
            return "not reserved (apmask bit \(apqn.apid) or aqmask bit \(apqn.apqi) is clear) and assigned to no mdev: free to assign (\(deviceState(apqn)))"
        case .assigned(let m):
            return "assigned to mdev \(m), which no guest uses (\(deviceState(apqn)))"
        case .inGuest(let m, let g):
            return "in guest \(g)'s CRYCB through mdev \(m)"
        case .overProvisioned(let m):
            return "assigned to mdev \(m), but \(absence(apqn) ?? "not in the host configuration"): over-provisioned, it is plugged when firmware adds it"
        case .filtered(let m, let g):
            return "assigned to mdev \(m) but filtered out of guest \(g)'s CRYCB: \(filterReason(apqn, mdevs[m]!))"
        }
    }

    /// Why the adapter or the domain of `apqn` is outside the host configuration, nil if both are in it.
    private func absence(_ apqn: APQN) -> String? {
        let a = hex(apqn.apid, width: 2)
        if let ad = adapters[apqn.apid] {
            if !ad.configured { return "adapter \(a) is deconfigured (card\(a)/config is 0)" }
        } else {
            return "adapter \(a) is not in the LPAR"
        }
        if !usageDomains.contains(apqn.apqi) { return "domain \(hex(apqn.apqi, width: 4)) is not a usage domain of the LPAR" }
        return nil
    }

    /// Whether the queue device exists and which driver has it, with the reason when it is missing.
    private func deviceState(_ apqn: APQN) -> String {
        if let d = queues[apqn] {
            return d.driver.map { "queue \(apqn) is bound to \($0.rawValue)" } ?? "queue \(apqn) is bound to no driver (unbound)"
        }
        if let reason = absence(apqn) { return "queue \(apqn) does not exist: \(reason)" }
        let ad = adapters[apqn.apid]!
        if !ad.type.hasDevices { return "queue \(apqn) does not exist: adapter \(hex(apqn.apid, width: 2)) is a \(ad.type), which gets no queue devices" }
        return "queue \(apqn) does not exist: adapter \(hex(apqn.apid, width: 2)) has queues for domains \(queueDomains(of: apqn.apid)) only"
    }

    /// Why an APQN of `m` (in H) is not in its shadow S (SPEC §3 filtering and
    /// hot plug): an adapter is in S only with all its queues in S's domains
    /// bound to vfio_ap, a domain only with all its queues on S's adapters.
    private func filterReason(_ apqn: APQN, _ m: Mdev) -> String {
        let s = m.shadow
        let subject: String, rule: String, missing: [APQN]
        if !s.apm.contains(apqn.apid) {
            let domains = s.aqm.isEmpty ? m.matrix.aqm & hostConfiguration.aqm : s.aqm
            subject = "adapter \(hex(apqn.apid, width: 2))"
            rule = "all its queues in the guest's domains"
            missing = domains.filter { !isBoundToVfio(apqn.apid, $0) }.map { APQN(apqn.apid, $0) }
        } else {
            subject = "domain \(hex(apqn.apqi, width: 4))"
            rule = "all its queues on the guest's adapters"
            missing = s.apm.filter { !isBoundToVfio($0, apqn.apqi) }.map { APQN($0, apqn.apqi) }
        }
        guard !missing.isEmpty else {
            return "\(subject) is not in the guest (CRYCB \(s.summary)); it is plugged when one of its queues is bound to vfio_ap again"
        }
        return "\(subject) is passed to a guest only with \(rule) bound to vfio_ap, and "
            + missing.prefix(3).map(deviceState).joined(separator: ", ")
            + (missing.count > 3 ? " (and \(missing.count - 3) more)" : "")
    }
}
