import SystemPackage

/// The two AP bus masks.
public enum MaskAxis: String, Sendable, CaseIterable {
    case apmask, aqmask
}

extension APHost {
    // MARK: apmask / aqmask

    /// Writes `apmask` or `aqmask` (SPEC §3 "Masks"; kernel-reference §2.3–2.4).
    ///
    /// Parses both syntaxes; a change that newly reserves an APQN assigned to
    /// any mdev is refused (seed: EADDRINUSE, one log line per such APQN for
    /// every mdev, creation order; upstream: EBUSY, the first mdev); otherwise the
    /// mask is stored and every queue whose binding no longer fits is rebound,
    /// in ascending APQN order, including queues left unbound by `unbind`.
    ///
    /// The corresponding kernel functions are `apmask_store` and `aqmask_store`.
    public mutating func storeMask(_ axis: MaskAxis, _ input: [UInt8]) throws(APError) {
        let old = axis == .apmask ? apmask : aqmask
        let new: Bitmap256
        switch KernelParse.apMask(input, current: old) {
        case .success(let m): new = m
        case .failure(let e):
            throw APError(e, "\(axis.rawValue): not a mask: write 0x and up to 64 hex digits, or +/- terms such as +5,-0x47,+1-16")
        }
        guard new != old else { return }
        let reserved = rules.newlyReserved(new.subtracting(old), axis, apmask: apmask, aqmask: aqmask)
        let conflicts = reserved.apm.contains(where: { assignedDomains[$0].intersects(reserved.aqm) })
            ? rules.reported(self.conflicts(with: reserved, except: nil)) : []
        if let first = conflicts.first {
            for c in conflicts {
                for apqn in c.apqns { events.append(.kernel(rules.maskConflictLine(apqn, owner: c.mdev.uuid))) }
            }
            let count = conflicts.reduce(0) { $0 + $1.apqns.count }
            throw APError(rules.maskInUseErrno,
                          "\(axis.rawValue): the change would reserve for the host queue \(first.apqns[0]) assigned to mdev \(first.mdev.uuid)\(count > 1 ? " (and \(count - 1) more)" : ""); unassign it first")
        }
        if axis == .apmask { apmask = new } else { aqmask = new }
        events.append(.note("ap: \(axis.rawValue) set to \(new.hexString)"))
        revise(cause: "\(axis.rawValue) change")
    }

