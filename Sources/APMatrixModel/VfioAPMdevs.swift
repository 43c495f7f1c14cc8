import SystemPackage

/// Why new APQNs cannot be assigned to an mdev.
public enum AssignRefusal: Hashable, Sendable {
    /// apmask and aqmask reserve this APQN for the host (EADDRNOTAVAIL).
    case reserved(APQN)
    /// Other mdevs have these APQNs assigned (EADDRINUSE).
    case shared([MdevConflict])
}

extension APHost {
    // MARK: create / remove

    /// Creates an mdev (SPEC §3): a used UUID is EEXIST, no instance left
    /// EPERM (seed) or EUSERS (upstream), in that order.
    ///
    /// The corresponding kernel function is `create_store` (mdev_sysfs.c).
    public mutating func createMdev(_ uuid: MdevUUID) throws(APError) {
        guard vfio.mdevs[uuid] == nil else { throw APError(.fileExists, "create: mdev \(uuid) already exists") }
        guard vfio.availableInstances > 0 else {
            throw APError(rules.instancesExhaustedErrno, "create: no instance left (available_instances is 0); remove an mdev first")
        }
        let group = vfio.takeIOMMUGroup()
        vfio.add(uuid, iommuGroup: group)
        events.append(.note("vfio_ap: mdev \(uuid) created (iommu group \(group))"))
        sendUevent(.add, .mdev(uuid))
        sendUevent(.bind, .mdev(uuid))
    }

    /// Removes an mdev (SPEC §3; a `remove` write of a non-zero number).
    /// While a guest uses it: the seed refuses with EBUSY; upstream asks user
    /// space to release the device, which QEMU does by unplugging it, and
    /// then completes (§9.16). The mdev's bound queues are reset and it is dropped.
    ///
    /// The corresponding kernel function is `remove_store` (mdev_sysfs.c).
    public mutating func removeMdev(_ uuid: MdevUUID) throws(APError) {
        let m = try vfio.mdev(uuid)
        if let g = m.guest {
            switch rules.removeInUse {
            case .refuse:
                throw APError(.resourceBusy, "remove: guest \(g) uses mdev \(uuid); hot unplug it (device_del) or stop the guest first")
            case .requestRelease:
                // `vfio_ap_mdev_request` signals the config change before the request.
                signalConfigChange(g)
                events.append(.kernel("vfio_ap_mdev \(uuid): Relaying device request to user (#0)"))
                if let d = guests[g]?.device { release(g, d, cause: "device \(d.id) unplugged by QEMU on the VFIO device request") }
            }
        }
        for apqn in linkedQueues(vfio.mdevs[uuid]!) { reset(apqn, cause: "mdev \(uuid) removed") }
        vfio.setMatrix(uuid, Matrix())
        vfio.releaseIOMMUGroup(m.iommuGroup)
        sendUevent(.unbind, .mdev(uuid))
        sendUevent(.remove, .mdev(uuid))
        vfio.mdevs[uuid] = nil
        events.append(.note("vfio_ap: mdev \(uuid) removed"))
    }

    /// The queues vfio_ap has linked to an mdev: assigned there and bound to vfio_ap.
    func linkedQueues(_ m: Mdev) -> [APQN] {
        m.matrix.apqns.filter(bus.isBoundToVfio)
    }

    /// mdevs whose shadow vfio_ap maintains now: upstream all, the seed
    /// those a guest uses.
    var mdevsWithShadow: [Mdev] {
        vfio.mdevsInOrder.filter { rules.shadowWithoutGuest || $0.guest != nil }
    }

    // MARK: assign / unassign

    /// vfio_ap's maximum for the kind of id an attribute takes.
    func maximum(_ target: AssignTarget) -> Int {
        target == .adapter ? firmware.mdevMaxAPID.value : firmware.mdevMaxAPQI.value
    }

    /// ENODEV for an id above vfio_ap's maximum (step 2 of SPEC §3's
    /// assignment rules), whatever the value, so that a number too large
    /// for any id gets the same answer as one above this host's maximum.
    public func aboveMaximum(_ value: UInt64, _ target: AssignTarget, assign: Bool) -> APError? {
        let max = maximum(target)
        guard value > UInt64(max) else { return nil }
        return APError(.noSuchDevice, "\(assign ? "assign_" : "unassign_")\(target.rawValue): \(value) is above the maximum \(target == .adapter ? "APID" : "APQI") \(max)")
    }

