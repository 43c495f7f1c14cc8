// Secure Execution (SE) guests with AP pass-through (docs/secure-execution.md).
//
// Two places hold SE state, as on the real machine:
// - the hardware queue (`QueueRecord.seBinding`): which SE guest bound it
//   (BAPQ) and its association (AAPQ). The firmware answers TAPQ from it,
//   and a reset (zeroize) by vfio_ap drops both;
// - the guest kernel's queue device (`GuestBus.seQueues`): the association
//   index it asked for (`assoc_idx`) and when its state machine is idle.
// Time is an input: an association completes `associationTime` after it was
// asked for, a queue's state machine is idle `resetTime` after its reset.

/// Constants of the emulated firmware and guest kernel.
public enum SecureExecution {
    /// From a reset of a guest's queue device (its creation by a scan, an
    /// unbind) until its state machine is IDLE: the state machine waits in
    /// RESET_WAIT for one low-frequency poll (`poll_low_timeout`, 40 ms).
    public static let resetTime = 0.04
    /// From an association request (AAPQ) until the firmware completes it.
    /// Real firmware is asynchronous; chzcrypt polls every 0.5 s for 30 s.
    public static let associationTime = 1.0
    /// The highest association index (`ASSOC_IDX_INVALID` is 0x10000).
    public static let maxAssociationIndex = 0xffff
    /// The BS bits of a queue's `ap_functions` (TAPQ GR2 with the T bit).
    public static let bindStateMask: UInt32 = 0x0000_c000
}

/// The bind state of a queue in an SE guest: the BS bits that TAPQ reports
/// (`AP_BS_Q_*` in ap.h), named as lszcrypt's SESTAT column names them.
public enum BindState: UInt32, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// `AP_BS_Q_USABLE`: bound (and associated, for EP11): usable for secure keys.
    case usable = 0
    /// `AP_BS_Q_USABLE_NO_SECURE_KEY`: bound, not (yet) associated.
    case bound = 1
    /// `AP_BS_Q_AVAIL_FOR_BINDING`: not bound, can be bound.
    case unbound = 2
    /// `AP_BS_Q_UNUSABLE`: not available to this SE guest (a CCA queue).
    case illicit = 3

    public var description: String {
        switch self {
        case .usable: return "usable"
        case .bound: return "bound"
        case .unbound: return "unbound"
        case .illicit: return "illicit"
        }
    }
}

/// A queue's SE state as its guest's TAPQ sees it at some moment.
public struct SEState: Hashable, Sendable, CustomStringConvertible {
    public var bind: BindState
    /// The association index: pending while `bind` is `.bound`, done when `.usable`.
    public var association: Int?

    public init(_ bind: BindState, association: Int? = nil) {
        self.bind = bind
        self.association = association
    }

    /// `bound (association 7 pending)`, `usable (associated 7)`, `unbound`.
    public var description: String {
        guard let a = association else { return bind.description }
        return bind == .usable ? "usable (associated \(a))" : "\(bind) (association \(a) pending)"
    }
}

/// An association of a bound queue with a Secure Execution secret (AAPQ).
public struct SEAssociation: Hashable, Sendable, Codable {
    /// The secret's index, 0-0xffff.
    public var index: Int
    /// When the firmware completes it: the request's time plus `SecureExecution.associationTime`.
    public var completes: Uptime

    public init(index: Int, completes: Uptime) {
        self.index = index
        self.completes = completes
    }
}

/// A hardware queue bound to an SE guest (BAPQ) and its association.
public struct SEBinding: Hashable, Sendable, Codable {
    public var guest: String
    public var association: SEAssociation?

    public init(guest: String, association: SEAssociation? = nil) {
        self.guest = guest
        self.association = association
    }
}

/// The guest kernel's SE fields of one of its queue devices (`struct ap_queue`).
public struct SEQueueDevice: Hashable, Sendable {
    /// `assoc_idx`: the index of the last association request, nil for
    /// `ASSOC_IDX_INVALID` (cleared by the device's creation, a bind and an unbind).
    public var associationIndex: Int?
    /// When the state machine is IDLE after its last reset.
    public var idle: Uptime

    public init(associationIndex: Int? = nil, idle: Uptime) {
        self.associationIndex = associationIndex
        self.idle = idle
    }
}

/// A change of a queue's SE state, for the event log.
public enum SEChange: Hashable, Sendable, CustomStringConvertible {
    case bound
    case unbound
    case associationRequested(index: Int)
    case associated(index: Int)
    /// A reset (zeroize) dropped the binding and the association, if any.
    case lost(association: Int?)

    public var description: String {
        switch self {
        case .bound: return "bound"
        case .unbound: return "unbound"
        case .associationRequested(let i): return "association with index \(i) requested"
        case .associated(let i): return "associated with index \(i)"
        case .lost(let a): return "binding" + (a.map { " and association \($0)" } ?? "") + " lost"
        }
    }

    /// The change's name in the state file and the API.
    public var name: String {
        switch self {
        case .bound: return "bound"
        case .unbound: return "unbound"
        case .associationRequested: return "association-requested"
        case .associated: return "associated"
        case .lost: return "lost"
        }
    }

    /// The association index the change names, if any.
    public var index: Int? {
        switch self {
        case .bound, .unbound: return nil
        case .associationRequested(let i), .associated(let i): return i
        case .lost(let a): return a
        }
    }

