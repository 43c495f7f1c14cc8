import SystemPackage

/// The two AP bus masks.
public enum MaskAxis: String, Sendable, CaseIterable {
    case apmask, aqmask
}

// The AP bus's operations. The bus asks vfio_ap only through its driver
// callbacks (`vfioInUse`, `vfioProbe`, `vfioRemove`), as `ap_bus.c` calls
// `ap_driver->in_use`, `probe` and `remove`.
extension APHost {
    // MARK: apmask / aqmask

    /// Stores a new `apmask` (SPEC §3 "Masks"; kernel-reference §2.3–2.4):
    /// EINVAL while a `driver_override` is active (6.19), even when nothing
    /// would change; a change that newly reserves an APQN assigned to any mdev is refused
    /// (seed: EADDRINUSE; upstream: EBUSY), with vfio_ap's log lines;
    /// otherwise every queue whose binding no longer fits is rebound, in
    /// ascending APQN order, including queues left unbound by `unbind`.
    ///
    /// The corresponding kernel function is `apmask_store`.
    public mutating func setAPMask(_ new: Bitmap256<APID>) throws(APError) {
        try refuseMaskWhileOverridden(.apmask)
        guard new != bus.apmask else { return }
        let reserved = Matrix(apm: new.subtracting(bus.apmask), aqm: rules.inUseScope(of: bus.aqmask))
        try refuseInUse(reserved, .apmask)
        bus.apmask = new
        maskChanged(.apmask, new.hexString)
    }

    /// Stores a new `aqmask`, as `setAPMask` with the axes swapped.
    ///
    /// The corresponding kernel function is `aqmask_store`.
    public mutating func setAQMask(_ new: Bitmap256<APQI>) throws(APError) {
        try refuseMaskWhileOverridden(.aqmask)
        guard new != bus.aqmask else { return }
        let reserved = Matrix(apm: rules.inUseScope(of: bus.apmask), aqm: new.subtracting(bus.aqmask))
        try refuseInUse(reserved, .aqmask)
        bus.aqmask = new
        maskChanged(.aqmask, new.hexString)
    }

    /// Asks the driver whether APQNs about to be reserved for the host are in
    /// use (`ap_apqn_in_matrix_owned_by_def_drv`).
    mutating func refuseInUse(_ reserved: Matrix, _ axis: MaskAxis) throws(APError) {
        let conflicts = vfioInUse(reserved)
        guard let first = conflicts.first else { return }
        let count = conflicts.reduce(0) { $0 + $1.apqns.count }
        throw APError(rules.maskInUseErrno,
                      "\(axis.rawValue): the change would reserve for the host queue \(first.apqns[0]) assigned to mdev \(first.mdev.uuid)\(count > 1 ? " (and \(count - 1) more)" : ""); unassign it first")
    }

    /// After a changed mask: the bindings are revised, then 6.x sends
    /// `APMASK=`/`AQMASK=` with the new mask (and, as the kernel formats it, a newline).
    mutating func maskChanged(_ axis: MaskAxis, _ hex: String) {
        events.append(.note("ap: \(axis.rawValue) set to \(hex)"))
        revise(cause: "\(axis.rawValue) change")
        if rules.sendsMaskChangeUevents {
            events.append(.uevent(Uevent(action: .change, devpath: KernelDevice.apRoot.devpath, subsystem: "ap",
                                         properties: ["\(axis.rawValue.uppercased())=\(hex)\n"])))
        }
    }