    /// Rebinds every queue whose driver does not fit the masks
    /// (`ap_bus_revise_bindings`), ascending; vfio_ap sees each removal and probe.
    mutating func revise(cause: String) {
        var moved: [QueueDriver: [APQN]] = [:]
        for apqn in queues.keys.sorted() {
            let want = fittingDriver(apqn)
            guard let q = queues[apqn], q.driver != want else { continue }
            if q.driver == .vfioAP { queueLeftVfio(apqn, cause: cause) }
            setDriver(apqn, want)
            moved[want, default: []].append(apqn)
            if want == .vfioAP { queueProbed(apqn, cause: cause) }
        }
        for (driver, list) in moved.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let shown = list.count <= 8 ? list.map(\.description).joined(separator: " ")
                : "\(list.first!) … \(list.last!)"
            events.append(.note("ap: \(list.count) queue(s) bound to \(driver.rawValue) (\(cause)): \(shown)"))
        }
    }

    // MARK: ap_domain

    /// Writes `ap_domain`: `%i`, at most `ap_max_domain_id`, set in aqmask, else EINVAL.
    ///
    /// The corresponding kernel function is `ap_domain_store`.
    public mutating func storeAPDomain(_ input: [UInt8]) throws(APError) {
        guard let d = KernelParse.scanInt(input, autoBase: true), d >= 0, d <= busMaxDomain,
              aqmask.contains(Int(d)) else {
            throw APError(.invalidArgument, "ap_domain: write a domain number 0-\(busMaxDomain) that is set in aqmask")
        }
        apDomain = Int(d)
    }

    // MARK: bind / unbind

    /// Driver names under `bus/ap/drivers`.
    public static let apDriverNames = ["cex4card", "cex4queue", "vfio_ap"]

    /// Writes a device name to `bus/ap/drivers/<driver>/unbind` (SPEC §1):
    /// ENODEV unless the device exists and is bound to that driver. A queue
    /// in a guest's CRYCB that leaves vfio_ap unplugs its adapter.
    ///
    /// The corresponding kernel function is `unbind_store` (drivers/base/bus.c).
    public mutating func unbind(driver: String, _ input: [UInt8]) throws(APError) {
        let name = KernelParse.deviceName(input)
        if driver == "cex4card" {
            guard let id = cardID(name), cards[id]?.bound == true else {
                throw APError(.noSuchDevice, "unbind: no card '\(name)' is bound to cex4card")
            }
            cards[id]?.bound = false
            events.append(.note("ap: \(name) unbound from cex4card"))
            return
        }
        guard let apqn = APQN(sysfsName: name), let q = queues[apqn], q.driver?.rawValue == driver else {
            throw APError(.noSuchDevice, "unbind: no queue '\(name)' is bound to \(driver)")
        }
        if q.driver == .vfioAP { queueLeftVfio(apqn, cause: "queue \(apqn) unbound from vfio_ap") }
        setDriver(apqn, nil)
        events.append(.note("ap: queue \(apqn) unbound from \(driver)"))
    }

    /// Writes a device name to `bus/ap/drivers/<driver>/bind` (SPEC §1): the
    /// device must exist, be bound to no driver, and the masks must allow the
    /// driver (vfio_ap only unreserved queues, cex4queue only reserved ones),
    /// else ENODEV. A queue bound to vfio_ap is probed like after a mask change.
    ///
    /// The corresponding kernel function is `bind_store` (drivers/base/bus.c).
    public mutating func bind(driver: String, _ input: [UInt8]) throws(APError) {
        let name = KernelParse.deviceName(input)
        if driver == "cex4card" {
            guard let id = cardID(name), cards[id]?.bound == false else {
                throw APError(.noSuchDevice, "bind: '\(name)' is not an unbound card")
            }
            cards[id]?.bound = true
            events.append(.note("ap: \(name) bound to cex4card"))
            return
        }
        guard let apqn = APQN(sysfsName: name), let q = queues[apqn] else {
            throw APError(.noSuchDevice, "bind: no queue device '\(name)'")
        }
        guard q.driver == nil else {
            throw APError(.noSuchDevice, "bind: queue \(apqn) is already bound to \(q.driver!.rawValue)")
        }
        let fits = fittingDriver(apqn)
        guard fits.rawValue == driver else {
            throw APError(.noSuchDevice,
                          "bind: apmask/aqmask give queue \(apqn) to \(fits.rawValue), not \(driver)")
        }
        setDriver(apqn, fits)
        events.append(.note("ap: queue \(apqn) bound to \(driver)"))
        if fits == .vfioAP { queueProbed(apqn, cause: "queue \(apqn) bound to vfio_ap") }
    }

    /// The APID of a card device name (`card05`).
    public func cardID(_ name: String) -> APID? {
        guard name.hasPrefix("card"), name.utf8.count == 6,
              name.dropFirst(4).utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        return Int(name.dropFirst(4), radix: 16)
    }

    // MARK: card and queue attributes

    /// Parses a `0|1` attribute the way the kernel does (`sscanf("%d")`).
    static func parseBoolean(_ input: [UInt8], _ what: String) throws(APError) -> Bool {
        guard let v = KernelParse.scanInt(input, autoBase: false), v == 0 || v == 1 else {
            throw APError(.invalidArgument, "\(what): write 0 or 1")
        }
        return v == 1
    }

    /// Writes a card's `config` (SPEC §1): 0 deconfigures the adapter (it
    /// leaves the host AP configuration, its queue devices go), 1 configures it
    /// again (queues are probed, over-provisioned mdevs pick them up).
    /// Writing the current value changes nothing.
    ///
    /// The corresponding kernel function is `config_store` (ap_card.c).
    public mutating func storeCardConfig(_ id: APID, _ input: [UInt8]) throws(APError) {
        let on = try Self.parseBoolean(input, "card\(hex(id, width: 2))/config")
        guard let a = adapters[id], a.configured != on else { return }
        firmwareChange(cause: "card\(hex(id, width: 2)) config \(on ? 1 : 0)") { host in
            host.adapters[id]?.configured = on
        }
    }

    /// Writes a card's zcrypt `online`: 0 or 1; 1 on a deconfigured card is ENODEV.
    ///
    /// The corresponding kernel function is `online_store` (zcrypt_card.c).
    public mutating func storeCardOnline(_ id: APID, _ input: [UInt8]) throws(APError) {
        let on = try Self.parseBoolean(input, "card\(hex(id, width: 2))/online")
        if on && adapters[id]?.configured != true {
            throw APError(.noSuchDevice, "card\(hex(id, width: 2)) is deconfigured: write 1 to its config first")
        }
        cards[id]?.online = on
    }

    /// Writes a queue's zcrypt `online`: 0 or 1.
    ///
    /// The corresponding kernel function is `online_store` (zcrypt_queue.c).
    public mutating func storeQueueOnline(_ apqn: APQN, _ input: [UInt8]) throws(APError) {
        let on = try Self.parseBoolean(input, "\(apqn)/online")
        queues[apqn]?.online = on
    }

    // MARK: firmware (LPAR) changes

    /// Adds an adapter to the LPAR (a firmware event; it arrives configured).
    /// EEXIST if the LPAR has it, EINVAL for an id above the maximum or a
    /// restriction outside the LPAR's usage domains.
    public mutating func addAdapter(_ id: APID, type: AdapterType, domains: Bitmap256? = nil) throws(APError) {
        guard (0...qciMaxAdapter).contains(id) else {
            throw APError(.invalidArgument, "adapter \(id) is above the LPAR's maximum adapter id \(qciMaxAdapter)")
        }
        guard adapters[id] == nil else { throw APError(.fileExists, "the LPAR already has adapter \(id)") }
        if let d = domains, let bad = d.subtracting(usageDomains).first {
            throw APError(.invalidArgument, "domain \(bad) of the restriction is not a usage domain of the LPAR")
        }
        firmwareChange(cause: "adapter \(hex(id, width: 2)) added to the LPAR") { host in
            host.adapters[id] = Adapter(type: type, configured: true, domains: domains)
        }
    }

    /// Removes an adapter from the LPAR (firmware event). ENOENT if it lacks it.
    public mutating func removeAdapter(_ id: APID) throws(APError) {
        guard adapters[id] != nil else { throw APError(.noSuchFileOrDirectory, "the LPAR has no adapter \(id)") }
        firmwareChange(cause: "adapter \(hex(id, width: 2)) removed from the LPAR") { host in
            host.adapters[id] = nil
        }
    }

    /// Adds a usage domain to the LPAR (firmware event). EEXIST if it has it.
    public mutating func addDomain(_ id: APQI) throws(APError) {
        try addLPARDomain(id, \.usageDomains, "usage domain")
    }

    /// Removes a usage domain from the LPAR (firmware event). ENOENT if it
    /// lacks it. Adapter restrictions keep the domain, so adding it back
    /// brings back exactly the queues they allow.
    public mutating func removeDomain(_ id: APQI) throws(APError) {
        try removeLPARDomain(id, \.usageDomains, "usage domain")
    }

    /// Adds a control domain to the LPAR (firmware event). EEXIST if it has it.
    public mutating func addControlDomain(_ id: APQI) throws(APError) {
        try addLPARDomain(id, \.controlDomains, "control domain")
    }

    /// Removes a control domain from the LPAR (firmware event). ENOENT if it lacks it.
    public mutating func removeControlDomain(_ id: APQI) throws(APError) {
        try removeLPARDomain(id, \.controlDomains, "control domain")
    }

    mutating func addLPARDomain(_ id: APQI, _ set: WritableKeyPath<APHost, Bitmap256>, _ noun: String) throws(APError) {
        guard (0...qciMaxDomain).contains(id) else {
            throw APError(.invalidArgument, "domain \(id) is above the LPAR's maximum domain id \(qciMaxDomain)")
        }
        guard !self[keyPath: set].contains(id) else { throw APError(.fileExists, "the LPAR already has \(noun) \(id)") }
        firmwareChange(cause: "\(noun) \(hex(id, width: 4)) added to the LPAR") { host in host[keyPath: set].insert(id) }
    }

    mutating func removeLPARDomain(_ id: APQI, _ set: WritableKeyPath<APHost, Bitmap256>, _ noun: String) throws(APError) {
        guard self[keyPath: set].contains(id) else {
            throw APError(.noSuchFileOrDirectory, "the LPAR has no \(noun) \(id)")
        }
        firmwareChange(cause: "\(noun) \(hex(id, width: 4)) removed from the LPAR") { host in host[keyPath: set].remove(id) }
    }

    /// Applies a firmware change as a whole (SPEC §3, last hot-plug rule):
    /// the AP bus removes, creates and binds every affected queue device;
    /// then vfio_ap updates the shadow of every mdev that has one
    /// (`ProfileRules.afterFirmware`): removals first, then additions.
    mutating func firmwareChange(cause: String, _ change: (inout APHost) -> Void) {
        let before = hostConfiguration
        change(&self)
        let after = hostConfiguration
        events.append(.note("firmware: \(cause)"))
        syncDevices()
        let delta = HostConfigChange(
            removed: Matrix(apm: before.apm.subtracting(after.apm), aqm: before.aqm.subtracting(after.aqm),
                            adm: before.adm.subtracting(after.adm)),
            added: Matrix(apm: after.apm.subtracting(before.apm), aqm: after.aqm.subtracting(before.aqm),
                          adm: after.adm.subtracting(before.adm)))
        for m in mdevsWithShadow {
            setShadow(m.uuid, rules.afterFirmware(delta, m.matrix, shadow: m.shadow, host: self), cause: cause)
        }
    }
}
