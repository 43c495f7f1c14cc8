import SystemPackage

// The host AP bus's own attributes (docs/upstream-ap-bus.md §1, §3): its
// timers, scans, bindings and the 6.19 `driver_override` of queues.
extension APHost {
    // MARK: timers and scans

    /// `ap_interrupts`: adapter interrupts are used when the machine has
    /// AP queue interruption control (facility 65, `ap_interrupts_available`).
    public var apInterrupts: Bool { firmware.facilities.apqi }

    /// How this kernel parses `poll_thread` and `poll_timeout`.
    public var pollParsing: PollParsing { rules.pollParsing }

    /// Whether `driver_override` and `bindings_complete_count` exist (6.19).
    public var hasLinux619BusInterfaces: Bool { rules.hasLinux619BusInterfaces }

    /// `scans` at `now`: the scans recorded and the periodic ones since.
    public func busScans(at now: Uptime) -> Int { bus.timers.scans(at: now) }

    /// Sets `config_time` (5–120 s, else EINVAL) at `now`; the rescan timer is re-armed.
    ///
    /// The corresponding kernel function is `config_time_store`.
    public mutating func setConfigTime(_ seconds: Int64, at now: Uptime) throws(APError) {
        try bus.timers.storeConfigTime(seconds, scansSoFar: busScans(at: now), at: now)
    }

    /// Starts (true) or stops the poll thread; starting does nothing while
    /// adapter interrupts are in use.
    ///
    /// The corresponding kernel function is `poll_thread_store`.
    public mutating func setPollThread(_ on: Bool) {
        bus.timers.storePollThread(on, interrupts: apInterrupts)
    }

    /// Sets `poll_timeout` in nanoseconds: at most 120 s, and at least 1 in
    /// the seed era; EINVAL otherwise.
    ///
    /// The corresponding kernel function is `poll_timeout_store`.
    public mutating func setPollTimeout(_ ns: UInt64) throws(APError) {
        guard rules.acceptsPollTimeout(ns) else { throw pollTimeoutRefused }
        bus.timers.storePollTimeout(ns)
    }

    /// The refusal of a `poll_timeout` value.
    public var pollTimeoutRefused: APError {
        APError(.invalidArgument, "poll_timeout: write nanoseconds from \(rules.acceptsPollTimeout(0) ? 0 : 1) to \(BusTimers.pollTimeoutLimit) (120 s)")
    }

    /// Rebuilding a host from what sysfs shows (the tools' `PlanHost`, `apmatrix
    /// capture`): the queues whose `request_count` reads `-` (their last driver
    /// let them go) and the bus's scan count, its timer armed at `now` — the
    /// past no kernel operation can set again. No kernel function: the kernel
    /// only ever gets there by living through that past.
    public mutating func restoreHistory(uninitiated: [APQN], busScans: Int?, at now: Uptime) {
        for apqn in uninitiated where bus.queues[apqn] != nil { bus.queues[apqn]?.initiated = false }
        if let busScans { bus.timers.recordScan(busScans, at: now) }
    }

    /// A write to `scans`: the bus scans now, whatever was written.
    ///
    /// The corresponding kernel functions are `scans_store` and `ap_bus_force_rescan`.
    public mutating func forceRescan(at now: Uptime) {
        scanBus()
        endOfScan(at: now)
    }

    /// `bindings`: `%u/%u`, ` (complete)` once every queue device is bound
    /// (after the first scan, which the host has made at boot).
    ///
    /// The corresponding kernel function is `bindings_show`.
    public var bindingsText: String {
        let b = bus.boundQueues
        return "\(b.bound)/\(b.total)\(b.bound == b.total ? " (complete)" : "")\n"
    }

    /// The host bus's periodic scan due in (`start`, `end`] that would
    /// find something: the bindings-complete check of a re-armed completion
    /// with every queue bound (the devices follow the firmware at once, so
    /// that is all a periodic scan can find). nil on an idle host.
    public func dueHostScan(from start: Uptime, to end: Uptime) -> (expiry: Uptime, number: Int)? {
        guard bus.bindingsRearmed, bus.timers.periodicScans(until: end) > bus.timers.periodicScans(until: start) else { return nil }
        let b = bus.boundQueues
        guard b.bound == b.total else { return nil }
        let next = bus.timers.nextExpiry(after: start)
        return (next.time, next.number)
    }

    /// Lets the host bus's rescan timer run from `start` to `end`: records
    /// the periodic scan `dueHostScan` finds, if any.
    ///
    /// The corresponding kernel function is `ap_scan_bus_wq_callback`.
    public mutating func advanceHostClock(from start: Uptime, to end: Uptime) {
        guard let due = dueHostScan(from: start, to: end) else { return }
        bus.timers.recordScan(due.number, at: due.expiry)
        checkBindingsComplete()
    }

    // MARK: driver_override (6.19)

    /// Sets (a name) or clears (nil) a queue's `driver_override`: only while
    /// apmask and aqmask are both all ones, else EINVAL. It does not rebind:
    /// the next probe of the queue accepts only that driver. The count of
    /// overrides goes up when one is set where none was and down when one
    /// is cleared.
    ///
    /// The corresponding kernel function is `driver_override_store` (ap_queue.c).
    public mutating func setDriverOverride(_ apqn: APQN, _ name: String?) throws(APError) {
        guard rules.hasLinux619BusInterfaces, let q = bus.queues[apqn] else {
            throw APError(.noSuchDevice, "\(apqn)/driver_override: the queue device is gone")
        }
        guard bus.masksAreDefault else {
            throw APError(.invalidArgument, "\(apqn)/driver_override: apmask and aqmask must both be all ones (write 0xff…ff to them) while a driver_override is used")
        }
        bus.queues[apqn]?.driverOverride = name
        if q.driverOverride == nil && name != nil { bus.driverOverrideCount += 1 }
        if q.driverOverride != nil && name == nil { bus.driverOverrideCount -= 1 }
        if name != nil { bus.bindingsFollowMasks = false }
        events.append(.note("ap: queue \(apqn) driver_override \(name.map { "set to \($0)" } ?? "cleared")"))
    }

    /// A mask write while a `driver_override` is active: EINVAL, before the
    /// mask is even parsed (`apmask_store`, `aqmask_store`, 6.19).
    func refuseMaskWhileOverridden(_ axis: MaskAxis) throws(APError) {
        guard bus.driverOverrideCount > 0 else { return }
        throw APError(.invalidArgument, "\(axis.rawValue): a driver_override is active on \(bus.driverOverrideCount) queue(s); clear them (echo > …/driver_override) first")
    }
}

extension APBus {
    /// Whether vfio_ap counts the APQN as the host's (`ap_owned_by_def_drv`):
    /// a queue device with a `driver_override` is the host's while it is
    /// bound to the default driver; any other APQN by the masks.
    func isHostOwned(_ apqn: APQN) -> Bool {
        if let q = queues[apqn], q.driverOverride != nil { return q.driver == .cex4queue }
        return isReserved(apqn)
    }

    /// The first APQN of `m` that vfio_ap counts as the host's
    /// (`ap_apqn_in_matrix_owned_by_def_drv`); the masks alone decide
    /// while no override exists.
    func firstHostOwned(_ m: Matrix) -> APQN? {
        guard driverOverrideCount > 0 else {
            let apids = m.apm & apmask, apqis = m.aqm & aqmask
            return apids.first.flatMap { a in apqis.first.map { APQN(a, $0) } }
        }
        return m.apqns.first(where: isHostOwned)
    }
}