    /// Rebinds every queue whose driver does not fit the masks
    /// (`ap_bus_revise_bindings`), ascending; vfio_ap sees each removal and probe.
    mutating func revise(cause: String) {
        var moved: [QueueDriver: [APQN]] = [:]
        for apqn in bus.queues.keys.sorted() {
            let want = bus.fittingDriver(apqn)
            guard let q = bus.queues[apqn], q.driver != want else { continue }
            if q.driver == .vfioAP { vfioRemove(apqn, cause: cause) }
            rebind(apqn, to: want)
            guard let want else { continue }
            moved[want, default: []].append(apqn)
            if want == .vfioAP { vfioProbe(apqn, cause: cause) }
        }
        for (driver, list) in moved.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let shown = list.count <= 8 ? list.map(\.description).joined(separator: " ")
                : "\(list.first!) … \(list.last!)"
            events.append(.note("ap: \(list.count) queue(s) bound to \(driver.rawValue) (\(cause)): \(shown)"))
        }
    }

    // MARK: ap_domain

    /// Sets `ap_domain`: at most `ap_max_domain_id` and set in aqmask, else EINVAL.
    ///
    /// The corresponding kernel function is `ap_domain_store`.
    public mutating func setAPDomain(_ d: APQI) throws(APError) {
        guard d <= firmware.busMaxDomain, bus.aqmask.contains(d) else { throw apDomainRefused() }
        bus.apDomain = d
    }

    /// The refusal of an `ap_domain` write, whatever was wrong with it.
    public func apDomainRefused() -> APError {
        APError(.invalidArgument, "ap_domain: write a domain number 0-\(firmware.busMaxDomain.value) that is set in aqmask")
    }

    // MARK: bind / unbind

    /// Unbinds a card from `cex4card` (SPEC §1): ENODEV unless it is bound.
    ///
    /// The corresponding kernel function is `unbind_store` (drivers/base/bus.c).
    public mutating func unbindCard(_ id: APID) throws(APError) {
        guard bus.cards[id]?.bound == true else { throw Self.notBound(id.cardName, "cex4card") }
        setCardBound(id, false)
        events.append(.note("ap: \(id.cardName) unbound from cex4card"))
    }

    /// Unbinds a queue from `driver` (SPEC §1): ENODEV unless the device
    /// exists and is bound to it. A queue in a guest's CRYCB that leaves
    /// vfio_ap unplugs its adapter (vfio_ap's remove callback).
    ///
    /// The corresponding kernel function is `unbind_store` (drivers/base/bus.c).
    public mutating func unbindQueue(_ apqn: APQN, from driver: QueueDriver) throws(APError) {
        guard bus.queues[apqn]?.driver == driver else { throw Self.notBound(apqn.description, driver.rawValue) }
        if driver == .vfioAP { vfioRemove(apqn, cause: "queue \(apqn) unbound from vfio_ap") }
        rebind(apqn, to: nil)
        events.append(.note("ap: queue \(apqn) unbound from \(driver.rawValue)"))
    }

    /// The refusal of an `unbind` of a device that is not bound to that driver.
    public static func notBound(_ name: String, _ driver: String) -> APError {
        APError(.noSuchDevice, driver == "cex4card" ? "unbind: no card '\(name)' is bound to cex4card"
                                                    : "unbind: no queue '\(name)' is bound to \(driver)")
    }

    /// Binds an unbound card to `cex4card`: ENODEV for a name that is no
    /// card, and for a bound card ENODEV (seed) or EBUSY (upstream), as for queues.
    ///
    /// The corresponding kernel function is `bind_store` (drivers/base/bus.c).
    public mutating func bindCard(_ id: APID) throws(APError) {
        guard let card = bus.cards[id] else { throw Self.noCardDevice(id.cardName) }
        guard !card.bound else {
            throw APError(rules.bindBoundErrno, "bind: \(id.cardName) is already bound to cex4card; unbind it first")
        }
        setCardBound(id, true)
        bus.bindingsRearmed = true
        events.append(.note("ap: \(id.cardName) bound to cex4card"))
    }

    /// The refusal of a `cex4card` `bind` of a name that is no card device.
    public static func noCardDevice(_ name: String) -> APError {
        APError(.noSuchDevice, "bind: no card device '\(name)'")
    }

    /// Binds a queue to `driver` (SPEC §1): the device must exist (ENODEV)
    /// and be bound to no driver (seed ENODEV, upstream EBUSY), and the masks
    /// must allow the driver (vfio_ap only unreserved queues, cex4queue only
    /// reserved ones), else ENODEV. A queue bound to vfio_ap is probed like
    /// after a mask change.
    ///
    /// The corresponding kernel function is `bind_store` (drivers/base/bus.c).
    public mutating func bindQueue(_ apqn: APQN, to driver: QueueDriver) throws(APError) {
        guard let q = bus.queues[apqn] else { throw Self.noQueueDevice(apqn.description) }
        if let current = q.driver {
            throw APError(rules.bindBoundErrno, "bind: queue \(apqn) is already bound to \(current.rawValue); unbind it first")
        }
        guard bus.fittingDriver(apqn) == driver else {
            let why = q.driverOverride.map { "its driver_override is \($0)" }
                ?? "apmask/aqmask give it to \(bus.isReserved(apqn) ? "cex4queue" : "vfio_ap")"
            throw APError(.noSuchDevice, "bind: queue \(apqn) cannot be bound to \(driver.rawValue): \(why)")
        }
        rebind(apqn, to: driver)
        events.append(.note("ap: queue \(apqn) bound to \(driver.rawValue)"))
        if driver == .vfioAP { vfioProbe(apqn, cause: "queue \(apqn) bound to vfio_ap") }
    }

    /// The refusal of a queue `bind` naming no queue device.
    public static func noQueueDevice(_ name: String) -> APError {
        APError(.noSuchDevice, "bind: no queue device '\(name)'")
    }

    // MARK: zcrypt's online flags

    /// Sets a card's zcrypt `online`; online on a deconfigured card is ENODEV.
    /// zcrypt forces every queue of the card it drives (those bound to
    /// cex4queue) to the same state. On 6.x the card sends `ONLINE=` (even
    /// unchanged), then each queue whose state changed.
    ///
    /// The corresponding kernel functions are `online_store` (zcrypt_card.c)
    /// and `zcrypt_queue_force_online`.
    public mutating func setCardOnline(_ id: APID, _ on: Bool) throws(APError) {
        if on && firmware.adapters[id]?.configured != true {
            throw APError(.noSuchDevice, "\(id.cardName) is deconfigured: write 1 to its config first")
        }
        bus.cards[id]?.online = on
        sendStateUevent(.card(id), ["ONLINE=\(on ? 1 : 0)"])
        let driven = bus.queues.keys.filter { $0.apid == id && bus.queues[$0]?.driver == .cex4queue }.sorted()
        for apqn in driven where bus.queues[apqn]?.online != on {
            bus.queues[apqn]?.online = on
            sendStateUevent(.queue(apqn), ["ONLINE=\(on ? 1 : 0)"])
        }
    }

    /// Sets a queue's zcrypt `online`; 6.x sends `ONLINE=` (even unchanged).
    ///
    /// The corresponding kernel function is `online_store` (zcrypt_queue.c).
    public mutating func setQueueOnline(_ apqn: APQN, _ on: Bool) {
        bus.queues[apqn]?.online = on
        sendStateUevent(.queue(apqn), ["ONLINE=\(on ? 1 : 0)"])
    }
}
