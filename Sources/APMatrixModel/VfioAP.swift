import SystemPackage

/// Why new APQNs cannot be assigned to an mdev.
public enum AssignRefusal: Equatable, Sendable {
    /// apmask and aqmask reserve this APQN for the host (EADDRNOTAVAIL).
    case reserved(APQN)
    /// Other mdevs have these APQNs assigned (EADDRINUSE).
    case shared([(mdev: Mdev, apqns: [APQN])])

    public static func == (l: AssignRefusal, r: AssignRefusal) -> Bool {
        switch (l, r) {
        case let (.reserved(a), .reserved(b)): return a == b
        case let (.shared(a), .shared(b)): return a.map(\.mdev.uuid) == b.map(\.mdev.uuid) && a.map(\.apqns) == b.map(\.apqns)
        default: return false
        }
    }
}

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
        let group = takeIOMMUGroup()
        mdevs[uuid] = Mdev(uuid: uuid, iommuGroup: group, serial: nextSerial)
        nextSerial += 1
        events.append(.note("vfio_ap: mdev \(uuid) created (iommu group \(group))"))
        return uuid
    }

    /// Writes the mdev's `remove` (SPEC §3): kstrtoul (any error EINVAL);
    /// 0 does nothing. While a guest uses the mdev: the seed refuses with
    /// EBUSY; upstream asks user space to release the device, which QEMU
    /// does by unplugging it, and then completes (§9.16). The mdev's bound
    /// queues are reset and it is dropped.
    ///
    /// The corresponding kernel function is `remove_store` (mdev_sysfs.c).
    public mutating func removeMdev(_ uuid: String, _ input: [UInt8]) throws(APError) {
        guard case .success(let v) = KernelParse.kstrtoul(input) else {
            throw APError(.invalidArgument, "remove: write 1 to remove the mdev")
        }
        guard v != 0, let m = mdevs[uuid] else { return }
        if let g = m.guest {
            switch rules.removeInUse {
            case .refuse:
                throw APError(.resourceBusy, "remove: guest \(g) uses mdev \(uuid); hot unplug it (device_del) or stop the guest first")
            case .requestRelease:
                events.append(.kernel("vfio_ap_mdev \(uuid): Relaying device request to user (#0)"))
                if let d = guests[g]?.device { release(g, d, cause: "device \(d.id) unplugged by QEMU on the VFIO device request") }
            }
        }
        for apqn in linkedQueues(mdevs[uuid]!) { reset(apqn, cause: "mdev \(uuid) removed") }
        setMatrix(uuid, Matrix())
        iommuGroupsInUse[m.iommuGroup >> 6] &= ~(1 << UInt64(m.iommuGroup & 63))
        // No trailing empty words: equal hosts have equal bookkeeping.
        while iommuGroupsInUse.last == 0 { iommuGroupsInUse.removeLast() }
        mdevs[uuid] = nil
        events.append(.note("vfio_ap: mdev \(uuid) removed"))
    }

    /// The lowest free IOMMU group number, now taken.
    mutating func takeIOMMUGroup() -> Int {
        let word = iommuGroupsInUse.firstIndex { $0 != .max } ?? iommuGroupsInUse.count
        let n = word << 6 | (word < iommuGroupsInUse.count ? (~iommuGroupsInUse[word]).trailingZeroBitCount : 0)
        markIOMMUGroup(n)
        return n
    }

    /// Marks IOMMU group `n` as used.
    mutating func markIOMMUGroup(_ n: Int) {
        while iommuGroupsInUse.count <= n >> 6 { iommuGroupsInUse.append(0) }
        iommuGroupsInUse[n >> 6] |= 1 << UInt64(n & 63)
    }

    /// Whether an mdev has IOMMU group `n`.
    public func isIOMMUGroupInUse(_ n: Int) -> Bool {
        n >= 0 && n >> 6 < iommuGroupsInUse.count && iommuGroupsInUse[n >> 6] & (1 << UInt64(n & 63)) != 0
    }

    /// Replaces an mdev's assignment and keeps `assignedDomains` exact.
    mutating func setMatrix(_ uuid: String, _ new: Matrix) {
        guard let old = mdevs[uuid]?.matrix else { return }
        for a in old.apm { assignedDomains[a] = assignedDomains[a].subtracting(old.aqm) }
        for a in new.apm { assignedDomains[a] = assignedDomains[a] | new.aqm }
        mdevs[uuid]?.matrix = new
    }

    /// The queues vfio_ap has linked to an mdev: assigned there and bound to vfio_ap.
    func linkedQueues(_ m: Mdev) -> [APQN] {
        m.matrix.apqns.filter { isBoundToVfio($0.apid, $0.apqi) }
    }

    /// mdevs whose shadow vfio_ap maintains now: upstream all, the seed
    /// those a guest uses.
    var mdevsWithShadow: [Mdev] {
        mdevsInOrder.filter { rules.shadowWithoutGuest || $0.guest != nil }
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
    /// (logged per APQN with its owner); then the id is set and the shadow
    /// follows (`ProfileRules.afterAssign`: seed hot plug, upstream
    /// re-filter). Control domains are not checked. Ids the LPAR lacks may
    /// be assigned (over-provisioning).
    ///
    /// The corresponding kernel functions are `assign_adapter_store`,
    /// `assign_domain_store` and `assign_control_domain_store`.
    public mutating func assign(_ target: AssignTarget, mdev uuid: String, _ input: [UInt8]) throws(APError) {
        let m = try mdev(uuid)
        let id = try parseID(input, target, assign: true)
        var new = m.matrix
        switch target {
        case .adapter: new.apm.insert(id)
        case .domain: new.aqm.insert(id)
        case .controlDomain: new.adm.insert(id)
        }
        guard new != m.matrix else { return }
        if target != .controlDomain {
            let added = target == .adapter ? Matrix(apm: Bitmap256([id]), aqm: m.matrix.aqm)
                                           : Matrix(apm: m.matrix.apm, aqm: Bitmap256([id]))
            try refuseUnusable(added, for: m, attr: "assign_" + target.rawValue)
        }
        setMatrix(uuid, new)
        let cause = "\(target.rawValue) \(hex(id, width: target == .adapter ? 2 : 4)) assigned"
        events.append(.note("vfio_ap: mdev \(uuid): \(cause)"))
        guard rules.shadowWithoutGuest || m.guest != nil else { return }
        setShadow(uuid, rules.afterAssign(target, id, new, shadow: m.shadow, host: self), cause: cause)
    }

    /// Why new APQNs cannot be assigned to an mdev, if they cannot: one is
    /// reserved for the host, or some are assigned to other mdevs (the
    /// conflicts, as the profile reports them). No side effects.
    public func refusal(of new: Matrix, for uuid: String) -> AssignRefusal? {
        let apids = new.apm & apmask, apqis = new.aqm & aqmask
        if let a = apids.first, let q = apqis.first { return .reserved(APQN(a, q)) }
        guard new.apm.contains(where: { assignedDomains[$0].intersects(new.aqm) }) else { return nil }
        let conflicts = rules.reported(conflicts(with: new, except: uuid))
        return conflicts.isEmpty ? nil : .shared(conflicts)
    }

    /// The checks of new APQNs for an mdev: reserved for the host
    /// (EADDRNOTAVAIL), then assigned to another mdev (EADDRINUSE, with the
    /// profile's log lines).
    mutating func refuseUnusable(_ new: Matrix, for m: Mdev, attr: String) throws(APError) {
        switch refusal(of: new, for: m.uuid) {
        case nil: return
        case .reserved(let r)?:
            throw APError(.addressNotAvailable,
                          "\(attr): queue \(r) is reserved for the host by apmask/aqmask; clear its bit in one of them first")
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

    /// The mdevs (other than `uuid`) whose assignment shares APQNs with
    /// `apqns`, in creation order, with those APQNs ascending.
    func conflicts(with apqns: Matrix, except uuid: String?) -> [(mdev: Mdev, apqns: [APQN])] {
        mdevs.values.compactMap { o -> (mdev: Mdev, apqns: [APQN])? in
            guard o.uuid != uuid, o.matrix.apm.intersects(apqns.apm), o.matrix.aqm.intersects(apqns.aqm) else { return nil }
            return (o, Matrix(apm: o.matrix.apm & apqns.apm, aqm: o.matrix.aqm & apqns.aqm).apqns)
        }.sorted { $0.mdev.serial < $1.mdev.serial }
    }

    /// Writes `unassign_adapter`, `unassign_domain` or
    /// `unassign_control_domain` (SPEC §3): parse, ENODEV above the maximum,
    /// no-op if not assigned, clear; the id leaves the shadow
    /// (`ProfileRules.afterUnassign`) and every queue that leaves it is reset.
    ///
    /// The corresponding kernel functions are `unassign_adapter_store`,
    /// `unassign_domain_store` and `unassign_control_domain_store`.
    public mutating func unassign(_ target: AssignTarget, mdev uuid: String, _ input: [UInt8]) throws(APError) {
        let m = try mdev(uuid)
        let id = try parseID(input, target, assign: false)
        var new = m.matrix
        switch target {
        case .adapter: new.apm.remove(id)
        case .domain: new.aqm.remove(id)
        case .controlDomain: new.adm.remove(id)
        }
        guard new != m.matrix else { return }
        setMatrix(uuid, new)
        let cause = "\(target.rawValue) \(hex(id, width: target == .adapter ? 2 : 4)) unassigned"
        events.append(.note("vfio_ap: mdev \(uuid): \(cause)"))
        setShadow(uuid, rules.afterUnassign(target, id, shadow: m.shadow), cause: cause)
    }

    /// Writes `ap_config` (upstream; kernel-reference §3.5): the first 201
    /// bytes, three comma- or newline-separated masks (APM, AQM, ADM) in
    /// the absolute mask syntax, all or nothing: EINVAL for a bad field,
    /// EADDRNOTAVAIL for a host-reserved APQN, EADDRINUSE for a shared one,
    /// ENODEV for an id above the maximum. Removed adapters and domains
    /// leave the shadow (their queues are reset), then everything is
    /// re-filtered.
    ///
    /// The corresponding kernel function is `ap_config_store`.
    public mutating func storeAPConfig(mdev uuid: String, _ input: [UInt8]) throws(APError) {
        let m = try mdev(uuid)
        guard rules.hasUpstreamAttributes else {
            throw APError(.noSuchFileOrDirectory, "ap_config exists in the upstream profile only")
        }
        let fields = KernelParse.cString(Array(input.prefix(201)))
            .split(omittingEmptySubsequences: false) { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\n") }
        guard fields.count >= 3 else {
            throw APError(.invalidArgument, "ap_config: write three masks, APM,AQM,ADM (0x and up to 64 hex digits each)")
        }
        var masks: [Bitmap256] = []
        for (i, field) in fields.prefix(3).enumerated() {
            guard case .success(let mask) = KernelParse.hex2bitmap(field) else {
                throw APError(.invalidArgument, "ap_config: field \(i + 1) '\(String(decoding: field, as: UTF8.self))' is not a mask")
            }
            masks.append(mask)
        }
        let new = Matrix(apm: masks[0], aqm: masks[1], adm: masks[2])
        try refuseUnusable(new, for: m, attr: "ap_config")
        if new.apm.subtracting(.through(mdevMaxAPID)).first != nil
            || new.aqm.subtracting(.through(mdevMaxAPQI)).first != nil
            || new.adm.subtracting(.through(mdevMaxAPQI)).first != nil {
            throw APError(.noSuchDevice, "ap_config: an id is above the maximum APID \(mdevMaxAPID) or APQI \(mdevMaxAPQI)")
        }
        let old = m.matrix
        setMatrix(uuid, new)
        events.append(.note("vfio_ap: mdev \(uuid): ap_config set to \(new.summary)"))
        let cause = "ap_config written"
        setShadow(uuid, rules.unplug(adapters: old.apm.subtracting(new.apm), domains: old.aqm.subtracting(new.aqm),
                                     from: m.shadow), cause: cause)
        setShadow(uuid, rules.filter(new, host: self), cause: cause)
    }

    // MARK: reads

    /// `guest_matrix` (SPEC §3): the shadow in the `matrix` format; the
    /// seed says ENODEV when no guest uses the mdev, upstream shows the shadow.
    ///
    /// The corresponding kernel function is `guest_matrix_show`.
    public func guestMatrix(_ uuid: String) throws(APError) -> Matrix {
        let m = try mdev(uuid)
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
        guard let m = owner(of: apqn) else { return "unassigned" }
        return m.guest != nil && m.shadow.contains(apqn) ? "in use" : "assigned"
    }

    /// Whether the upstream-only attributes exist (`ap_config`, `features`, queue `status`).
    public var hasUpstreamAttributes: Bool { rules.hasUpstreamAttributes }

    // MARK: shadow and queue events

    /// Replaces an mdev's shadow: logs the CRYCB change of its guest, records
    /// who holds its queues, and resets every queue that left the shadow.
    mutating func setShadow(_ uuid: String, _ new: Matrix, cause: String) {
        guard let m = mdevs[uuid], new != m.shadow else { return }
        let old = m.shadow
        mdevs[uuid]?.shadow = new
        if let g = m.guest { pushCRYCB(g, from: old, to: new, cause: cause) }
        for apqn in old.apqns where !new.contains(apqn) { reset(apqn, cause: "left the shadow: \(cause)") }
    }

    /// KVM rewrites a guest's CRYCB (`kvm_arch_crypto_set_masks`): the
    /// change is logged and the queues that arrive hold the guest's state from now on.
    mutating func pushCRYCB(_ guest: String, from old: Matrix, to new: Matrix, cause: String) {
        guard old != new else { return }
        events.append(.crycbChanged(guest: guest, before: old, after: new, cause: cause))
        for apqn in new.apqns where !old.contains(apqn) { records[apqn, default: QueueRecord()].holdsStateOf = guest }
    }

    /// vfio_ap's remove callback for a queue leaving vfio_ap outside a
    /// firmware change (unbind, mask change): a queue in a shadow unplugs
    /// its whole adapter; upstream also resets a queue outside any shadow.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_remove_queue`.
    mutating func queueLeftVfio(_ apqn: APQN, cause: String) {
        if let m = owner(of: apqn), m.shadow.contains(apqn) {
            setShadow(m.uuid, rules.unplug(adapters: Bitmap256([apqn.apid]), from: m.shadow), cause: cause)
        } else if rules.resetsQueueLeavingVfio {
            reset(apqn, cause: cause)
        }
    }

    /// vfio_ap's probe callback for a queue newly bound to vfio_ap (mask
    /// change or `bind`): the shadow of the mdev that has it assigned
    /// follows `ProfileRules.afterProbe`.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_probe_queue`.
    mutating func queueProbed(_ apqn: APQN, cause: String) {
        guard let m = owner(of: apqn), rules.shadowWithoutGuest || m.guest != nil else { return }
        setShadow(m.uuid, rules.afterProbe(apqn, m.matrix, shadow: m.shadow, host: self), cause: cause)
    }
}
