/// The AP bus inside a guest: what the guest's own kernel has discovered.
///
/// It is not the CRYCB: the guest learns of a CRYCB change only when its bus
/// scans again (a write to `/sys/bus/ap/scans`, or the periodic
/// `config_time` timer when the CPU model has `apqci=on`). Until then the
/// guest's `/sys` keeps showing what the last scan found.
public struct GuestBus: Hashable, Sendable {
    /// `ap_qci_info` as of the last scan: the CRYCB masks; nil without `apqci`
    /// (the guest cannot read its configuration).
    public internal(set) var qci: Matrix?
    /// The card devices the scans created, with the host card's type.
    public internal(set) var cards: [APID: AdapterType] = [:]
    /// The queue devices, ascending.
    public internal(set) var queues: [APQN] = []
    /// `ap_scan_bus_count`.
    public internal(set) var scans = 0
    /// `ap_config_time`, seconds between periodic scans (5–120).
    public internal(set) var configTime = 30
    /// `ap_domain_index`: the default domain of the guest's zcrypt, -1 when none.
    public internal(set) var domain = -1
    /// zcrypt `online` flags the guest turned off; a device a scan creates again is online.
    public internal(set) var offlineCards = Bitmap256()
    public internal(set) var offlineQueues: Set<APQN> = []
    /// Seconds since the config timer was last armed (by a scan or a `config_time` write).
    var sinceTimerArmed = 0.0

    public static let configTimeRange = 5...120

    /// `bindings`: queue devices bound to a driver / all queue devices; every
    /// queue in a guest is bound to cex4queue, so after the first scan it is complete.
    public var bindingsText: String {
        let n = queues.count
        return scans >= 1 ? "\(n)/\(n) (complete)\n" : "\(n)/\(n)\n"
    }
}

extension APHost {
    /// The guest bus's `ap_max_adapter_id` and `ap_max_domain_id`: the host's
    /// QCI maxima with `apqci`, else the legacy 63/15.
    public func guestBusMaxima(_ cpu: CPUModel) -> (adapter: Int, domain: Int) {
        cpu.apqci ? (busMaxAdapter, busMaxDomain) : (63, 15)
    }

    func guestBus(_ name: String) throws(APError) -> GuestBus {
        let g = try guest(name)
        guard g.cpu.ap else {
            throw APError(.noSuchDevice, "guest \(name) has no AP bus: its CPU model has ap=off")
        }
        return g.bus
    }

    /// The guest's AP bus scans (SPEC §4 "The guest's view"): with `apqci` it
    /// reads its configuration (the CRYCB) with QCI, without it it probes
    /// adapters 0–63 and domains 0–15 with TAPQ; without `apft` it creates
    /// no device; an adapter without any queue it can reach gets no card. Devices no longer found are removed, new ones created and
    /// bound to cex4card/cex4queue. A scan that changes the devices is an event.
    ///
    /// The corresponding kernel function is `ap_scan_bus` (in the guest).
    public mutating func scanGuestBus(_ name: String, cause: String) throws(APError) {
        _ = try guestBus(name)
        rescan(name, cause: cause)
    }

    mutating func rescan(_ name: String, cause: String) {
        guard let g = guests[name], let view = try? guestView(name) else { return }
        var bus = g.bus
        let before = Set(bus.cards.keys.map(Self.cardName) + bus.queues.map(\.description))
        bus.qci = g.cpu.apqci ? crycb(of: name) : nil
        // A card device needs a type with devices and at least one queue that answers TAPQ (`ap_scan_adapter`).
        let types = Dictionary(uniqueKeysWithValues: view.cards.filter { $0.type.hasDevices }.map { ($0.id, $0.type) })
        bus.queues = view.queues.filter { types[$0.apid] != nil }
        let withQueues = Bitmap256(bus.queues.map(\.apid))
        bus.cards = types.filter { withQueues.contains($0.key) }
        bus.offlineCards = bus.offlineCards & Bitmap256(bus.cards.keys)
        bus.offlineQueues.formIntersection(bus.queues)
        bus.scans += 1
        bus.sinceTimerArmed = 0
        bus.domain = Self.selectDomain(bus)
        guests[name]!.bus = bus
        let after = Set(bus.cards.keys.map(Self.cardName) + bus.queues.map(\.description))
        if before != after {
            events.append(.guestBusChanged(guest: name, scan: bus.scans, added: after.subtracting(before).sorted(),
                                           removed: before.subtracting(after).sorted(), cause: cause))
        }
    }

