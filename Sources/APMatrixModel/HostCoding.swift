// The host as a Codable document, for the state of `serve --state`.
// Stdlib Codable only: the model stays Foundation-free; the runtime picks
// the encoder. Decoding refuses anything the kernel could never reach: ids
// out of range, devices the firmware does not have, and every state that
// breaks an invariant (`checkInvariants`).

// The documents of the host's objects: one row each in the state database
// (a field added to a record is saved with it, without a schema change),
// and all of them together in the JSON form of the whole host.
extension APHost {
    public struct AdapterRecord: Codable, Sendable, Equatable {
        public var id: APID, type: AdapterType, configured: Bool, domains: Bitmap256<APQI>?
        /// Absent unless the host file overrides the type's TAPQ GR2.
        public var tapqGR2: UInt64?
    }
    /// The LPAR (and vfio_ap's instance limit, fixed at boot).
    public struct FirmwareRecord: Codable, Sendable, Equatable {
        public var apxa: Bool, maxAdapter: Int, maxDomain: Int, facilities: Facilities
        public var usageDomains: Bitmap256<APQI>, controlDomains: Bitmap256<APQI>, maxMdevs: Int, adapters: [AdapterRecord]
        /// The previews the host booted with (fixed at boot, like
        /// `maxMdevs`); absent in files written before previews existed.
        public var previews: [Preview]?

        public init(_ h: APHost) {
            self.init(h.firmware, maxMdevs: h.vfio.maxMdevs)
            previews = h.previews.isEmpty ? nil : h.previews.sorted { $0.rawValue < $1.rawValue }
        }

        init(_ fw: Firmware, maxMdevs: Int) {
            apxa = fw.apxa
            maxAdapter = fw.maxAdapter.value
            maxDomain = fw.maxDomain.value
            facilities = fw.facilities
            usageDomains = fw.usageDomains
            controlDomains = fw.controlDomains
            self.maxMdevs = maxMdevs
            adapters = fw.adapters.keys.sorted().map { id in
                let a = fw.adapters[id]!
                return AdapterRecord(id: id, type: a.type, configured: a.configured, domains: a.domains, tapqGR2: a.tapqGR2)
            }
        }
    }
    public struct CardRecord: Codable, Sendable, Equatable {
        public var id: APID, bound: Bool, online: Bool
        public init(_ id: APID, _ c: Card) { (self.id, bound, online) = (id, c.bound, c.online) }
    }
    public struct QueueDeviceRecord: Codable, Sendable, Equatable {
        public var apqn: APQN, driver: QueueDriver?, online: Bool
        public var driverOverride: String?, initiated: Bool?
        public init(_ apqn: APQN, _ q: QueueDevice) {
            (self.apqn, driver, online, driverOverride, initiated) = (apqn, q.driver, q.online, q.driverOverride, q.initiated)
        }
    }
    /// The bus's own fields; in the whole host's document also its devices.
    public struct BusRecord: Codable, Sendable, Equatable {
        /// `ap_domain`, -1 for none.
        public var apmask: Bitmap256<APID>, aqmask: Bitmap256<APQI>, apDomain: Int, cards: [CardRecord]?, queues: [QueueDeviceRecord]?
        /// Absent in files written before the bus's own attributes existed.
        public var timers: BusTimers?, bindingsCompleteCount: Int?, bindingsRearmed: Bool?, driverOverrideCount: Int?
        public var bindingsFollowMasks: Bool?

