import SystemPackage

/// A QEMU CPU model string reduced to what AP pass-through depends on:
/// `host,ap=on,apqci=on,apft=on,apqi=on` (any feature may be `=off`).
public struct CPUModel: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    /// AP instructions interpreted for the guest; needed for a vfio-ap device.
    public var ap: Bool
    /// PQAP(QCI): the guest can read its AP configuration (ids above 63/15, change notifications).
    public var apqci: Bool
    /// AP facilities test: without it the guest sees no AP device.
    public var apft: Bool
    /// AP queue interruption control.
    public var apqi: Bool

    public static let featureNames = ["ap", "apqci", "apft", "apqi"]

    /// Parses a `-cpu` value against the host's facilities (SPEC §4): the
    /// `host` model starts with every AP feature the host allows, any other
    /// model with none; `feature=on|off` overrides; a feature turned on that
    /// the host lacks is an error naming it.
    public init(parsing text: String, facilities: Facilities) throws(APError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let model = parts.first, !model.isEmpty, !model.contains("="),
              model.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || $0 == 46 || $0 == 45 || $0 == 95 })
        else {
            throw APError(.invalidArgument, "CPU model '\(text)': start with a model name such as host, then feature=on|off")
        }
        let host = model == "host"
        name = model
        let apqiAvailable = facilities.apqi && facilities.aiv
        ap = host
        apqci = host && facilities.qci
        apft = host && facilities.apft
        apqi = host && apqiAvailable
        for item in parts.dropFirst() {
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard kv.count == 2, let on = Self.boolean(kv[1]) else {
                throw APError(.invalidArgument, "CPU model '\(text)': '\(item)' is not feature=on or feature=off")
            }
            switch kv[0] {
            case "ap": ap = on
            case "apqci":
                if on && !facilities.qci { throw Self.missing("apqci", "qci (STFLE bit 12)") }
                apqci = on
            case "apft":
                if on && !facilities.apft { throw Self.missing("apft", "apft (STFLE bit 15)") }
                apft = on
            case "apqi":
                if on && !facilities.apqi { throw Self.missing("apqi", "apqi (STFLE bit 65)") }
                if on && !facilities.aiv { throw Self.missing("apqi", "aiv (adapter-interruption virtualization)") }
                apqi = on
            default:
                throw APError(.invalidArgument,
                              "CPU model '\(text)': unknown feature '\(kv[0])' (the AP features are ap, apqci, apft, apqi)")
            }
        }
    }

    static func missing(_ feature: String, _ facility: String) -> APError {
        APError(.invalidArgument, "CPU feature \(feature) is not available: the host lacks facility \(facility)")
    }

    static func boolean(_ s: String) -> Bool? {
        switch s {
        case "on", "yes", "true": return true
        case "off", "no", "false": return false
        default: return nil
        }
    }

    /// `host,ap=on,apqci=on,apft=on,apqi=off`
    public var description: String {
        func f(_ n: String, _ v: Bool) -> String { "\(n)=\(v ? "on" : "off")" }
        return [name, f("ap", ap), f("apqci", apqci), f("apft", apft), f("apqi", apqi)].joined(separator: ",")
    }
}

/// A `-device vfio-ap,sysfsdev=…,id=…` of a guest.
public struct VfioAPDevice: Hashable, Sendable, Codable {
    /// The QEMU device id (`hostdev0`).
    public var id: String
    /// The mdev's UUID.
    public var mdev: String
    /// The `sysfsdev` path as given.
    public var sysfsdev: String

    public init(id: String, mdev: String, sysfsdev: String) {
        self.id = id
        self.mdev = mdev
        self.sysfsdev = sysfsdev
    }
}

/// A KVM guest (a QEMU process) on the host.
public struct Guest: Hashable, Sendable {
    public let name: String
    public var cpu: CPUModel
    /// At most one vfio-ap device per guest.
    public var device: VfioAPDevice?
    /// The guest kernel's AP bus (what it has scanned).
    public internal(set) var bus = GuestBus()
}

/// What a guest sees of the AP bus (SPEC §4).
public struct GuestView: Hashable, Sendable {
    public var cards: [(id: APID, type: AdapterType)]
    public var usageDomains: Bitmap256
    public var controlDomains: Bitmap256
    public var queues: [APQN]
    /// The CRYCB masks as KVM holds them.
    public var crycb: Matrix

    public init(cards: [(id: APID, type: AdapterType)] = [], usageDomains: Bitmap256 = Bitmap256(),
                controlDomains: Bitmap256 = Bitmap256(), queues: [APQN] = [], crycb: Matrix = Matrix()) {
        self.cards = cards
        self.usageDomains = usageDomains
        self.controlDomains = controlDomains
        self.queues = queues
        self.crycb = crycb
    }

    public static func == (l: GuestView, r: GuestView) -> Bool {
        l.cards.map(\.id) == r.cards.map(\.id) && l.usageDomains == r.usageDomains
            && l.controlDomains == r.controlDomains && l.queues == r.queues && l.crycb == r.crycb
    }
    public func hash(into h: inout Hasher) {
        h.combine(cards.map(\.id)); h.combine(crycb)
    }
}

