import SystemPackage

/// The assignment attributes of an mdev.
public enum AssignTarget: String, Sendable, CaseIterable {
    case adapter, domain, controlDomain = "control_domain"
}

extension APHost {
    // MARK: create / remove

    /// Writes a UUID to `mdev_supported_types/vfio_ap-passthrough/create`
    /// (SPEC §3): UUID rules (EINVAL), a used UUID (EEXIST), no instance left
    /// (EPERM in the seed profile), in that order. Returns the canonical UUID.
    ///
    /// The corresponding kernel function is `create_store` (mdev_sysfs.c).
    @discardableResult
    public mutating func createMdev(_ input: [UInt8]) throws(APError) -> String {
        let uuid: String
        switch KernelParse.mdevUUID(input) {
        case .success(let u): uuid = u
        case .failure(let e):
            throw APError(e, "create: write a UUID such as 62177883-f1bb-47f0-914d-32a22e3a8804 (36 characters, optional newline)")
        }
        guard mdevs[uuid] == nil else { throw APError(.fileExists, "create: mdev \(uuid) already exists") }
        guard availableInstances > 0 else {
            throw APError(rules.instancesExhaustedErrno, "create: no instance left (available_instances is 0); remove an mdev first")
        }
        let used = Set(mdevs.values.map(\.iommuGroup))
        let group = (0...).first { !used.contains($0) }!
        mdevs[uuid] = Mdev(uuid: uuid, iommuGroup: group, serial: nextSerial)
        nextSerial += 1
        events.append(.note("vfio_ap: mdev \(uuid) created (iommu group \(group))"))
        return uuid
    }

    /// Writes the mdev's `remove` (SPEC §3): kstrtoul (any error EINVAL);
    /// 0 does nothing; otherwise EBUSY while a guest uses the mdev, else its
    /// bound queues are reset and it is dropped.
    ///
    /// The corresponding kernel function is `remove_store` (mdev_sysfs.c).
    public mutating func removeMdev(_ uuid: String, _ input: [UInt8]) throws(APError) {
        guard case .success(let v) = KernelParse.kstrtoul(input) else {
            throw APError(.invalidArgument, "remove: write 1 to remove the mdev")
        }
        guard v != 0, let m = mdevs[uuid] else { return }
        if let g = m.guest {
            throw APError(.resourceBusy, "remove: guest \(g) uses mdev \(uuid); hot unplug it (device_del) or stop the guest first")
        }
        for apqn in m.matrix.apqns where isBoundToVfio(apqn.apid, apqn.apqi) {
            reset(apqn, cause: "mdev \(uuid) removed")
        }
        mdevs[uuid] = nil
        events.append(.note("vfio_ap: mdev \(uuid) removed"))
    }

    // MARK: assign / unassign

    /// The mdev with this UUID; ENODEV if there is none.
    public func mdev(_ uuid: String) throws(APError) -> Mdev {
        guard let m = mdevs[uuid] else { throw APError(.noSuchDevice, "no mdev \(uuid)") }
        return m
    }

    /// Parses an id written to an assignment attribute: kstrtoul base 0
    /// (EINVAL, ERANGE), then at most the maximum (ENODEV).
    func parseID(_ input: [UInt8], _ target: AssignTarget, assign: Bool) throws(APError) -> Int {
        let attr = (assign ? "assign_" : "unassign_") + target.rawValue
        let value: UInt64
        switch KernelParse.kstrtoul(input) {
        case .success(let v): value = v
        case .failure(let e) where e == .outOfRange:
            throw APError(e, "\(attr): the number does not fit in 64 bits")
        case .failure(let e):
            throw APError(e, "\(attr): write one number: decimal (5), hex (0x5) or octal (05)")
        }
        let max = target == .adapter ? mdevMaxAPID : mdevMaxAPQI
        guard value <= UInt64(max) else {
            throw APError(.noSuchDevice, "\(attr): \(value) is above the maximum \(target == .adapter ? "APID" : "APQI") \(max)")
        }
        return Int(value)
    }

