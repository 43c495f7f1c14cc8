/// Which kernel the host behaves like. Every rule on which the profiles
/// differ is chosen in `ProfileRules.swift`, nowhere else.
public enum Profile: String, Sendable, CaseIterable, Codable {
    /// The v10 dynamic-configuration design (the seed; SPEC §3).
    case seed
    /// Linux 6.16+ as merged, to the 7.0 sources (kernel-reference §4.2–4.5, §9).
    case upstream
}

/// An adapter of the LPAR and its firmware state.
public struct Adapter: Hashable, Sendable {
    public var type: AdapterType
    /// Card `config`: false = deconfigured, out of the host AP configuration.
    public var configured: Bool
    /// The usage domains it has queues for; nil = all of the LPAR's.
    public var domains: Bitmap256?
}

/// A card device (`devices/ap/cardXX`): exists for every adapter of type 10–14 in the LPAR.
public struct Card: Hashable, Sendable {
    /// Bound to the default card driver `cex4card` (then `type`/`online` exist).
    public var bound = true
    /// The zcrypt `online` flag.
    public var online = true
}

/// A queue device (`devices/ap/cardXX/XX.YYYY`): exists for every usage
/// domain of a configured adapter of type 10–14.
public struct QueueDevice: Hashable, Sendable {
    /// nil: bound to no driver (after `unbind`).
    public var driver: QueueDriver?
    /// The zcrypt `online` flag (shown while bound to cex4queue).
    public var online = true
}

/// Who may see a queue's contents right now.
public enum QueueOwner: Hashable, Sendable, CustomStringConvertible {
    case none
    /// Bound to the default driver: the host's zcrypt uses it.
    case host
    /// In the CRYCB of this guest.
    case guest(String)

    public var description: String {
        switch self {
        case .none: return "none"
        case .host: return "host"
        case .guest(let g): return "guest \(g)"
        }
    }
}

/// The hardware queue behind an APQN. It outlives its queue device: a queue
/// removed by firmware still has to be zeroized when it leaves a guest.
public struct QueueRecord: Hashable, Sendable {
    /// How many times vfio_ap reset (zeroized) the queue.
    public var resets = 0
    /// The guest whose state the queue holds: set while a guest has it, cleared by a reset.
    public var holdsStateOf: String?
    /// What that guest put into the queue (`putGuestState`), cleared by a reset.
    public var guestState: String?
}

/// A matrix mediated device (`devices/vfio_ap/matrix/<uuid>`).
public struct Mdev: Hashable, Sendable {
    public let uuid: String
    /// M: what is assigned through the sysfs attributes.
    public var matrix = Matrix()
    /// S: the shadow CRYCB, what the guest has.
    public var shadow = Matrix()
    /// The guest using the mdev (it has the VFIO device open).
    public var guest: String?
    /// `iommu_group` number.
    public let iommuGroup: Int
    /// Creation order: mdevs are reported in this order.
    public let serial: Int
}

/// One emulated s390 host: firmware (LPAR), AP bus, vfio_ap, guests.
///
/// A value type with no I/O: every operation is a mutating method that either
/// throws an `APError` and changes nothing, or succeeds and appends `events`.
/// Copying the value gives a private copy to plan with.
public struct APHost: Sendable, Equatable {
    public let profile: Profile
    var rules: ProfileRules { ProfileRules(profile: profile) }

    // MARK: firmware (the LPAR)
    public internal(set) var apxa: Bool
    /// QCI `Na`, `Nd`.
    public internal(set) var qciMaxAdapter: Int
    public internal(set) var qciMaxDomain: Int
    public internal(set) var facilities: Facilities
    public internal(set) var adapters: [APID: Adapter] = [:]
    /// H.aqm: the LPAR's usage domains.
    public internal(set) var usageDomains: Bitmap256
    /// H.adm: the LPAR's control domains.
    public internal(set) var controlDomains: Bitmap256
    public internal(set) var maxMdevs: Int

    // MARK: AP bus
    public internal(set) var apmask: Bitmap256
    public internal(set) var aqmask: Bitmap256
    /// `ap_domain`: the default domain of zcrypt, -1 when none.
    public internal(set) var apDomain: Int
    public internal(set) var cards: [APID: Card] = [:]
    public internal(set) var queues: [APQN: QueueDevice] = [:]
    /// Per APID, the APQIs whose queue device is bound to vfio_ap.
    var vfioBound = [Bitmap256](repeating: Bitmap256(), count: 256)
    public internal(set) var records: [APQN: QueueRecord] = [:]

    // MARK: vfio_ap
    public internal(set) var mdevs: [String: Mdev] = [:]
    var nextSerial = 0
    /// Per APID, the APQIs assigned to some mdev. Exact, because no APQN is
    /// assigned twice; it makes the sharing check a few word operations
    /// whatever the number of mdevs.
    var assignedDomains = [Bitmap256](repeating: Bitmap256(), count: 256)
    /// The IOMMU group numbers in use, one bit each.
    var iommuGroupsInUse: [UInt64] = []

    // MARK: guests
    public internal(set) var guests: [String: Guest] = [:]

    /// Events of the operations since the last `takeEvents()`.
    public internal(set) var events: [Event] = []

    public init(_ d: HostDescription, profile: Profile = .seed) throws(HostDescription.Invalid) {
        try d.validate()
        self.profile = profile
        apxa = d.apxa
        qciMaxAdapter = d.maxAdapter
        qciMaxDomain = d.maxDomain
        facilities = d.facilities
        usageDomains = d.usageDomains
        controlDomains = d.controlDomains
        maxMdevs = d.maxMdevs
        apmask = d.apmask
        aqmask = d.aqmask
        apDomain = -1
        for a in d.adapters {
            adapters[a.id] = Adapter(type: a.type, configured: a.configured, domains: a.domains)
        }
        syncDevices()
        apDomain = (usageDomains & aqmask).first ?? -1
        events.removeAll()
    }