extension APHost {
    /// Starts a guest (SPEC §4): a unique name, a CPU model the host's
    /// facilities allow, and optionally a vfio-ap device, which needs `ap=on`
    /// and an mdev no other guest uses (EBUSY).
    public mutating func startGuest(_ name: String, cpu: CPUModel, device: VfioAPDevice?) throws(APError) {
        guard !name.isEmpty, name.utf8.count <= 64,
              name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != 47 }) else {
            throw APError(.invalidArgument, "guest name '\(name)': use 1-64 printable characters without spaces or '/'")
        }
        guard guests[name] == nil else { throw APError(.fileExists, "a guest named \(name) is already running") }
        if let d = device { try checkPlug(d, cpu: cpu) }
        guests[name] = Guest(name: name, cpu: cpu, device: nil)
        events.append(.guestChanged(guest: name, running: true))
        events.append(.note("guest \(name): -cpu \(cpu)"))
        if let d = device { attach(name, d) }
        if cpu.ap { rescan(name, cause: "boot") }
    }

    /// Stops a guest: its vfio-ap device is released first.
    public mutating func stopGuest(_ name: String) throws(APError) {
        let g = try guest(name)
        if let d = g.device { release(name, d, cause: "guest \(name) stopped") }
        guests[name] = nil
        events.append(.guestChanged(guest: name, running: false))
    }

    /// Hot plugs a vfio-ap device into a running guest (QMP `device_add`).
    public mutating func plugDevice(_ name: String, _ d: VfioAPDevice) throws(APError) {
        let g = try guest(name)
        guard g.device == nil else {
            throw APError(.resourceBusy, "guest \(name) already has vfio-ap device '\(g.device!.id)': only one vfio-ap device is allowed")
        }
        try checkPlug(d, cpu: g.cpu)
        attach(name, d)
    }

    /// Hot unplugs the guest's vfio-ap device by QEMU id (QMP `device_del`).
    /// ENOENT when the guest has no device with that id.
    @discardableResult
    public mutating func unplugDevice(_ name: String, id: String) throws(APError) -> VfioAPDevice {
        let g = try guest(name)
        guard let d = g.device, d.id == id else {
            throw APError(.noSuchFileOrDirectory, "guest \(name) has no device '\(id)'")
        }
        release(name, d, cause: "device \(id) unplugged")
        return d
    }

    public func guest(_ name: String) throws(APError) -> Guest {
        guard let g = guests[name] else { throw APError(.noSuchFileOrDirectory, "no guest named \(name)") }
        return g
    }

    func checkPlug(_ d: VfioAPDevice, cpu: CPUModel) throws(APError) {
        guard cpu.ap else {
            throw APError(.invalidArgument, "a vfio-ap device needs the CPU feature ap=on (the CPU model has ap=off)")
        }
        guard let m = mdevs[d.mdev] else {
            throw APError(.noSuchFileOrDirectory, "vfio-ap sysfsdev \(d.sysfsdev): no such mdev \(d.mdev)")
        }
        if let other = m.guest {
            throw APError(.resourceBusy, "mdev \(d.mdev) is in use by guest \(other)")
        }
    }

    /// The guest opens the mdev: its CRYCB becomes the shadow
    /// (`ProfileRules.atOpen`: the seed filters the assignment now,
    /// upstream pushes the shadow it keeps).
    ///
    /// The corresponding kernel functions are `vfio_ap_mdev_set_kvm` (seed)
    /// and `vfio_ap_mdev_open_device` (upstream).
    mutating func attach(_ name: String, _ d: VfioAPDevice) {
        let m = mdevs[d.mdev]!
        let s = rules.atOpen(m.matrix, shadow: m.shadow, host: self)
        mdevs[d.mdev]?.shadow = s
        mdevs[d.mdev]?.guest = name
        guests[name]?.device = d
        events.append(.deviceChanged(guest: name, device: d, plugged: true))
        pushCRYCB(name, from: Matrix(), to: s, cause: "device \(d.id) attached")
    }

    /// The guest lets go of the mdev: its CRYCB is cleared, the queues it
    /// had are reset, the mdev is free for another guest. The seed empties
    /// the shadow; upstream keeps it and resets every linked queue.
    ///
    /// The corresponding kernel functions are `vfio_ap_mdev_release` (seed)
    /// and `vfio_ap_mdev_close_device` (upstream).
    mutating func release(_ name: String, _ d: VfioAPDevice, cause: String) {
        let m = mdevs[d.mdev]!
        pushCRYCB(name, from: m.shadow, to: Matrix(), cause: cause)
        mdevs[d.mdev]?.guest = nil
        guests[name]?.device = nil
        if rules.shadowWithoutGuest {
            for apqn in linkedQueues(m) { reset(apqn, cause: "released: \(cause)") }
        } else {
            setShadow(d.mdev, Matrix(), cause: cause)
        }
        events.append(.deviceChanged(guest: name, device: d, plugged: false))
    }

    /// The guest's CRYCB: its mdev's shadow, or empty.
    public func crycb(of name: String) -> Matrix {
        guard let d = guests[name]?.device, let m = mdevs[d.mdev] else { return Matrix() }
        return m.shadow
    }

    /// What the guest sees (SPEC §4): cards S.apm, usage domains S.aqm,
    /// control domains S.adm, queues S.apm × S.aqm with the host's card
    /// types; nothing with `ap=off` or `apft=off`; only ids up to 63/15
    /// with `apqci=off`.
    public func guestView(_ name: String) throws(APError) -> GuestView {
        let g = try guest(name)
        let c = crycb(of: name)
        var view = GuestView(crycb: c)
        guard g.cpu.ap, g.cpu.apft else { return view }
        let apids = g.cpu.apqci ? c.apm : c.apm & .through(63)
        let limit: Bitmap256 = g.cpu.apqci ? .all : .through(15)
        view.usageDomains = c.aqm & limit
        view.controlDomains = c.adm & limit
        view.cards = apids.compactMap { a in adapters[a].map { (a, $0.type) } }
        view.queues = Matrix(apm: apids, aqm: view.usageDomains).apqns
        return view
    }
}
