// The host as a Codable document, for the state file of `serve --state`.
// Stdlib Codable only: the model stays Foundation-free; the emulator picks
// the encoder. Decoding refuses anything the kernel could never reach: ids
// out of range, devices the firmware does not have, and every state that
// breaks an invariant (`checkInvariants`).

/// An id set as an id list (`0-15,71`): readable in the state file.
extension Bitmap256: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try IdList.parse(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// `05.0004`.
extension APQN: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let apqn = APQN(sysfsName: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "'\(text)' is not an APQN such as 05.0004"))
        }
        self = apqn
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// `CEX8C`.
extension AdapterType: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let t = AdapterType(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "'\(text)' is not an adapter type (\(AdapterType.supportedNames.joined(separator: ", ")))"))
        }
        self = t
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Events keep their kind, so a resumed log shows and publishes them as before.
extension Event: Codable {
    enum CodingKeys: String, CodingKey {
        case kind, text, guest, before, after, cause, apqn, device, plugged, running, scan, added, removed
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "kernel": self = .kernel(try c.decode(String.self, forKey: .text))
        case "note": self = .note(try c.decode(String.self, forKey: .text))
        case "crycb":
            self = .crycbChanged(guest: try c.decode(String.self, forKey: .guest),
                                 before: try c.decode(Matrix.self, forKey: .before),
                                 after: try c.decode(Matrix.self, forKey: .after),
                                 cause: try c.decode(String.self, forKey: .cause))
        case "reset":
            self = .queueReset(try c.decode(APQN.self, forKey: .apqn), cause: try c.decode(String.self, forKey: .cause))
        case "device":
            self = .deviceChanged(guest: try c.decode(String.self, forKey: .guest),
                                  device: try c.decode(VfioAPDevice.self, forKey: .device),
                                  plugged: try c.decode(Bool.self, forKey: .plugged))
        case "guest":
            self = .guestChanged(guest: try c.decode(String.self, forKey: .guest),
                                 running: try c.decode(Bool.self, forKey: .running))
        case "bus":
            self = .guestBusChanged(guest: try c.decode(String.self, forKey: .guest),
                                    scan: try c.decode(Int.self, forKey: .scan),
                                    added: try c.decode([String].self, forKey: .added),
                                    removed: try c.decode([String].self, forKey: .removed),
                                    cause: try c.decode(String.self, forKey: .cause))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown event kind '\(other)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .kernel(let text):
            try c.encode("kernel", forKey: .kind)
            try c.encode(text, forKey: .text)
        case .note(let text):
            try c.encode("note", forKey: .kind)
            try c.encode(text, forKey: .text)
        case let .crycbChanged(guest, before, after, cause):
            try c.encode("crycb", forKey: .kind)
            try c.encode(guest, forKey: .guest)
            try c.encode(before, forKey: .before)
            try c.encode(after, forKey: .after)
            try c.encode(cause, forKey: .cause)
        case let .queueReset(apqn, cause):
            try c.encode("reset", forKey: .kind)
            try c.encode(apqn, forKey: .apqn)
            try c.encode(cause, forKey: .cause)
        case let .deviceChanged(guest, device, plugged):
            try c.encode("device", forKey: .kind)
            try c.encode(guest, forKey: .guest)
            try c.encode(device, forKey: .device)
            try c.encode(plugged, forKey: .plugged)
        case let .guestChanged(guest, running):
            try c.encode("guest", forKey: .kind)
            try c.encode(guest, forKey: .guest)
            try c.encode(running, forKey: .running)
        case let .guestBusChanged(guest, scan, added, removed, cause):
            try c.encode("bus", forKey: .kind)
            try c.encode(guest, forKey: .guest)
            try c.encode(scan, forKey: .scan)
            try c.encode(added, forKey: .added)
            try c.encode(removed, forKey: .removed)
            try c.encode(cause, forKey: .cause)
        }
    }
}