    /// Writes `assign_adapter`, `assign_domain` or `assign_control_domain`
    /// (SPEC §3): parse (EINVAL/ERANGE); above the maximum ENODEV; already
    /// assigned: success; for adapters and domains, a new APQN reserved for
    /// the host is EADDRNOTAVAIL and one assigned to another mdev EADDRINUSE
    /// (logged per APQN with its owner); then the id is set and, if a guest
    /// uses the mdev, hot plugged. Control domains are not checked and are
    /// always plugged. Ids the LPAR lacks may be assigned (over-provisioning).
    ///
    /// The corresponding kernel functions are `assign_adapter_store`,
    /// `assign_domain_store` and `assign_control_domain_store`.
    public mutating func assign(_ target: AssignTarget, mdev uuid: String, _ input: [UInt8]) throws(APError) {
        var m = try mdev(uuid)
        let id = try parseID(input, target, assign: true)
        switch target {
        case .adapter:
            guard !m.matrix.apm.contains(id) else { return }
            try checkNewAPQNs(Matrix(apm: Bitmap256([id]), aqm: m.matrix.aqm), for: m, attr: "assign_adapter")
            m.matrix.apm.insert(id)
        case .domain:
            guard !m.matrix.aqm.contains(id) else { return }
            try checkNewAPQNs(Matrix(apm: m.matrix.apm, aqm: Bitmap256([id])), for: m, attr: "assign_domain")
            m.matrix.aqm.insert(id)
        case .controlDomain:
            guard !m.matrix.adm.contains(id) else { return }
            m.matrix.adm.insert(id)
        }
        mdevs[uuid] = m
        events.append(.note("vfio_ap: mdev \(uuid): \(target.rawValue) \(hex(id, width: target == .adapter ? 2 : 4)) assigned"))
        guard m.guest != nil else { return }
        let cause = "\(target.rawValue) \(hex(id, width: target == .adapter ? 2 : 4)) assigned"
        switch target {
        case .adapter: setShadow(uuid, rules.plugAdapter(id, into: m.shadow, assigned: m.matrix, host: self), cause: cause)
        case .domain: setShadow(uuid, rules.plugDomain(id, into: m.shadow, assigned: m.matrix, host: self), cause: cause)
        case .controlDomain:
            var s = m.shadow
            s.adm.insert(id)
            setShadow(uuid, s, cause: cause)
        }
    }

    /// The checks of a new row or column of APQNs: reserved for the host
    /// (EADDRNOTAVAIL), then assigned to another mdev (EADDRINUSE, one log
    /// line per APQN, owners in creation order, APQNs ascending).
    mutating func checkNewAPQNs(_ new: Matrix, for m: Mdev, attr: String) throws(APError) {
        if let r = new.apqns.first(where: isReserved) {
            throw APError(.addressNotAvailable,
                          "\(attr): queue \(r) is reserved for the host by apmask/aqmask; clear its bit in one of them first")
        }
        var conflicts: [(APQN, String)] = []
        for o in mdevsInOrder where o.uuid != m.uuid {
            let shared = Matrix(apm: o.matrix.apm & new.apm, aqm: o.matrix.aqm & new.aqm)
            for apqn in shared.apqns { conflicts.append((apqn, o.uuid)) }
        }
        guard let first = conflicts.first else { return }
        for (apqn, owner) in conflicts { events.append(.kernel(rules.inUseLine(apqn, owner: owner))) }
        throw APError(.addressInUse, "\(attr): queue \(first.0) is already assigned to mdev \(first.1)\(conflicts.count > 1 ? " (and \(conflicts.count - 1) more)" : ""); an APQN belongs to one mdev")
    }