        /// The bus's own fields, its devices left out (nil).
        public init(_ bus: APBus) {
            (apmask, aqmask, apDomain) = (bus.apmask, bus.aqmask, bus.apDomain?.value ?? -1)
            (timers, bindingsCompleteCount, bindingsRearmed) = (bus.timers, bus.bindingsCompleteCount, bus.bindingsRearmed)
            (driverOverrideCount, bindingsFollowMasks) = (bus.driverOverrideCount, bus.bindingsFollowMasks)
        }
    }
    public struct HardwareQueueRecord: Codable, Sendable, Equatable {
        public var apqn: APQN, resets: Int, holdsStateOf: String?, heldState: String?
        /// Absent in files written before Secure Execution guests existed.
        public var seBinding: SEBinding?
        enum CodingKeys: String, CodingKey {
            case apqn, resets, holdsStateOf, seBinding
            case heldState = "guestState"
        }
        public init(_ apqn: APQN, _ r: QueueRecord) {
            (self.apqn, resets, holdsStateOf, heldState, seBinding) = (apqn, r.resets, r.holdsStateOf, r.heldState, r.seBinding)
        }
    }
    public struct MdevRecord: Codable, Sendable, Equatable {
        public var uuid: MdevUUID, matrix: Matrix, shadow: Matrix, guest: String?, iommuGroup: Int, serial: Int
        /// Absent while the device is closed, and in files written before migration existed.
        public var migrationState: VfioMigrationState?
        public init(_ m: Mdev) {
            (uuid, matrix, shadow, guest, iommuGroup, serial) = (m.uuid, m.matrix, m.shadow, m.guest, m.iommuGroup, m.serial)
            migrationState = m.migrationState
        }
    }
    public struct GuestRecord: Codable, Sendable, Equatable {
        /// The CPU model as `-cpu` takes it; parsed again against the facilities.
        public var name: String, cpu: String, device: VfioAPDevice?
        /// The guest kernel's AP bus; absent in files written before guest trees existed.
        public var bus: GuestBus?
        /// Absent in files written before config-change notification existed.
        public var pendingConfigChanges: Int?
        /// Absent (false) in files written before Secure Execution guests existed.
        public var secure: Bool?
        /// Absent (running, no migration, no capabilities) in files written before migration existed.
        public var runState: RunState?, migration: GuestMigration?, capabilities: [MigrationCapability]?
        public init(_ g: Guest) {
            (name, cpu, device, bus) = (g.name, g.cpu.description, g.device, g.bus)
            (pendingConfigChanges, secure) = (g.pendingConfigChanges, g.secure)
            runState = g.runState
            migration = g.migration
            capabilities = g.capabilities.sorted { $0.rawValue < $1.rawValue }
        }
    }
    /// vfio_ap's own fields (in the whole host's document, `nextSerial` stands at the top).
    public struct VfioRecord: Codable, Sendable, Equatable {
        public var nextSerial: Int
        public init(_ v: VfioAP) { nextSerial = v.nextSerial }
    }
}

extension APHost: Codable {
    private enum CodingKeys: String, CodingKey {
        case profile, firmware, bus, mdevs, nextSerial, guests, queueRecords
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(profile, forKey: .profile)
        try c.encode(FirmwareRecord(self), forKey: .firmware)
        var b = BusRecord(bus)
        b.cards = bus.cards.keys.sorted().map { CardRecord($0, bus.cards[$0]!) }
        b.queues = bus.queues.keys.sorted().map { QueueDeviceRecord($0, bus.queues[$0]!) }
        try c.encode(b, forKey: .bus)
        try c.encode(vfio.mdevsInOrder.map(MdevRecord.init), forKey: .mdevs)
        try c.encode(vfio.nextSerial, forKey: .nextSerial)
        try c.encode(guests.keys.sorted().map { GuestRecord(guests[$0]!) }, forKey: .guests)
        try c.encode(firmware.records.keys.sorted().map { HardwareQueueRecord($0, firmware.records[$0]!) }, forKey: .queueRecords)
    }

