import SystemPackage

/// A `-device vfio-ap,sysfsdev=…,id=…` of a guest.
public struct VfioAPDevice: Hashable, Sendable, Codable {
    /// The QEMU device id (`hostdev0`).
    public var id: String
    /// The mdev.
    public var mdev: MdevUUID
    /// The `sysfsdev` path as given.
    public var sysfsdev: String
    /// `enable-migration` (the series' QEMU; absent: not given, QEMU's `auto`).
    public var enableMigration: OnOffAuto?
    /// `migration-events`: `VFIO_MIGRATION` events (absent: not given, off).
    public var migrationEvents: Bool?

    public init(id: String, mdev: MdevUUID, sysfsdev: String, enableMigration: OnOffAuto? = nil, migrationEvents: Bool? = nil) {
        self.id = id
        self.mdev = mdev
        self.sysfsdev = sysfsdev
        self.enableMigration = enableMigration
        self.migrationEvents = migrationEvents
    }

    /// Whether QEMU announces the device's migration states (`VFIO_MIGRATION`).
    public var announcesMigration: Bool { migrationEvents == true }
}

/// QEMU's `OnOffAuto` property type.
public enum OnOffAuto: String, Sendable, Codable, CaseIterable {
    case on, off, auto
}

/// A KVM guest (a QEMU process) on the host.
public struct Guest: Hashable, Sendable {
    public let name: String
    public internal(set) var cpu: CPUModel
    /// At most one vfio-ap device per guest.
    public internal(set) var device: VfioAPDevice?
    /// The guest kernel's AP bus (what it has scanned).
    public internal(set) var bus = GuestBus()
    /// A Secure Execution guest (`-object s390-pv-guest` with
    /// `-machine confidential-guest-support`, booted from an SE image).
    public internal(set) var secure = false

    /// Whether the guest kernel has an AP bus: the CPU model has `ap`, and a
    /// Secure Execution guest also `appv` (without it the Ultravisor gives
    /// the guest no AP instructions).
    public var hasAPBus: Bool { cpu.ap && (!secure || cpu.appv) }

    /// Whether the guest's AP bus binds its queues (`ap_is_se_guest`): a
    /// Secure Execution guest whose QCI reports the APSB facility, which the
    /// firmware does with `appv`.
    public var hasAPSB: Bool { secure && hasAPBus && cpu.apqci }

    /// `ap_interrupts`: `apqi`, and in a Secure Execution guest also `appvi`.
    public var apInterrupts: Bool { cpu.apqi && (!secure || cpu.appvi) }

    /// AP configuration change events QEMU has queued for the guest and it
    /// has not yet taken (`handleConfigChanges`).
    public internal(set) var pendingConfigChanges = 0
    /// QEMU's run state: `running`, or around a migration `inmigrate`,
    /// `finish-migrate`, `postmigrate` (GuestMigration.swift).
    public internal(set) var runState = RunState.running
    /// The guest's migration, as its QEMU reports it (`query-migrate`).
    public internal(set) var migration = GuestMigration()
    /// The migration capabilities set with `migrate-set-capabilities`.
    public internal(set) var capabilities: Set<MigrationCapability> = []

    /// Whether the guest's bus scans on its own every `config_time`: with
    /// `apqci` it can tell that its configuration changed (kernel-reference §6).
    var scansPeriodically: Bool { hasAPBus && cpu.apqci }

    /// `ap_scan_bus_count` at `now`: the scans recorded, plus the periodic
    /// scans since, which count whether or not they found anything new.
    public func busScans(at now: Uptime) -> Int {
        scansPeriodically ? bus.timers.scans(at: now) : bus.timers.scansWhenArmed
    }

    /// `bindings`: queue devices bound to a driver / all queue devices; every
    /// queue in a guest is bound to cex4queue, so after the first scan it is complete.
    public func bindingsText(at now: Uptime) -> String {
        let n = bus.queues.count
        return busScans(at: now) >= 1 ? "\(n)/\(n) (complete)\n" : "\(n)/\(n)\n"
    }
}