    /// Writes `unassign_adapter`, `unassign_domain` or
    /// `unassign_control_domain` (SPEC §3): parse, ENODEV above the maximum,
    /// no-op if not assigned, clear; with a guest, the id leaves the shadow
    /// (if S.apm or S.aqm becomes empty both do) and every queue that leaves
    /// the guest is reset.
    ///
    /// The corresponding kernel functions are `unassign_adapter_store`,
    /// `unassign_domain_store` and `unassign_control_domain_store`.
    public mutating func unassign(_ target: AssignTarget, mdev uuid: String, _ input: [UInt8]) throws(APError) {
        var m = try mdev(uuid)
        let id = try parseID(input, target, assign: false)
        let cause = "\(target.rawValue) \(hex(id, width: target == .adapter ? 2 : 4)) unassigned"
        var s = m.shadow
        switch target {
        case .adapter:
            guard m.matrix.apm.contains(id) else { return }
            m.matrix.apm.remove(id)
            if s.apm.contains(id) { s = rules.unplug(adapters: Bitmap256([id]), from: s) }
        case .domain:
            guard m.matrix.aqm.contains(id) else { return }
            m.matrix.aqm.remove(id)
            if s.aqm.contains(id) { s = rules.unplug(domains: Bitmap256([id]), from: s) }
        case .controlDomain:
            guard m.matrix.adm.contains(id) else { return }
            m.matrix.adm.remove(id)
            s.adm.remove(id)
        }
        mdevs[uuid] = m
        events.append(.note("vfio_ap: mdev \(uuid): \(cause)"))
        if m.guest != nil { setShadow(uuid, s, cause: cause) }
    }

    // MARK: reads

    /// `guest_matrix` (SPEC §3): the shadow in the `matrix` format; ENODEV
    /// when no guest uses the mdev.
    ///
    /// The corresponding kernel function is `guest_matrix_show`.
    public func guestMatrix(_ uuid: String) throws(APError) -> Matrix {
        let m = try mdev(uuid)
        guard m.guest != nil else {
            throw APError(.noSuchDevice, "guest_matrix: no guest uses mdev \(uuid); start one with this mdev")
        }
        return m.shadow
    }

    // MARK: shadow and queue events

    /// Replaces an mdev's shadow: logs the CRYCB change of its guest, records
    /// who holds its queues, and resets every queue that left the guest.
    mutating func setShadow(_ uuid: String, _ new: Matrix, cause: String) {
        guard let m = mdevs[uuid], new != m.shadow else { return }
        let old = m.shadow
        mdevs[uuid]?.shadow = new
        if let g = m.guest {
            events.append(.crycbChanged(guest: g, before: old, after: new, cause: cause))
            for apqn in new.apqns where !old.contains(apqn) { records[apqn, default: QueueRecord()].holdsStateOf = g }
        }
        for apqn in old.apqns where !new.contains(apqn) { reset(apqn, cause: "left the guest: \(cause)") }
    }

    /// vfio_ap's remove callback for a queue leaving vfio_ap outside a
    /// firmware change (unbind, mask change): a queue in a guest's shadow
    /// unplugs its whole adapter.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_remove_queue`.
    mutating func queueLeftVfio(_ apqn: APQN, cause: String) {
        guard let m = owner(of: apqn), m.guest != nil, m.shadow.contains(apqn) else { return }
        setShadow(m.uuid, rules.unplug(adapters: Bitmap256([apqn.apid]), from: m.shadow), cause: cause)
    }

    /// vfio_ap's probe callback for a queue newly bound to vfio_ap (mask
    /// change or `bind`): for the mdev in use that has it assigned, the
    /// adapter rule if its adapter is not plugged, then the domain rule.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_probe_queue`.
    mutating func queueProbed(_ apqn: APQN, cause: String) {
        guard let m = owner(of: apqn), m.guest != nil else { return }
        var s = m.shadow
        if !s.apm.contains(apqn.apid) { s = rules.plugAdapter(apqn.apid, into: s, assigned: m.matrix, host: self) }
        if !s.aqm.contains(apqn.apqi) { s = rules.plugDomain(apqn.apqi, into: s, assigned: m.matrix, host: self) }
        setShadow(m.uuid, s, cause: cause)
    }
}