    /// Rebuilds a host: the firmware is checked like a host file, the devices
    /// must be exactly those the firmware gives, and the result must pass
    /// `checkInvariants`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func corrupt(_ key: CodingKeys, _ why: String) -> DecodingError {
            .dataCorruptedError(forKey: key, in: c, debugDescription: why)
        }
        // A restriction keeps domains the LPAR lost since boot (`removeDomain`):
        // the host file rules apply to the part within the LPAR.
        let fw = try c.decode(FirmwareRecord.self, forKey: .firmware)
        let profile = try c.decode(Profile.self, forKey: .profile)
        do throws(HostDescription.Invalid) {
            try HostDescription.checkMaximum(fw.maxAdapter, APID.self, "maxAdapter", apxa: fw.apxa)
            try HostDescription.checkMaximum(fw.maxDomain, APQI.self, "maxDomain", apxa: fw.apxa)
            let d = HostDescription(apxa: fw.apxa, maxAdapter: APID(exactly: fw.maxAdapter), maxDomain: APQI(exactly: fw.maxDomain),
                                    facilities: fw.facilities, usageDomains: fw.usageDomains,
                                    controlDomains: fw.controlDomains, maxMdevs: fw.maxMdevs,
                                    adapters: fw.adapters.map {
                                        AdapterDescription(id: $0.id, type: $0.type, configured: $0.configured,
                                                           domains: $0.domains.map { $0 & fw.usageDomains })
                                    })
            try self.init(d, profile: profile, previews: Set(fw.previews ?? []))
        } catch {
            throw corrupt(.firmware, "\(error)")
        }
        if let p = fw.previews?.first(where: { $0.profile != profile }) {
            throw corrupt(.firmware, "preview \(p.rawValue) is of the \(p.profile.rawValue) profile, not \(profile.rawValue)")
        }
        for a in fw.adapters {
            firmware.adapters[a.id]?.domains = a.domains
            firmware.adapters[a.id]?.tapqGR2 = a.tapqGR2
        }
        // The bus: exactly the devices the firmware has, each with a stored binding.
        let b = try c.decode(BusRecord.self, forKey: .bus)
        let cards = b.cards ?? [], queues = b.queues ?? []
        guard cards.map(\.id) == bus.cards.keys.sorted() else {
            throw corrupt(.bus, "the cards \(cards.map(\.id.value)) are not those of the firmware's adapters \(bus.cards.keys.sorted().map(\.value))")
        }
        guard queues.map(\.apqn) == bus.queues.keys.sorted() else {
            throw corrupt(.bus, "the queue devices are not those the firmware's adapters and usage domains give")
        }
        guard (-1...firmware.busMaxDomain.value).contains(b.apDomain) else {
            throw corrupt(.bus, "apDomain \(b.apDomain) is outside -1...\(firmware.busMaxDomain.value)")
        }
        bus.apmask = b.apmask
        bus.aqmask = b.aqmask
        bus.apDomain = APQI(exactly: b.apDomain)
        for card in cards { bus.cards[card.id] = Card(bound: card.bound, online: card.online) }
        for q in queues {
            bus.queues[q.apqn]?.online = q.online
            bus.queues[q.apqn]?.driverOverride = q.driverOverride
            bus.setDriver(q.apqn, q.driver)
            bus.queues[q.apqn]?.initiated = q.initiated ?? true
        }
        if let t = b.timers { bus.timers = t }
        if let n = b.bindingsCompleteCount { bus.bindingsCompleteCount = n }
        bus.bindingsRearmed = b.bindingsRearmed ?? false
        bus.driverOverrideCount = b.driverOverrideCount ?? 0
        bus.bindingsFollowMasks = b.bindingsFollowMasks ?? true
        guard bus.bindingsCompleteCount >= 0, bus.driverOverrideCount >= 0 else {
            throw corrupt(.bus, "a negative bindings-complete or driver_override count")
        }
        for m in try c.decode([MdevRecord].self, forKey: .mdevs) {
            guard vfio.mdevs[m.uuid] == nil else { throw corrupt(.mdevs, "mdev \(m.uuid) is listed twice") }
            guard (0..<65536).contains(m.iommuGroup) else {
                throw corrupt(.mdevs, "mdev \(m.uuid): iommu group \(m.iommuGroup) is outside 0-65535")
            }
            vfio.mdevs[m.uuid] = Mdev(uuid: m.uuid, shadow: m.shadow, guest: m.guest, migrationState: m.migrationState,
                                      iommuGroup: m.iommuGroup, serial: m.serial)
            vfio.setMatrix(m.uuid, m.matrix)
            vfio.markIOMMUGroup(m.iommuGroup)
        }
        vfio.nextSerial = try c.decode(Int.self, forKey: .nextSerial)
        for g in try c.decode([GuestRecord].self, forKey: .guests) {
            guard guests[g.name] == nil else { throw corrupt(.guests, "guest \(g.name) is listed twice") }
            let cpu: CPUModel
            do throws(APError) { cpu = try CPUModel(parsing: g.cpu, facilities: firmware.facilities) } catch {
                throw corrupt(.guests, "guest \(g.name): \(error.message)")
            }
            guard (g.pendingConfigChanges ?? 0) >= 0 else { throw corrupt(.guests, "guest \(g.name): a negative count of events") }
            guests[g.name] = Guest(name: g.name, cpu: cpu, device: g.device, bus: g.bus ?? GuestBus(), secure: g.secure ?? false,
                                   pendingConfigChanges: g.pendingConfigChanges ?? 0, runState: g.runState ?? .running,
                                   migration: g.migration ?? GuestMigration(), capabilities: Set(g.capabilities ?? []))
        }
        for r in try c.decode([HardwareQueueRecord].self, forKey: .queueRecords) {
            guard r.resets >= 0 else { throw corrupt(.queueRecords, "queue \(r.apqn): negative reset count") }
            if let a = r.seBinding?.association, !(0...SecureExecution.maxAssociationIndex).contains(a.index) {
                throw corrupt(.queueRecords, "queue \(r.apqn): association index \(a.index) is outside 0-65535")
            }
            firmware.records[r.apqn] = QueueRecord(resets: r.resets, holdsStateOf: r.holdsStateOf, heldState: r.heldState,
                                                   seBinding: r.seBinding)
        }
        let broken = checkInvariants()
        guard broken.isEmpty else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "a state the kernel cannot reach: \(broken.prefix(3).map(\.description).joined(separator: "; "))"))
        }
        _ = takeChanges()
    }
}

