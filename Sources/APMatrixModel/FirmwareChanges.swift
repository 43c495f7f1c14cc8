extension APHost {
    // MARK: firmware (LPAR) changes

    /// Configures (true) or deconfigures (false) an adapter, as a write to its
    /// card's `config` asks the firmware to (SPEC §1): deconfigured, it leaves
    /// the host AP configuration and its queue devices go; configured again,
    /// its queues are probed and over-provisioned mdevs pick them up. The
    /// current value, or an adapter the LPAR lacks, changes nothing. On 6.x
    /// the card sends `CONFIG=` first (even unchanged), before the scan's
    /// events.
    ///
    /// The corresponding kernel function is `config_store` (ap_card.c).
    public mutating func setCardConfig(_ id: APID, configured on: Bool) {
        guard let a = firmware.adapters[id] else { return }
        sendStateUevent(.card(id), ["CONFIG=\(on ? 1 : 0)"])
        guard a.configured != on else { return }
        firmwareChange(cause: "\(id.cardName) config \(on ? 1 : 0)") { fw in fw.adapters[id]?.configured = on }
    }

    /// Adds an adapter to the LPAR (a firmware event; it arrives configured).
    /// EINVAL for an id above the maximum, EEXIST if the LPAR has it, EINVAL
    /// for a restriction outside the LPAR's usage domains.
    public mutating func addAdapter(_ id: APID, type: AdapterType, domains: Bitmap256<APQI>? = nil) throws(APError) {
        guard id <= firmware.maxAdapter else {
            throw APError(.invalidArgument, "adapter \(id.value) is above the LPAR's maximum adapter id \(firmware.maxAdapter.value)")
        }
        guard firmware.adapters[id] == nil else { throw APError(.fileExists, "the LPAR already has adapter \(id.value)") }
        if let d = domains, let bad = d.subtracting(firmware.usageDomains).first {
            throw APError(.invalidArgument, "domain \(bad.value) of the restriction is not a usage domain of the LPAR")
        }
        firmwareChange(cause: "adapter \(id) added to the LPAR") { fw in
            fw.adapters[id] = Adapter(type: type, configured: true, domains: domains)
        }
    }

    /// Removes an adapter from the LPAR (firmware event). ENOENT if it lacks it.
    public mutating func removeAdapter(_ id: APID) throws(APError) {
        guard firmware.adapters[id] != nil else { throw APError(.noSuchFileOrDirectory, "the LPAR has no adapter \(id.value)") }
        firmwareChange(cause: "adapter \(id) removed from the LPAR") { fw in fw.adapters[id] = nil }
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

    mutating func addLPARDomain(_ id: APQI, _ set: WritableKeyPath<Firmware, Bitmap256<APQI>>, _ noun: String) throws(APError) {
        guard id <= firmware.maxDomain else {
            throw APError(.invalidArgument, "domain \(id.value) is above the LPAR's maximum domain id \(firmware.maxDomain.value)")
        }
        guard !firmware[keyPath: set].contains(id) else { throw APError(.fileExists, "the LPAR already has \(noun) \(id.value)") }
        firmwareChange(cause: "\(noun) \(id) added to the LPAR") { fw in fw[keyPath: set].insert(id) }
    }

    mutating func removeLPARDomain(_ id: APQI, _ set: WritableKeyPath<Firmware, Bitmap256<APQI>>, _ noun: String) throws(APError) {
        guard firmware[keyPath: set].contains(id) else {
            throw APError(.noSuchFileOrDirectory, "the LPAR has no \(noun) \(id.value)")
        }
        firmwareChange(cause: "\(noun) \(id) removed from the LPAR") { fw in fw[keyPath: set].remove(id) }
    }

    /// Applies a firmware change as a whole (SPEC §3, last hot-plug rule):
    /// the AP bus removes, creates and binds every affected queue device
    /// (its scan); then vfio_ap is told how the host configuration changed.
    mutating func firmwareChange(cause: String, _ change: (inout Firmware) -> Void) {
        let old = firmware
        let before = old.hostConfiguration
        change(&firmware)
        let after = firmware.hostConfiguration
        events.append(.note("firmware: \(cause)"))
        let change = HostConfigChange(removed: before.subtracting(after), added: after.subtracting(before))
        // New adapters or domains re-arm the bindings-complete completion (`ap_scan_bus`).
        if !change.added.apm.isEmpty || !change.added.aqm.isEmpty { bus.bindingsRearmed = true }
        scanBus(before: old)
        vfioConfigChanged(change, cause: cause)
        endOfScan(at: nil)
    }

    // MARK: the hardware queues

    /// Resets (zeroizes) a queue: whatever guest state it held is gone, and
    /// so are its Secure Execution binding and association.
    mutating func reset(_ apqn: APQN, cause: String) {
        firmware.records[apqn, default: QueueRecord()].resets += 1
        firmware.records[apqn]?.holdsStateOf = nil
        firmware.records[apqn]?.heldState = nil
        events.append(.queueReset(apqn, cause: cause))
        dropSEBinding(apqn, cause: cause)
    }
}

/// A change of the host AP configuration (QCI), as vfio_ap is told of it.
struct HostConfigChange {
    var removed: Matrix
    var added: Matrix
}
