import SystemPackage

/// A VFIO device's migration state (`enum vfio_device_mig_state`), named as
/// QEMU's QAPI `VfioMigrationState` names them. vfio-ap has the STOP_COPY
/// flow only: RUNNING, STOP, STOP_COPY, RESUMING, and ERROR.
public enum VfioMigrationState: String, Sendable, Codable, CaseIterable {
    case running, stop
    case stopCopy = "stop-copy"
    case resuming, error

    /// The next arc towards `target` (`vfio_mig_get_next_state` for a
    /// device with `VFIO_MIGRATION_STOP_COPY` only): every path passes STOP.
    func next(towards target: VfioMigrationState) -> VfioMigrationState? {
        switch (self, target) {
        case (.error, _), (_, .error): return nil
        case _ where self == target: return nil
        case (.stop, _): return target
        default: return .stop
        }
    }
}

extension APHost {
    // MARK: the device's migration state (vfio_ap_migration.c of the series)

    /// QEMU sets the device's migration state: the kernel walks the arcs
    /// from the current state (`vfio_mig_get_next_state`), none of which
    /// touches the queues or the CRYCB (the device has no internal state).
    /// ENODEV when the device is not open (only RUNNING is accepted then);
    /// ENOTTY without the series' migration ops. The guest's QEMU announces
    /// the state with `VFIO_MIGRATION` when its device has `migration-events`.
    ///
    /// The corresponding kernel functions are `vfio_ap_set_state` and
    /// `vfio_ap_transition_to_state`.
    public mutating func setDeviceMigrationState(_ name: String, _ target: VfioMigrationState) throws(APError) {
        let g = try guest(name)
        guard rules.deviceMigration else {
            throw APError(.notSupported, "VFIO_DEVICE_FEATURE_MIGRATION: the vfio-ap device has no migration support (serve --preview vfio-ap-migration)")
        }
        guard let d = g.device, var state = vfio.mdevs[d.mdev]?.migrationState else {
            if target == .running { return }
            throw APError(.noSuchDevice, "guest \(name): its vfio-ap device is not open, so it has no migration state")
        }
        while let next = state.next(towards: target) { state = next }
        guard state == target else {
            throw APError(.invalidArgument, "vfio-ap device \(d.id): no migration arc from \(state.rawValue) to \(target.rawValue)")
        }
        vfio.mdevs[d.mdev]?.migrationState = target
        events.append(.vfioMigrationChanged(guest: name, device: d, state: target, announce: d.announcesMigration))
    }

    /// The TAPQ answer for `apqn`: the GR2 of its adapter (its host file's
    /// `tapqGR2`, else the type's table value), or nil for response code
    /// 0x01 (`AP_RESPONSE_Q_NOT_AVAIL`: the queue is not in the configuration).
    ///
    /// The corresponding kernel function is `ap_tapq`.
    public func tapq(_ apqn: APQN) -> TAPQInfo? {
        guard firmware.queueDomains(of: apqn.apid).contains(apqn.apqi), let a = firmware.adapters[apqn.apid] else { return nil }
        return a.tapqGR2.map(TAPQInfo.init) ?? a.type.tapqInfo(apxa: firmware.apxa, maxDomain: firmware.maxDomain)
    }

    /// The source reads its device's state in STOP_COPY: the shadow's APQNs
    /// (APID outer, APQI inner) with their TAPQ GR2 read now, and the shadow
    /// ADM. A queue without a TAPQ answer fails the read with ENODEV after
    /// the kernel's line. EINVAL outside STOP_COPY.
    ///
    /// The corresponding kernel functions are `vfio_ap_stop_copy_read`,
    /// `vfio_ap_get_config` and `get_hardware_info_for_queue`.
    public mutating func readDeviceState(_ name: String) throws(APError) -> [UInt8] {
        let (d, m) = try migratingDevice(name, in: .stopCopy)
        var queues: [VfioAPConfig.QueueInfo] = []
        for apqn in m.shadow.apqns {
            guard let info = tapq(apqn) else {
                events.append(.kernel("vfio_ap_mdev \(d.mdev): Failed to get hwinfo for queue \(apqn): TAPQ rc=1"))
                throw APError(.noSuchDevice, "vfio-ap device \(d.id): queue \(apqn) is not available (TAPQ response code 0x01)")
            }
            queues.append(.init(data: info, apqn: apqn))
        }
        return VfioAPConfig(adm: m.shadow.adm, queues: queues).encoded
    }