/// The timers in the state file. A file written before `poll_thread` and
/// `poll_timeout` existed has their defaults; one written before time was
/// derived has no `timerArmed` (its timer restarts at boot).
extension BusTimers: Codable {
    enum CodingKeys: String, CodingKey {
        case configTime, timerArmed, pollThread, pollTimeout
        case scansWhenArmed = "scans"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configTime = try c.decode(Int.self, forKey: .configTime)
        guard Self.configTimeRange.contains(configTime) else {
            throw DecodingError.dataCorruptedError(forKey: .configTime, in: c, debugDescription: "config_time \(configTime) is outside 5-120")
        }
        scansWhenArmed = try c.decode(Int.self, forKey: .scansWhenArmed)
        guard scansWhenArmed >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .scansWhenArmed, in: c, debugDescription: "a negative scan count")
        }
        timerArmed = try c.decodeIfPresent(Uptime.self, forKey: .timerArmed) ?? .boot
        pollThread = try c.decodeIfPresent(Bool.self, forKey: .pollThread) ?? false
        pollTimeout = try c.decodeIfPresent(UInt64.self, forKey: .pollTimeout) ?? 250_000
        guard pollTimeout <= Self.pollTimeoutLimit else {
            throw DecodingError.dataCorruptedError(forKey: .pollTimeout, in: c, debugDescription: "poll_timeout \(pollTimeout) is above 120 s")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configTime, forKey: .configTime)
        try c.encode(scansWhenArmed, forKey: .scansWhenArmed)
        try c.encode(timerArmed, forKey: .timerArmed)
        try c.encode(pollThread, forKey: .pollThread)
        try c.encode(pollTimeout, forKey: .pollTimeout)
    }
}

/// The guest bus in the state file: its own fields and, beside them in the
/// same object, its timers (`scans` is the count when the timer was armed;
/// files written before time was derived also have a `sinceTimerArmed`
/// that is ignored). A bus of an SE guest has `seQueues`, one per queue device.
extension GuestBus: Codable {
    private enum CodingKeys: String, CodingKey {
        case qci, cards, queues, domain, offlineCards, offlineQueues, seQueues
    }

    /// One queue device's SE fields in the state file.
    private struct SEQueueRecord: Codable {
        var apqn: APQN, associationIndex: Int?, idle: Uptime
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        qci = try c.decodeIfPresent(Matrix.self, forKey: .qci)
        cards = try c.decode([APID: AdapterType].self, forKey: .cards)
        queues = try c.decode([APQN].self, forKey: .queues)
        let d = try c.decode(Int.self, forKey: .domain)
        guard d == -1 || APQI(exactly: d) != nil else {
            throw DecodingError.dataCorruptedError(forKey: .domain, in: c, debugDescription: "domain \(d) is outside -1...255")
        }
        domain = APQI(exactly: d)
        offlineCards = try c.decode(Bitmap256<APID>.self, forKey: .offlineCards)
        offlineQueues = try c.decode(Set<APQN>.self, forKey: .offlineQueues)
        timers = try BusTimers(from: decoder)
        for r in try c.decodeIfPresent([SEQueueRecord].self, forKey: .seQueues) ?? [] {
            guard queues.contains(r.apqn), r.associationIndex.map({ (0...SecureExecution.maxAssociationIndex).contains($0) }) ?? true else {
                throw DecodingError.dataCorruptedError(forKey: .seQueues, in: c,
                                                       debugDescription: "queue \(r.apqn): no such queue device, or an association index outside 0-65535")
            }
            seQueues[r.apqn] = SEQueueDevice(associationIndex: r.associationIndex, idle: r.idle)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(qci, forKey: .qci)
        try c.encode(cards, forKey: .cards)
        try c.encode(queues, forKey: .queues)
        try c.encode(domain?.value ?? -1, forKey: .domain)
        try c.encode(offlineCards, forKey: .offlineCards)
        try c.encode(offlineQueues.sorted(), forKey: .offlineQueues)
        try timers.encode(to: encoder)
        if !seQueues.isEmpty {
            try c.encode(seQueues.keys.sorted().map { SEQueueRecord(apqn: $0, associationIndex: seQueues[$0]!.associationIndex,
                                                                    idle: seQueues[$0]!.idle) }, forKey: .seQueues)
        }
    }
}
