/// The AP bus inside a guest: what the guest's own kernel has discovered.
///
/// It is not the CRYCB: the guest learns of a CRYCB change only when its bus
/// scans again (a write to `/sys/bus/ap/scans`, or the periodic
/// `config_time` timer when the CPU model has `apqci=on`). Until then the
/// guest's `/sys` keeps showing what the last scan found.
///
/// Time is not stored: the bus keeps when its config timer was armed and the
/// scan count then; the periodic scans since are derived from the time of a
/// read (`Guest.busScans(at:)`). Only a scan that finds something new is
/// recorded.
public struct GuestBus: Hashable, Sendable {
    /// `ap_qci_info` as of the last scan: the CRYCB masks; nil without `apqci`
    /// (the guest cannot read its configuration).
    public internal(set) var qci: Matrix?
    /// The card devices the scans created, with the host card's type.
    public internal(set) var cards: [APID: AdapterType] = [:]
    /// The queue devices, ascending.
    public internal(set) var queues: [APQN] = []
    /// `ap_domain_index`: the default domain of the guest's zcrypt, nil when none (sysfs shows -1).
    public internal(set) var domain: APQI?
    /// zcrypt `online` flags the guest turned off; a device a scan creates again is online.
    public internal(set) var offlineCards = Bitmap256<APID>()
    public internal(set) var offlineQueues: Set<APQN> = []
    /// The rescan timer (armed by the last recorded scan, a write to
    /// `config_time`, or the guest's start) and the poll timer.
    public internal(set) var timers = BusTimers()
    /// In a Secure Execution guest with APSB, the SE fields of each queue device.
    public internal(set) var seQueues: [APQN: SEQueueDevice] = [:]

    /// The device names (`card05`, `05.0004`), for the scan events.
    var deviceNames: Set<String> { Set(cards.keys.map(\.cardName) + queues.map(\.description)) }

    /// Equal in what the guest sees, whatever the timers.
    func sameDevices(as other: GuestBus) -> Bool {
        var a = self
        a.timers = other.timers
        return a == other
    }
}

extension APHost {
    /// The guest bus's `ap_max_adapter_id` and `ap_max_domain_id`: the host's
    /// QCI maxima with `apqci`, else the legacy maxima.
    public func guestBusMaxima(_ cpu: CPUModel) -> (adapter: APID, domain: APQI) {
        cpu.apqci ? (firmware.busMaxAdapter, firmware.busMaxDomain) : (.legacyMax, .legacyMax)
    }

    /// The guest, if it has an AP bus (ENOENT without the guest, ENODEV without a bus).
    func guestWithBus(_ name: String) throws(APError) -> Guest {
        let g = try guest(name)
        guard g.hasAPBus else {
            throw APError(.noSuchDevice, "guest \(name) has no AP bus: its CPU model has \(g.cpu.ap ? "appv=off (a Secure Execution guest needs it)" : "ap=off")")
        }
        return g
    }

    /// The guest's AP bus scans at `now` (SPEC §4 "The guest's view"): with
    /// `apqci` it reads its configuration (the CRYCB) with QCI, without it it
    /// probes the ids up to the legacy maxima with TAPQ; without `apft` it
    /// creates no device; an adapter without any queue it can reach gets no
    /// card. Devices no longer found are removed, new ones created and bound
    /// to cex4card/cex4queue. A scan that changes the devices is an event.
    /// The scan re-arms the config timer. In an SE guest a queue device the
    /// scan creates starts its reset, so it is not IDLE at once.
    ///
    /// The corresponding kernel function is `ap_scan_bus` (in the guest).
    public mutating func scanGuestBus(_ name: String, cause: String, at now: Uptime) throws(APError) {
        let g = try guestWithBus(name)
        rescan(g, cause: cause, at: now, number: g.busScans(at: now) + 1)
    }

    /// Records scan `number` of the guest's bus, made at `time`.
    mutating func rescan(_ g: Guest, cause: String, at time: Uptime, number: Int) {
        var bus = scanned(g, at: time)
        bus.timers.recordScan(number, at: time)
        guests[g.name]?.bus = bus
        let before = g.bus.deviceNames, after = bus.deviceNames
        if before != after {
            events.append(.guestBusChanged(guest: g.name, scan: number, added: after.subtracting(before).sorted(),
                                           removed: before.subtracting(after).sorted(), cause: cause))
        }
    }

    /// What a scan of the guest's bus at `time` finds in its CRYCB; the timer as it was.
    func scanned(_ g: Guest, at time: Uptime) -> GuestBus {
        var bus = g.bus
        let view = (try? guestView(g.name)) ?? GuestView()
        bus.qci = g.cpu.apqci ? crycb(of: g.name) : nil
        // A card device needs a type with devices and at least one queue that answers TAPQ (`ap_scan_adapter`).
        let types = Dictionary(uniqueKeysWithValues: view.cards.filter { $0.type.hasDevices }.map { ($0.id, $0.type) })
        bus.queues = view.queues.filter { types[$0.apid] != nil }
        let withQueues = Bitmap256(bus.queues.map(\.apid))
        bus.cards = types.filter { withQueues.contains($0.key) }
        bus.offlineCards = bus.offlineCards & Bitmap256(bus.cards.keys)
        bus.offlineQueues.formIntersection(bus.queues)
        bus.domain = Self.selectDomain(bus)
        let kept = bus.seQueues
        bus.seQueues = [:]
        if g.hasAPSB {
            for q in bus.queues { bus.seQueues[q] = kept[q] ?? SEQueueDevice(idle: time + SecureExecution.resetTime) }
        }
        return bus
    }