    /// The destination takes the source's configuration (the write that
    /// completed the stream in RESUMING): every APQN must be bound to
    /// vfio_ap here (ENODEV), every control domain in the LPAR (ENODEV),
    /// every queue's TAPQ compatible with the source's (EIO or ENODEV when
    /// TAPQ fails, EINVAL when incompatible; within a step every entry is
    /// checked and logged, and the last failure's errno is returned). Then
    /// the source's guest matrix replaces the mdev's assignment, as an
    /// `ap_config` write would, and is hot plugged into the stopped guest.
    ///
    /// The corresponding kernel functions are `do_post_copy_validation`,
    /// `setup_ap_matrix_from_ap_config` and `vfio_ap_set_new_guest_config`.
    public mutating func resumeDeviceState(_ name: String, _ config: VfioAPConfig) throws(APError) {
        let (d, _) = try migratingDevice(name, in: .resuming)
        let mdev = d.mdev
        let unavailable = config.queues.map(\.apqn).filter { !bus.isBoundToVfio($0) }
        for apqn in unavailable {
            events.append(.kernel("vfio_ap_mdev \(mdev): Queue \(apqn) not available to vfio_ap driver on target host"))
        }
        if let first = unavailable.first {
            throw APError(.noSuchDevice, "migration: queue \(first) is not bound to vfio_ap on this host\(unavailable.count > 1 ? " (and \(unavailable.count - 1) more)" : "")")
        }
        let missing = config.adm.subtracting(firmware.controlDomains)
        for q in missing {
            events.append(.kernel("vfio_ap_mdev: \(mdev): Control domain \(q) not available on the destination host"))
        }
        if let first = missing.first {
            throw APError(.noSuchDevice, "migration: control domain \(first) is not in this host's configuration")
        }
        var failure: APError?
        for q in config.queues {
            guard let target = tapq(q.apqn) else {
                events.append(.kernel("vfio_ap_mdev \(mdev): Failed to get hwinfo for queue \(q.apqn): TAPQ rc=1"))
                failure = APError(.noSuchDevice, "migration: queue \(q.apqn) is not available (TAPQ response code 0x01)")
                continue
            }
            let lines = TAPQInfo.incompatibilities(mdev: mdev, apqn: q.apqn, source: q.data, target: target)
            guard !lines.isEmpty else { continue }
            events += lines.map(Event.kernel)
            failure = APError(.invalidArgument, "migration: queue \(q.apqn) here (TAPQ \(target)) is not compatible with the source's (\(q.data))")
        }
        if let failure { throw failure }
        let new = Matrix(apm: Bitmap256(config.queues.map(\.apqn.apid)), aqm: Bitmap256(config.queues.map(\.apqn.apqi)),
                         adm: config.adm)
        try replaceAssignment(new, for: mdev, attr: "migration", cause: "migration stream of device \(d.id)")
    }

    /// The guest's device, open and in `state`; EINVAL otherwise.
    func migratingDevice(_ name: String, in state: VfioMigrationState) throws(APError) -> (VfioAPDevice, Mdev) {
        let g = try guest(name)
        guard let d = g.device, let m = vfio.mdevs[d.mdev], m.migrationState == state else {
            throw APError(.invalidArgument, "guest \(name): its vfio-ap device is not in migration state \(state.rawValue)")
        }
        return (d, m)
    }
}