    /// Hands the events over to the caller and forgets them.
    public mutating func takeEvents() -> [Event] {
        defer { events.removeAll() }
        return events
    }

    // MARK: derived views

    /// `ap_max_adapter_id`: Na with apxa (when non-zero), else 63.
    public var busMaxAdapter: Int { apxa && qciMaxAdapter != 0 ? qciMaxAdapter : 63 }
    /// `ap_max_domain_id`: Nd with apxa (when non-zero), else 15.
    public var busMaxDomain: Int { apxa && qciMaxDomain != 0 ? qciMaxDomain : 15 }
    /// vfio_ap's `apm_max`: Na with apxa, else 63.
    public var mdevMaxAPID: Int { apxa ? qciMaxAdapter : 63 }
    /// vfio_ap's `aqm_max` and `adm_max`: Nd with apxa, else 15.
    public var mdevMaxAPQI: Int { apxa ? qciMaxDomain : 15 }

    /// H: the host AP configuration (QCI APM/AQM/ADM). Configured adapters
    /// count, whatever their type.
    public var hostConfiguration: Matrix {
        var apm = Bitmap256()
        for (id, a) in adapters where a.configured { apm.insert(id) }
        return Matrix(apm: apm, aqm: usageDomains, adm: controlDomains)
    }

    /// reserved(a,q): apmask bit a and aqmask bit q, so only the default driver may have it.
    public func isReserved(_ apqn: APQN) -> Bool {
        apmask.contains(apqn.apid) && aqmask.contains(apqn.apqi)
    }

    /// bound(a,q): the queue device exists and is bound to vfio_ap.
    public func isBoundToVfio(_ a: APID, _ q: APQI) -> Bool { vfioBound[a].contains(q) }

    /// The APQIs of adapter `a` whose queues are bound to vfio_ap.
    public func vfioBoundDomains(of a: APID) -> Bitmap256 { vfioBound[a] }

    /// The usage domains adapter `a` has queue devices for, if configured.
    public func queueDomains(of a: APID) -> Bitmap256 {
        guard let ad = adapters[a], ad.configured, ad.type.hasDevices else { return Bitmap256() }
        return usageDomains & (ad.domains ?? .all)
    }

    /// mdevs in creation order.
    public var mdevsInOrder: [Mdev] { mdevs.values.sorted { $0.serial < $1.serial } }

    /// The mdev that has `apqn` assigned, if any.
    public func owner(of apqn: APQN) -> Mdev? {
        guard assignedDomains[apqn.apid].contains(apqn.apqi) else { return nil }
        return mdevs.values.first { $0.matrix.contains(apqn) }
    }

    /// Who may see the queue's contents now (SPEC §5).
    public func currentOwner(of apqn: APQN) -> QueueOwner {
        if let m = owner(of: apqn), let g = m.guest, m.shadow.contains(apqn) { return .guest(g) }
        if queues[apqn]?.driver == .cex4queue { return .host }
        return .none
    }

    /// `available_instances`.
    public var availableInstances: Int { maxMdevs - mdevs.count }

    // MARK: device bookkeeping

    /// Sets a queue device's driver and keeps `vfioBound` in step.
    mutating func setDriver(_ apqn: APQN, _ driver: QueueDriver?) {
        queues[apqn]?.driver = driver
        if driver == .vfioAP { vfioBound[apqn.apid].insert(apqn.apqi) } else { vfioBound[apqn.apid].remove(apqn.apqi) }
    }

    /// The driver whose masks fit the queue (`ap_device_probe`).
    func fittingDriver(_ apqn: APQN) -> QueueDriver { isReserved(apqn) ? .cex4queue : .vfioAP }

    /// Brings card and queue devices in line with the LPAR (the AP bus scan):
    /// removes devices that no longer exist, creates and binds new ones.
    /// Returns the queues newly bound to vfio_ap, ascending.
    @discardableResult
    mutating func syncDevices() -> [APQN] {
        for id in cards.keys where !(adapters[id]?.type.hasDevices ?? false) {
            cards[id] = nil
            events.append(.note("ap: card\(hex(id, width: 2)) removed"))
        }
        for (id, a) in adapters.sorted(by: { $0.key < $1.key }) where a.type.hasDevices && cards[id] == nil {
            cards[id] = Card()
        }
        var removed: [APQN] = []
        for (apqn, _) in queues where !queueDomains(of: apqn.apid).contains(apqn.apqi) { removed.append(apqn) }
        for apqn in removed.sorted() {
            setDriver(apqn, nil)
            queues[apqn] = nil
        }
        if !removed.isEmpty { events.append(.note("ap: \(removed.count) queue device(s) removed")) }
        var bound: [APQN] = []
        var created = 0
        for a in adapters.keys.sorted() {
            for q in queueDomains(of: a) where queues[APQN(a, q)] == nil {
                let apqn = APQN(a, q)
                queues[apqn] = QueueDevice(driver: nil)
                let driver = fittingDriver(apqn)
                setDriver(apqn, driver)
                created += 1
                if driver == .vfioAP { bound.append(apqn) }
            }
        }
        if created > 0 { events.append(.note("ap: \(created) queue device(s) created and bound")) }
        return bound
    }

    /// Resets (zeroizes) a queue: whatever guest state it held is gone.
    mutating func reset(_ apqn: APQN, cause: String) {
        records[apqn, default: QueueRecord()].resets += 1
        records[apqn]?.holdsStateOf = nil
        records[apqn]?.guestState = nil
        events.append(.queueReset(apqn, cause: cause))
    }
}