    /// Assigns an adapter, domain or control domain (SPEC §3): above the
    /// maximum ENODEV; already assigned: success; for adapters and domains,
    /// a new APQN reserved for the host is EADDRNOTAVAIL and one assigned to
    /// another mdev EADDRINUSE (logged per APQN with its owner); then the id
    /// is set and the shadow follows (`ProfileRules.afterAssign`: seed hot
    /// plug, upstream re-filter). Control domains are not checked. Ids the
    /// LPAR lacks may be assigned (over-provisioning).
    ///
    /// The corresponding kernel functions are `assign_adapter_store`,
    /// `assign_domain_store` and `assign_control_domain_store`.
    public mutating func assign(_ a: Assignment, to uuid: MdevUUID) throws(APError) {
        let m = try vfio.mdev(uuid)
        if let e = aboveMaximum(UInt64(a.rawID), a.target, assign: true) { throw e }
        let new = m.matrix.with(a, true)
        guard new != m.matrix else { return }
        switch a {
        case .adapter(let id): try refuseUnusable(Matrix(apm: Bitmap256([id]), aqm: m.matrix.aqm), for: m, attr: "assign_adapter")
        case .domain(let id): try refuseUnusable(Matrix(apm: m.matrix.apm, aqm: Bitmap256([id])), for: m, attr: "assign_domain")
        case .controlDomain: break
        }
        vfio.setMatrix(uuid, new)
        let cause = "\(a.name) assigned"
        events.append(.note("vfio_ap: mdev \(uuid): \(cause)"))
        guard rules.shadowWithoutGuest || m.guest != nil else { return }
        setShadow(uuid, rules.afterAssign(a, new, shadow: m.shadow, host: self), cause: cause)
    }

    /// Unassigns an id (SPEC §3): ENODEV above the maximum, no-op if not
    /// assigned, clear; the id leaves the shadow (`ProfileRules.afterUnassign`)
    /// and every queue that leaves it is reset.
    ///
    /// The corresponding kernel functions are `unassign_adapter_store`,
    /// `unassign_domain_store` and `unassign_control_domain_store`.
    public mutating func unassign(_ a: Assignment, from uuid: MdevUUID) throws(APError) {
        let m = try vfio.mdev(uuid)
        if let e = aboveMaximum(UInt64(a.rawID), a.target, assign: false) { throw e }
        let new = m.matrix.with(a, false)
        guard new != m.matrix else { return }
        vfio.setMatrix(uuid, new)
        let cause = "\(a.name) unassigned"
        events.append(.note("vfio_ap: mdev \(uuid): \(cause)"))
        setShadow(uuid, rules.afterUnassign(a, shadow: m.shadow), cause: cause)
    }

    /// Why new APQNs cannot be assigned to an mdev, if they cannot: one is
    /// reserved for the host, or some are assigned to other mdevs (the
    /// conflicts, as the profile reports them). No side effects.
    public func refusal(of new: Matrix, for uuid: MdevUUID) -> AssignRefusal? {
        if let r = bus.firstHostOwned(new) { return .reserved(r) }
        guard vfio.anyAssigned(new) else { return nil }
        let conflicts = rules.reported(vfio.conflicts(with: new, except: uuid))
        return conflicts.isEmpty ? nil : .shared(conflicts)
    }

    /// The checks of new APQNs for an mdev: reserved for the host
    /// (EADDRNOTAVAIL), then assigned to another mdev (EADDRINUSE, with the
    /// profile's log lines).
    mutating func refuseUnusable(_ new: Matrix, for m: Mdev, attr: String) throws(APError) {
        switch refusal(of: new, for: m.uuid) {
        case nil: return
        case .reserved(let r)?:
            throw APError(.addressNotAvailable, bus.driverOverrideCount > 0
                          ? "\(attr): queue \(r) belongs to the host: it has a driver_override and is bound to cex4queue, or has none and apmask/aqmask reserve it"
                          : "\(attr): queue \(r) is reserved for the host by apmask/aqmask; clear its bit in one of them first")
        case .shared(let conflicts)?:
            for c in conflicts {
                for apqn in c.apqns {
                    events.append(.kernel(rules.assignConflictLine(apqn, owner: c.mdev.uuid, assignee: m.uuid)))
                }
            }
            let first = conflicts[0], count = conflicts.reduce(0) { $0 + $1.apqns.count }
            throw APError(.addressInUse, "\(attr): queue \(first.apqns[0]) is already assigned to mdev \(first.mdev.uuid)\(count > 1 ? " (and \(count - 1) more)" : ""); an APQN belongs to one mdev")
        }
    }