    static func cardName(_ id: APID) -> String { "card" + hex(id, width: 2) }

    /// Keeps a chosen default domain while it still has a queue, else picks
    /// the domain with the most queues (the lowest on a tie), or none.
    ///
    /// The corresponding kernel function is `ap_select_domain`.
    static func selectDomain(_ bus: GuestBus) -> Int {
        var count = [Int](repeating: 0, count: 256)
        for apqn in bus.queues { count[apqn.apqi] += 1 }
        if bus.domain >= 0 && count[bus.domain] > 0 { return bus.domain }
        guard let best = count.max(), best > 0 else { return -1 }
        return count.firstIndex(of: best)!
    }

    /// Time passes for every guest's config timer. When it expires, a guest
    /// with `apqci` scans (and so notices CRYCB changes); without `apqci` the
    /// guest cannot tell that its configuration changed (kernel-reference §6),
    /// so the timer is re-armed and nothing else happens.
    ///
    /// The corresponding kernel function is `ap_config_timeout` (in the guest).
    public mutating func advanceGuestClocks(by seconds: Double) {
        for name in guests.keys.sorted() where guests[name]!.cpu.ap {
            guests[name]!.bus.sinceTimerArmed += seconds
            guard guests[name]!.bus.sinceTimerArmed >= Double(guests[name]!.bus.configTime) else { continue }
            if guests[name]!.cpu.apqci {
                rescan(name, cause: "config_time")
            } else {
                guests[name]!.bus.sinceTimerArmed = 0
            }
        }
    }

    /// A write to the guest's `config_time` (`sscanf("%d")`, 5–120 s); the timer is re-armed.
    ///
    /// The corresponding kernel function is `config_time_store`.
    public mutating func storeGuestConfigTime(_ name: String, _ input: [UInt8]) throws(APError) {
        _ = try guestBus(name)
        guard let v = KernelParse.scanInt(input, autoBase: false), GuestBus.configTimeRange.contains(Int(v)) else {
            throw APError(.invalidArgument, "config_time: write a number of seconds from 5 to 120")
        }
        guests[name]!.bus.configTime = Int(v)
        guests[name]!.bus.sinceTimerArmed = 0
    }

    /// A write to the guest's `ap_domain` (`%i`, at most `ap_max_domain_id`;
    /// the guest's aqmask has every bit set).
    ///
    /// The corresponding kernel function is `ap_domain_store`.
    public mutating func storeGuestAPDomain(_ name: String, _ input: [UInt8]) throws(APError) {
        _ = try guestBus(name)
        let max = guestBusMaxima(guests[name]!.cpu).domain
        guard let d = KernelParse.scanInt(input, autoBase: true), d >= 0, d <= max else {
            throw APError(.invalidArgument, "ap_domain: write a domain number 0-\(max)")
        }
        guests[name]!.bus.domain = Int(d)
    }

    /// The guest's zcrypt `online` of a card (nil) or a queue.
    public mutating func storeGuestOnline(_ name: String, card: APID, queue: APQN?, _ input: [UInt8]) throws(APError) {
        let bus = try guestBus(name)
        let device = queue?.description ?? Self.cardName(card)
        guard bus.cards[card] != nil, queue.map({ bus.queues.contains($0) }) ?? true else {
            throw APError(.noSuchDevice, "\(device): the device is gone (a scan removed it)")
        }
        let on = try Self.parseBoolean(input, "\(device)/online")
        if let queue {
            if on { guests[name]!.bus.offlineQueues.remove(queue) } else { guests[name]!.bus.offlineQueues.insert(queue) }
        } else {
            if on { guests[name]!.bus.offlineCards.remove(card) } else { guests[name]!.bus.offlineCards.insert(card) }
        }
    }
}

// The guest bus is part of the state file (HostCoding.swift).
extension GuestBus: Codable {}