extension TAPQInfo {
    /// The kernel's lines for a source queue whose TAPQ GR2 is not compatible
    /// with this host's, empty when compatible: the masked words are equal
    /// and both BS are 0, or else the facilities, mode, APXA and SLCF are
    /// equal, the source's AP type is not above the target's, the target has
    /// full native function if the source has, and both BS are 0. The lines
    /// keep the series' wording, typos included.
    ///
    /// The corresponding kernel functions are `queue_hardware_info_is_compatible`
    /// and `report_qinfo_incompatibilities`.
    static func incompatibilities(mdev: MdevUUID, apqn: APQN, source s: TAPQInfo, target t: TAPQInfo) -> [String] {
        let native: UInt64 = 0x80
        let classesOK = (s.classification & native) == (t.classification & native) || s.classification & native == 0
        if s.value & compatibilityMask == t.value & compatibilityMask && s.bs == 0 && t.bs == 0 { return [] }
        if s.apsc == t.apsc && s.mex4k == t.mex4k && s.crt4k == t.crt4k && s.cca == t.cca && s.accel == t.accel
            && s.ep11 == t.ep11 && s.slcf == t.slcf && s.apxa == t.apxa && s.apType <= t.apType && classesOK
            && s.bs == 0 && t.bs == 0 { return [] }
        let p = "vfio_ap_mdev \(mdev)"
        var lines = ["\(p): Migration failed: Source and target queue (\(apqn)) not compatible"]
        /// The pair for one facility: what the source has, then what the target lacks (or the mirror).
        func pair(_ src: Bool, _ dst: Bool, _ installed: (String, String), _ missing: (String, String)) {
            guard src != dst else { return }
            lines += src ? [installed.0, missing.1] : [missing.0, installed.1]
        }
        func facility(_ name: String, _ src: Bool, _ dst: Bool) {
            pair(src, dst, ("\(p): \(name) facility installed in source queue \(apqn)", "\(p): \(name) facility installed in target queue \(apqn)"),
                 ("\(p): \(name) facility not installed in source queue \(apqn)", "\(p): \(name) facility not installed in target queue \(apqn)"))
        }
        pair(s.apsc, t.apsc, ("\(p): APSC facility installed in source queue \(apqn)", "\(p) APSC facility installed in target queue \(apqn)"),
             ("\(p): APSC facility not installed in source queue \(apqn)", "\(p): APSC facility not installed in target queue \(apqn)"))
        facility("mex4k", s.mex4k, t.mex4k)
        facility("crt4k", s.crt4k, t.crt4k)
        pair(s.cca, t.cca, ("\(p): Coprocessor-mode facility installed in source queue \(apqn)", "\(p): Coprocessor-mode  facility installed target queue \(apqn)"),
             ("\(p): Coprocessor-mode facility not installed in source queue \(apqn)", "\(p): Coprocessor-mode  facility not installed target queue \(apqn)"))
        for (name, src, dst) in [("Accelerator-mode", s.accel, t.accel), ("XCP-mode", s.ep11, t.ep11)] {
            pair(src, dst, ("\(p): \(name) facility installed source queue \(apqn)", "\(p): \(name) facility installed target queue \(apqn)"),
                 ("\(p): \(name) facility not installed source queue \(apqn)", "\(p): \(name) facility not installed target queue \(apqn)"))
        }
        facility("AP-extended-addressing (APXA)", s.apxa, t.apxa)
        pair(s.slcf, t.slcf, ("\(p): Stateless-command-filtering (SLCF) available in source queue \(apqn)", "\(p): Stateless-command-filtering (SLCF) available in target queue \(apqn)"),
             ("\(p): Stateless-command-filtering (SLCF) not available in source queue \(apqn)", "\(p): Stateless-command-filtering (SLCF) not available in target queue \(apqn)"))
        if s.apType > t.apType {
            lines.append("\(p): AP type of source (\(hex(s.apType, digits: 2))) not compatible with target (\(hex(t.apType, digits: 2)))")
        }
        if s.bs != 0 || t.bs != 0 {
            lines.append("\(p): Bind/associate state for source (\(s.bs)) and target (\(t.bs)) queue \(apqn) must be 0")
        }
        if !classesOK {
            lines += ["\(p): Full native card function available on source queue \(apqn)",
                      "\(p): Only stateless functions available on target queue \(apqn)"]
        }
        return lines
    }
}