    /// Keeps a chosen default domain while it still has a queue, else picks
    /// the domain with the most queues (the lowest on a tie), or none.
    ///
    /// The corresponding kernel function is `ap_select_domain`.
    static func selectDomain(_ bus: GuestBus) -> APQI? {
        var count = [Int](repeating: 0, count: 256)
        for apqn in bus.queues { count[apqn.apqi.value] += 1 }
        if let d = bus.domain, count[d.value] > 0 { return d }
        guard let best = count.max(), best > 0 else { return nil }
        return APQI(exactly: count.firstIndex(of: best)!)
    }

    /// The guests' config timers run from `start` to `end`. A guest with
    /// `apqci` scans at each expiry (and so notices CRYCB changes); without
    /// `apqci` it cannot tell that its configuration changed
    /// (kernel-reference §6), so its timer scans nothing. The first expiry in
    /// (`start`, `end`] whose scan finds something new is recorded; an expiry
    /// that finds nothing changes nothing (its scan is still counted, from
    /// the time). The SE associations the firmware completes in the interval
    /// are logged. Call it with consecutive intervals.
    ///
    /// The corresponding kernel function is `ap_config_timeout` (in the guest).
    public mutating func advanceGuestClocks(from start: Uptime, to end: Uptime) {
        for due in dueGuestScans(from: start, to: end) {
            rescan(due.guest, cause: "config_time", at: due.expiry, number: due.number)
        }
        logCompletedAssociations(from: start, to: end)
    }

    /// The periodic scans due in (`start`, `end`] that would find something
    /// new, one per guest at most: what `advanceGuestClocks` records. Empty
    /// on an idle host, so a clock can ask first and change nothing.
    public func dueGuestScans(from start: Uptime, to end: Uptime) -> [(guest: Guest, expiry: Uptime, number: Int)] {
        guests.keys.sorted().compactMap { name in
            let g = guests[name]!, t = g.bus.timers
            guard g.scansPeriodically, t.periodicScans(until: end) > t.periodicScans(until: start) else { return nil }
            let next = t.nextExpiry(after: start)
            guard !scanned(g, at: next.time).sameDevices(as: g.bus) else { return nil }
            return (g, next.time, next.number)
        }
    }

    /// Sets the guest's `config_time` (5–120 s, else EINVAL) at `now`; the timer is re-armed.
    ///
    /// The corresponding kernel function is `config_time_store` (in the guest).
    public mutating func setGuestConfigTime(_ name: String, seconds: Int64, at now: Uptime) throws(APError) {
        let g = try guestWithBus(name)
        try guests[name]!.bus.timers.storeConfigTime(seconds, scansSoFar: g.busScans(at: now), at: now)
    }

    /// Starts or stops the guest's poll thread; starting does nothing while
    /// the guest uses adapter interrupts (`apqi=on`).
    ///
    /// The corresponding kernel function is `poll_thread_store` (in the guest).
    public mutating func setGuestPollThread(_ name: String, _ on: Bool) throws(APError) {
        let g = try guestWithBus(name)
        guests[name]!.bus.timers.storePollThread(on, interrupts: g.cpu.apqi)
    }

    /// Sets the guest's `poll_timeout`, as the host's (`setPollTimeout`).
    ///
    /// The corresponding kernel function is `poll_timeout_store` (in the guest).
    public mutating func setGuestPollTimeout(_ name: String, _ ns: UInt64) throws(APError) {
        _ = try guestWithBus(name)
        guard rules.acceptsPollTimeout(ns) else { throw pollTimeoutRefused }
        guests[name]!.bus.timers.storePollTimeout(ns)
    }

    /// Sets the guest's `ap_domain`: at most its `ap_max_domain_id` (the
    /// guest's aqmask has every bit set), else EINVAL.
    ///
    /// The corresponding kernel function is `ap_domain_store`.
    public mutating func setGuestAPDomain(_ name: String, _ d: APQI) throws(APError) {
        let g = try guestWithBus(name)
        guard d <= guestBusMaxima(g.cpu).domain else { throw guestAPDomainRefused(g.cpu) }
        guests[name]?.bus.domain = d
    }

    /// The refusal of an `ap_domain` write in the guest, whatever was wrong with it.
    public func guestAPDomainRefused(_ cpu: CPUModel) -> APError {
        APError(.invalidArgument, "ap_domain: write a domain number 0-\(guestBusMaxima(cpu).domain.value)")
    }

    /// Sets the guest's zcrypt `online` of a card (queue nil) or a queue;
    /// ENODEV once a scan removed the device.
    ///
    /// The corresponding kernel functions are `online_store` (zcrypt_card.c
    /// and zcrypt_queue.c, in the guest).
    public mutating func setGuestOnline(_ name: String, card: APID, queue: APQN?, _ on: Bool) throws(APError) {
        let bus = try guestWithBus(name).bus
        guard bus.cards[card] != nil, queue.map({ bus.queues.contains($0) }) ?? true else {
            throw APError(.noSuchDevice, "\(queue?.description ?? card.cardName): the device is gone (a scan removed it)")
        }
        if let queue {
            if on { guests[name]!.bus.offlineQueues.remove(queue) } else { guests[name]!.bus.offlineQueues.insert(queue) }
        } else {
            if on { guests[name]!.bus.offlineCards.remove(card) } else { guests[name]!.bus.offlineCards.insert(card) }
        }
    }
}