/// What a guest sees of the AP bus (SPEC §4).
public struct GuestView: Hashable, Sendable {
    public var cards: [(id: APID, type: AdapterType)]
    public var usageDomains: Bitmap256<APQI>
    public var controlDomains: Bitmap256<APQI>
    public var queues: [APQN]
    /// The CRYCB masks as KVM holds them.
    public var crycb: Matrix

    public init(cards: [(id: APID, type: AdapterType)] = [], usageDomains: Bitmap256<APQI> = Bitmap256(),
                controlDomains: Bitmap256<APQI> = Bitmap256(), queues: [APQN] = [], crycb: Matrix = Matrix()) {
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
    /// Starts a guest at `now` (SPEC §4): a unique name, a CPU model the
    /// host's facilities allow, and optionally a vfio-ap device, which needs
    /// `ap=on` and an mdev no other guest uses (EBUSY). A `secure` guest
    /// (Secure Execution) needs the host's protected virtualization (EINVAL,
    /// QEMU's `s390_pv_kvm_init` refusal). With an AP bus the guest scans at
    /// boot, which arms its config timer. QEMU's CPU model warnings are logged.
    /// An `incoming` guest (QEMU's `-incoming`) does not boot: it waits in
    /// `inmigrate` for its memory and device state (GuestMigration.swift).
    public mutating func startGuest(_ name: String, cpu: CPUModel, device: VfioAPDevice?, secure: Bool = false,
                                    incoming: Bool = false, at now: Uptime) throws(APError) {
        guard !name.isEmpty, name.utf8.count <= 64,
              name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != 47 }) else {
            throw APError(.invalidArgument, "guest name '\(name)': use 1-64 printable characters without spaces or '/'")
        }
        guard guests[name] == nil else { throw APError(.fileExists, "a guest named \(name) is already running") }
        if secure && !firmware.facilities.pv {
            throw APError(.invalidArgument,
                          "CPU model does not support Protected Virtualization: the host lacks facility pv (the Ultravisor and a host kernel with prot_virt=1), so it cannot run a Secure Execution guest")
        }
        if let d = device { try checkPlug(d, cpu: cpu) }
        if incoming && secure {
            throw APError(.invalidArgument, "a Secure Execution guest cannot be a migration destination: protected VMs are currently not migratable.")
        }
        var g = Guest(name: name, cpu: cpu, device: nil, secure: secure)
        if incoming { (g.runState, g.migration.incoming) = (.inmigrate, true) }
        guests[name] = g
        events.append(.guestChanged(guest: name, running: true))
        events.append(.note("guest \(name): -cpu \(cpu)\(secure ? " (Secure Execution)" : "")"))
        for w in cpu.warnings { events.append(.note("guest \(name): warning: \(w)")) }
        if secure && cpu.ap && !cpu.appv {
            events.append(.note("guest \(name): a Secure Execution guest without appv has no AP instructions: it sees no AP bus"))
        }
        if let d = device { attach(name, d) }
        if guests[name]!.hasAPBus && !incoming { rescan(guests[name]!, cause: "boot", at: now, number: 1) }
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
        if let present = g.device {
            throw APError(.resourceBusy, "guest \(name) already has vfio-ap device '\(present.id)': only one vfio-ap device is allowed")
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
        // Released QEMU's vfio-ap has neither property (docs/vfio-ap-migration-preview.md §5).
        if !rules.deviceMigration, let p = d.enableMigration != nil ? "enable-migration" : d.migrationEvents != nil ? "migration-events" : nil {
            throw APError(.invalidArgument, "Property 'vfio-ap.\(p)' not found (the series' QEMU has it: serve --preview vfio-ap-migration)")
        }
        guard cpu.ap else {
            throw APError(.invalidArgument, "a vfio-ap device needs the CPU feature ap=on (the CPU model has ap=off)")
        }
        guard let m = vfio.mdevs[d.mdev] else {
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
        let m = vfio.mdevs[d.mdev]!
        let s = rules.atOpen(m.matrix, shadow: m.shadow, host: self)
        vfio.mdevs[d.mdev]?.shadow = s
        vfio.mdevs[d.mdev]?.guest = name
        // `vfio_ap_init_migration_data`: a new open starts RUNNING.
        let state: VfioMigrationState? = rules.deviceMigration ? .running : nil
        vfio.mdevs[d.mdev]?.migrationState = state
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
    /// `announce` false: QEMU closed the device without unplugging it (after
    /// a migration), so no `DEVICE_DELETED`.
    mutating func release(_ name: String, _ d: VfioAPDevice, cause: String, announce: Bool = true) {
        let m = vfio.mdevs[d.mdev]!
        pushCRYCB(name, from: m.shadow, to: Matrix(), cause: cause)
        vfio.mdevs[d.mdev]?.guest = nil
        vfio.mdevs[d.mdev]?.migrationState = nil
        guests[name]?.device = nil
        if rules.shadowWithoutGuest {
            for apqn in linkedQueues(m) { reset(apqn, cause: "released: \(cause)") }
        } else {
            setShadow(d.mdev, Matrix(), cause: cause)
        }
        events.append(announce ? .deviceChanged(guest: name, device: d, plugged: false)
                               : .note("guest \(name): vfio-ap device \(d.id) closed (mdev \(d.mdev) released: \(cause))"))
    }

    /// The guest's CRYCB: its mdev's shadow, or empty.
    public func crycb(of name: String) -> Matrix {
        guard let d = guests[name]?.device, let m = vfio.mdevs[d.mdev] else { return Matrix() }
        return m.shadow
    }

    /// What the guest sees (SPEC §4): cards S.apm, usage domains S.aqm,
    /// control domains S.adm, queues S.apm × S.aqm with the host's card
    /// types; nothing without an AP bus (`ap=off`; a Secure Execution guest
    /// without `appv`) or with `apft=off`; only ids up to the legacy maxima
    /// with `apqci=off`.
    public func guestView(_ name: String) throws(APError) -> GuestView {
        let g = try guest(name)
        let c = crycb(of: name)
        var view = GuestView(crycb: c)
        guard g.hasAPBus, g.cpu.apft else { return view }
        let apids = g.cpu.apqci ? c.apm : c.apm & .through(.legacyMax)
        let limit: Bitmap256<APQI> = g.cpu.apqci ? .all : .through(.legacyMax)
        view.usageDomains = c.aqm & limit
        view.controlDomains = c.adm & limit
        view.cards = apids.compactMap { a in firmware.adapters[a].map { (a, $0.type) } }
        view.queues = Matrix(apm: apids, aqm: view.usageDomains).apqns
        return view
    }

    /// The guest puts state into one of its queues (an enqueued request, a
    /// key): the held state, a token that must never be seen by anyone but
    /// this guest. Only a queue the guest sees (its view, SPEC §4) can take
    /// it (ENODEV, as the guest's NQAP to an APQN outside its CRYCB fails);
    /// the text is 1-256 printable ASCII characters (EINVAL). Every path
    /// that takes the queue away resets it, which drops the state (`reset`).
    public mutating func putHeldState(_ name: String, _ apqn: APQN, _ state: String) throws(APError) {
        guard (1...256).contains(state.utf8.count), state.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) else {
            throw APError(.invalidArgument, "guest state: write 1-256 printable ASCII characters")
        }
        let view = try guestView(name)
        guard view.queues.contains(apqn) else {
            throw APError(.noSuchDevice,
                          "guest \(name) cannot reach queue \(apqn): it sees \(view.queues.isEmpty ? "no queues" : "queues \(view.queues.map(\.description).joined(separator: " "))") (CRYCB \(view.crycb.summary))")
        }
        firmware.records[apqn, default: QueueRecord()].holdsStateOf = name
        firmware.records[apqn]?.heldState = state
        events.append(.note("guest \(name): state put into queue \(apqn)"))
    }
}