    /// The change of `name`, with its `index` where it takes one.
    public init?(name: String, index: Int?) {
        switch (name, index) {
        case ("bound", nil): self = .bound
        case ("unbound", nil): self = .unbound
        case ("association-requested", let i?): self = .associationRequested(index: i)
        case ("associated", let i?): self = .associated(index: i)
        case ("lost", let a): self = .lost(association: a)
        default: return nil
        }
    }
}

extension AdapterType {
    /// Whether an SE guest can bind the queues of this type (`ap_q_supports_bind`):
    /// EP11 and accelerator. A CCA queue is illicit in an SE guest (Linux 6.12+).
    public var supportsSEBind: Bool { mode != .cca }
    /// Whether an SE guest associates the queues of this type (`ap_q_supports_assoc`): EP11.
    public var supportsSEAssociation: Bool { mode == .ep11 }
}

extension APHost {
    /// What TAPQ with the T bit gives guest `g` for `apqn` at `now`: nil when
    /// the queue is not in the guest's configuration (response code 0x01,
    /// GR2 stays zero); a guest without APSB sees BS 0.
    ///
    /// The corresponding kernel function is `ap_test_queue` (in the guest).
    public func seState(_ g: Guest, _ apqn: APQN, at now: Uptime) -> SEState? {
        guard crycb(of: g.name).contains(apqn), let type = firmware.adapters[apqn.apid]?.type else { return nil }
        guard g.hasAPSB else { return SEState(.usable) }
        guard type.supportsSEBind else { return SEState(.illicit) }
        guard let b = firmware.records[apqn]?.seBinding, b.guest == g.name else { return SEState(.unbound) }
        guard let a = b.association else { return SEState(type.supportsSEAssociation ? .bound : .usable) }
        return SEState(now < a.completes ? .bound : .usable, association: a.index)
    }

    /// The queue's `ap_functions` in guest `g` at `now`: the card's functions
    /// and the BS bits, or `0x00000000` once the queue left the guest's
    /// configuration (until the next scan removes the device).
    ///
    /// The corresponding kernel function is `ap_functions_show` (ap_queue.c, in the guest).
    public func guestQueueFunctions(_ g: Guest, _ apqn: APQN, at now: Uptime) -> UInt32 {
        guard let s = seState(g, apqn, at: now), let type = firmware.adapters[apqn.apid]?.type else { return 0 }
        return type.apFunctions(apxa: firmware.apxa) | s.bind.rawValue << 14
    }

    /// `se_bind` of a queue device of guest `name` at `now`: `bound` for BS
    /// 0 and 1, `unbound` for 2 and 3 (an illicit queue too). A queue no
    /// longer in the configuration reads BS 0 (GR2 stays zero): `bound`.
    ///
    /// The corresponding kernel function is `se_bind_show`.
    public func seBindText(_ name: String, _ apqn: APQN, at now: Uptime) throws(APError) -> String {
        let (g, _) = try seQueue(name, apqn, association: false)
        let bs = seState(g, apqn, at: now)?.bind ?? .usable
        return bs == .usable || bs == .bound ? "bound" : "unbound"
    }

    /// `se_associate` of a queue device of guest `name` at `now`: `-` for an
    /// accelerator; BS 0 with the index the kernel asked for: `associated N`,
    /// without one EIO; BS 1 with an index: `association pending`; else `unassociated`.
    ///
    /// The corresponding kernel function is `se_associate_show`.
    public func seAssociateText(_ name: String, _ apqn: APQN, at now: Uptime) throws(APError) -> String {
        let (g, type) = try seQueue(name, apqn, association: false)
        guard type.supportsSEAssociation else { return "-" }
        let index = g.bus.seQueues[apqn]?.associationIndex
        switch seState(g, apqn, at: now)?.bind ?? .usable {
        case .usable:
            guard let index else {
                throw APError(.ioError, "se_associate: queue \(apqn) reports bind state 0 (usable) but the guest kernel asked for no association")
            }
            return "associated \(index)"
        case .bound where index != nil: return "association pending"
        default: return "unassociated"
        }
    }

    /// The queue device of guest `name` that has `se_bind` and
    /// `se_associate`, and its card type: ENODEV without it (a guest without
    /// APSB has neither attribute; a scan may have removed the device);
    /// EINVAL when its card cannot be bound or, with `association`, associated.
    public func seQueue(_ name: String, _ apqn: APQN, association: Bool) throws(APError) -> (Guest, AdapterType) {
        let g = try guest(name)
        guard g.hasAPSB else {
            throw APError(.noSuchDevice, "guest \(name) is not a Secure Execution guest with AP pass-through (no APSB): its queues have no se_bind")
        }
        guard g.bus.queues.contains(apqn), let type = g.bus.cards[apqn.apid] else {
            throw APError(.noSuchDevice, "\(apqn): the device is gone (a scan removed it)")
        }
        guard type.supportsSEBind else {
            throw APError(.invalidArgument, "\(apqn) is a queue of a \(type) (CCA) card: an SE guest cannot bind it")
        }
        if association && !type.supportsSEAssociation {
            throw APError(.invalidArgument, "se_associate: \(apqn) is a queue of a \(type) card: only EP11 queues are associated")
        }
        return (g, type)
    }

    /// The SE state of each queue guest `name` sees at `now` (SPEC §4's view),
    /// for the host's views: empty when it is not an SE guest with APSB.
    public func seStates(_ name: String, at now: Uptime) -> [(apqn: APQN, state: SEState)] {
        guard let g = guests[name], g.hasAPSB, let view = try? guestView(name) else { return [] }
        return view.queues.compactMap { q in seState(g, q, at: now).map { (q, $0) } }
    }
}