    /// Replaces an mdev's whole assignment (upstream `ap_config`;
    /// kernel-reference §3.5), all or nothing: EADDRNOTAVAIL for a
    /// host-reserved APQN, EADDRINUSE for a shared one, ENODEV for an id
    /// above the maximum. Removed adapters and domains leave the shadow
    /// (their queues are reset), then everything is re-filtered.
    ///
    /// The corresponding kernel function is `ap_config_store`.
    public mutating func setAPConfig(_ new: Matrix, for uuid: MdevUUID) throws(APError) {
        _ = try vfio.mdev(uuid)
        guard rules.hasUpstreamAttributes else {
            throw APError(.noSuchFileOrDirectory, "ap_config exists in the upstream profile only")
        }
        try replaceAssignment(new, for: uuid, attr: "ap_config", cause: "ap_config written")
    }

    /// `ap_config`'s replacement of the whole assignment, shared with the
    /// destination of a migration (the series refactored it out of the store).
    ///
    /// The corresponding kernel function is `vfio_ap_set_new_guest_config`.
    mutating func replaceAssignment(_ new: Matrix, for uuid: MdevUUID, attr: String, cause: String) throws(APError) {
        let m = try vfio.mdev(uuid)
        try refuseUnusable(new, for: m, attr: attr)
        let maxAPID = firmware.mdevMaxAPID, maxAPQI = firmware.mdevMaxAPQI
        guard new.apm.isSubset(of: .through(maxAPID)), new.aqm.isSubset(of: .through(maxAPQI)),
              new.adm.isSubset(of: .through(maxAPQI)) else {
            throw APError(.noSuchDevice, "\(attr): an id is above the maximum APID \(maxAPID.value) or APQI \(maxAPQI.value)")
        }
        let old = m.matrix
        vfio.setMatrix(uuid, new)
        events.append(.note("vfio_ap: mdev \(uuid): \(attr == "ap_config" ? "ap_config set to \(new.summary)" : "assignment set to \(new.summary) (\(cause))")"))
        setShadow(uuid, rules.unplug(adapters: old.apm.subtracting(new.apm), domains: old.aqm.subtracting(new.aqm),
                                     from: m.shadow), cause: cause)
        setShadow(uuid, rules.filter(new, host: self), cause: cause)
    }

    // MARK: reads

    /// `guest_matrix` (SPEC §3): the shadow in the `matrix` format; the
    /// seed says ENODEV when no guest uses the mdev, upstream shows the shadow.
    ///
    /// The corresponding kernel function is `guest_matrix_show`.
    public func guestMatrix(_ uuid: MdevUUID) throws(APError) -> Matrix {
        let m = try vfio.mdev(uuid)
        guard m.guest != nil || !rules.guestMatrixNeedsGuest else {
            throw APError(.noSuchDevice, "guest_matrix: no guest uses mdev \(uuid); start one with this mdev")
        }
        return m.shadow
    }

    /// A queue's vfio_ap `status` (upstream): `unassigned`, `assigned`, or
    /// `in use` when a guest has it in its CRYCB.
    ///
    /// The corresponding kernel function is `status_show` (vfio_ap_drv.c).
    public func queueStatus(_ apqn: APQN) -> String {
        guard let m = vfio.owner(of: apqn) else { return "unassigned" }
        return m.guest != nil && m.shadow.contains(apqn) ? "in use" : "assigned"
    }

    /// The matrix device's `features`, nil where the kernel has none.
    ///
    /// The corresponding kernel function is `features_show` (vfio_ap_drv.c).
    public var matrixFeatures: String? { rules.matrixFeatures }

    /// Whether the upstream-only attributes exist (`ap_config`, `features`, queue `status`).
    public var hasUpstreamAttributes: Bool { rules.hasUpstreamAttributes }
}