extension APHost: Codable {
    private struct AdapterState: Codable {
        var id: APID, type: AdapterType, configured: Bool, domains: Bitmap256?
    }
    private struct Firmware: Codable {
        var apxa: Bool, maxAdapter: Int, maxDomain: Int, facilities: Facilities
        var usageDomains: Bitmap256, controlDomains: Bitmap256, maxMdevs: Int, adapters: [AdapterState]
    }
    private struct CardState: Codable {
        var id: APID, bound: Bool, online: Bool
    }
    private struct QueueState: Codable {
        var apqn: APQN, driver: QueueDriver?, online: Bool
    }
    private struct Bus: Codable {
        var apmask: Bitmap256, aqmask: Bitmap256, apDomain: Int, cards: [CardState], queues: [QueueState]
    }
    private struct RecordState: Codable {
        var apqn: APQN, resets: Int, holdsStateOf: String?, guestState: String?
    }
    private struct MdevState: Codable {
        var uuid: String, matrix: Matrix, shadow: Matrix, guest: String?, iommuGroup: Int, serial: Int
    }
    private struct GuestState: Codable {
        /// The CPU model as `-cpu` takes it; parsed again against the facilities.
        var name: String, cpu: String, device: VfioAPDevice?
        /// The guest kernel's AP bus; absent in files written before guest trees existed.
        var bus: GuestBus?
    }
    private enum CodingKeys: String, CodingKey {
        case profile, firmware, bus, mdevs, nextSerial, guests, queueRecords
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(profile, forKey: .profile)
        try c.encode(Firmware(apxa: apxa, maxAdapter: qciMaxAdapter, maxDomain: qciMaxDomain, facilities: facilities,
                              usageDomains: usageDomains, controlDomains: controlDomains, maxMdevs: maxMdevs,
                              adapters: adapters.keys.sorted().map { id in
                                  let a = adapters[id]!
                                  return AdapterState(id: id, type: a.type, configured: a.configured, domains: a.domains)
                              }), forKey: .firmware)
        try c.encode(Bus(apmask: apmask, aqmask: aqmask, apDomain: apDomain,
                         cards: cards.keys.sorted().map { CardState(id: $0, bound: cards[$0]!.bound, online: cards[$0]!.online) },
                         queues: queues.keys.sorted().map {
                             QueueState(apqn: $0, driver: queues[$0]!.driver, online: queues[$0]!.online)
                         }), forKey: .bus)
        try c.encode(mdevsInOrder.map {
            MdevState(uuid: $0.uuid, matrix: $0.matrix, shadow: $0.shadow, guest: $0.guest,
                      iommuGroup: $0.iommuGroup, serial: $0.serial)
        }, forKey: .mdevs)
        try c.encode(nextSerial, forKey: .nextSerial)
        try c.encode(guests.keys.sorted().map { name in
            let g = guests[name]!
            return GuestState(name: name, cpu: g.cpu.description, device: g.device, bus: g.bus)
        }, forKey: .guests)
        try c.encode(records.keys.sorted().map { apqn in
            let r = records[apqn]!
            return RecordState(apqn: apqn, resets: r.resets, holdsStateOf: r.holdsStateOf, guestState: r.guestState)
        }, forKey: .queueRecords)
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
        let fw = try c.decode(Firmware.self, forKey: .firmware)
        let d = HostDescription(apxa: fw.apxa, maxAdapter: fw.maxAdapter, maxDomain: fw.maxDomain,
                                facilities: fw.facilities, usageDomains: fw.usageDomains,
                                controlDomains: fw.controlDomains, maxMdevs: fw.maxMdevs,
                                adapters: fw.adapters.map {
                                    AdapterDescription(id: $0.id, type: $0.type, configured: $0.configured,
                                                       domains: $0.domains.map { $0 & fw.usageDomains })
                                })
        let profile = try c.decode(Profile.self, forKey: .profile)
        do throws(HostDescription.Invalid) { try self.init(d, profile: profile) } catch {
            throw corrupt(.firmware, "\(error)")
        }
        for a in fw.adapters { adapters[a.id]?.domains = a.domains }
        // The bus: exactly the devices the firmware has, each with a stored binding.
        let bus = try c.decode(Bus.self, forKey: .bus)
        guard bus.cards.map(\.id) == cards.keys.sorted() else {
            throw corrupt(.bus, "the cards \(bus.cards.map(\.id)) are not those of the firmware's adapters \(cards.keys.sorted())")
        }
        guard bus.queues.map(\.apqn) == queues.keys.sorted() else {
            throw corrupt(.bus, "the queue devices are not those the firmware's adapters and usage domains give")
        }
        guard (-1...busMaxDomain).contains(bus.apDomain) else {
            throw corrupt(.bus, "apDomain \(bus.apDomain) is outside -1...\(busMaxDomain)")
        }
        apmask = bus.apmask
        aqmask = bus.aqmask
        apDomain = bus.apDomain
        for card in bus.cards { cards[card.id] = Card(bound: card.bound, online: card.online) }
        for q in bus.queues {
            queues[q.apqn]?.online = q.online
            setDriver(q.apqn, q.driver)
        }
        for m in try c.decode([MdevState].self, forKey: .mdevs) {
            guard KernelParse.canonicalUUID(Array(m.uuid.utf8)) == m.uuid else {
                throw corrupt(.mdevs, "'\(m.uuid)' is not a canonical lowercase mdev UUID")
            }
            guard mdevs[m.uuid] == nil else { throw corrupt(.mdevs, "mdev \(m.uuid) is listed twice") }
            guard (0..<65536).contains(m.iommuGroup) else {
                throw corrupt(.mdevs, "mdev \(m.uuid): iommu group \(m.iommuGroup) is outside 0-65535")
            }
            mdevs[m.uuid] = Mdev(uuid: m.uuid, shadow: m.shadow, guest: m.guest, iommuGroup: m.iommuGroup, serial: m.serial)
            setMatrix(m.uuid, m.matrix)
            markIOMMUGroup(m.iommuGroup)
        }
        nextSerial = try c.decode(Int.self, forKey: .nextSerial)
        for g in try c.decode([GuestState].self, forKey: .guests) {
            guard guests[g.name] == nil else { throw corrupt(.guests, "guest \(g.name) is listed twice") }
            let cpu: CPUModel
            do throws(APError) { cpu = try CPUModel(parsing: g.cpu, facilities: facilities) } catch {
                throw corrupt(.guests, "guest \(g.name): \(error.message)")
            }
            guests[g.name] = Guest(name: g.name, cpu: cpu, device: g.device, bus: g.bus ?? GuestBus())
        }
        for r in try c.decode([RecordState].self, forKey: .queueRecords) {
            guard r.resets >= 0 else { throw corrupt(.queueRecords, "queue \(r.apqn): negative reset count") }
            records[r.apqn] = QueueRecord(resets: r.resets, holdsStateOf: r.holdsStateOf, guestState: r.guestState)
        }
        let broken = checkInvariants()
        guard broken.isEmpty else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "a state the kernel cannot reach: \(broken.prefix(3).map(\.description).joined(separator: "; "))"))
        }
    }
}
