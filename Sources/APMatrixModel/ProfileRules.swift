import SystemPackage

/// What happens to an mdev that a guest uses when `remove` is written.
enum RemoveInUse {
    /// EBUSY (the seed era; SPEC §3).
    case refuse
    /// The kernel asks user space to release the device (VFIO request);
    /// QEMU answers by unplugging it, then the removal completes.
    case requestRelease
}

/// A QEMU release, as QMP's `VersionTriple` has it.
public struct QEMUVersion: Sendable, Equatable {
    public let major: Int, minor: Int, micro: Int
}

/// Every rule on which the kernel profiles differ, in one place
/// (kernel-reference §9, docs/upstream-ap-bus.md). The rest of the model
/// asks these and never looks at the profile itself. `seed` is SPEC §3;
/// `upstream` is Linux 6.19 with QEMU 10.1 (to the 7.0 sources), including
/// 6.19's in-use check over all ids of the other axis (kernel-reference
/// says 6.18; docs/upstream-ap-bus.md corrects it).
struct ProfileRules {
    let profile: Profile
    /// The vfio-ap migration series is applied (`--preview vfio-ap-migration`, upstream only).
    var migration = false

    // MARK: errors and log lines

    /// A mask change that would newly reserve an assigned APQN (§9.1):
    /// vfio_ap says EADDRINUSE; the upstream AP bus turns it into EBUSY.
    var maskInUseErrno: Errno {
        switch profile {
        case .seed: return .addressInUse
        case .upstream: return .resourceBusy
        }
    }

    /// `create` when no instance is left (§9.17): vfio_ap's own counter
    /// (EPERM) in the seed era, the mdev core's (EUSERS) upstream.
    var instancesExhaustedErrno: Errno {
        switch profile {
        case .seed: return .notPermitted
        case .upstream: return .tooManyUsers
        }
    }

    /// `bind` of a device already bound (SPEC §1): ENODEV in the seed era,
    /// EBUSY from the 6.x driver core (`__driver_probe_device`).
    var bindBoundErrno: Errno {
        switch profile {
        case .seed: return .noSuchDevice
        case .upstream: return .resourceBusy
        }
    }

    /// The APQNs a mask change newly reserves (§9.3) are the newly set ids
    /// times this: the other mask (seed, ≤ 6.18), or every id (6.19+).
    func inUseScope<ID>(of otherMask: Bitmap256<ID>) -> Bitmap256<ID> {
        switch profile {
        case .seed: return otherMask
        case .upstream: return .all
        }
    }

    /// Which conflicting mdevs are reported: the seed logs every mdev that
    /// holds one, in creation order (SPEC §3); the kernel walks its list
    /// newest first and stops at the first (kernel-reference §2.4).
    func reported(_ conflicts: [MdevConflict]) -> [MdevConflict] {
        switch profile {
        case .seed: return conflicts.sorted { $0.mdev.serial < $1.mdev.serial }
        case .upstream: return conflicts.max { $0.mdev.serial < $1.mdev.serial }.map { [$0] } ?? []
        }
    }

    /// The log line for an APQN a mask change would take from `owner` (§9.2).
    func maskConflictLine(_ apqn: APQN, owner: MdevUUID) -> String {
        switch profile {
        case .seed: return "Userspace may not re-assign queue \(apqn) already assigned to \(owner)"
        case .upstream: return "vfio_ap_mdev \(owner): Can not reserve queue \(apqn) for host driver: in use by mdev"
        }
    }

    /// The log line for an APQN an assignment by `assignee` would share with `owner` (§9.2).
    func assignConflictLine(_ apqn: APQN, owner: MdevUUID, assignee: MdevUUID) -> String {
        switch profile {
        case .seed: return "Userspace may not re-assign queue \(apqn) already assigned to \(owner)"
        case .upstream:
            return "vfio_ap_mdev \(assignee): Userspace may not assign queue \(apqn) to mdev: already assigned to \(owner)"
        }
    }

    // MARK: what exists

    /// `ap_config`, the matrix device's `features` and the queues' `status`
    /// are upstream interfaces (§9.18).
    var hasUpstreamAttributes: Bool { profile == .upstream }

    /// The matrix device's `features` (`features_show`, vfio_ap_drv.c): none
    /// in the seed era; the series adds `migratable` (DRV-mig; apmatrix hosts
    /// are never SE guests themselves, so the SE variant is never printed).
    var matrixFeatures: String? {
        guard hasUpstreamAttributes else { return nil }
        return migration ? "guest_matrix hotplug ap_config migratable\n" : "guest_matrix hotplug ap_config\n"
    }

    /// The vfio-ap device has VFIO migration ops (`vfio_ap_init_migration_capabilities`)
    /// and QEMU's vfio-ap has the series' migration callbacks and properties.
    var deviceMigration: Bool { migration }

    /// `guest_matrix` without a guest: ENODEV in the seed, the shadow upstream (§9.11).
    var guestMatrixNeedsGuest: Bool { profile == .seed }

    /// `remove` while a guest uses the mdev (§9.16).
    var removeInUse: RemoveInUse {
        switch profile {
        case .seed: return .refuse
        case .upstream: return .requestRelease
        }
    }

    /// The seed computes the shadow when a guest opens the mdev and clears
    /// it at release; upstream maintains it from assignment on (§9.10).
    var shadowWithoutGuest: Bool { profile == .upstream }

    /// The seed's shadow has adapters and domains or neither; upstream keeps
    /// adapters without domains and domains whose adapters were all filtered (V9, V10).
    var shadowBothOrNeither: Bool { profile == .seed }

    /// Upstream resets a queue that leaves vfio_ap outside any shadow too (§4.5).
    var resetsQueueLeavingVfio: Bool { profile == .upstream }

    // MARK: the AP bus's interfaces (docs/upstream-ap-bus.md)

    /// `driver_override` on queues and `bindings_complete_count` on the bus
    /// are 6.19 interfaces (§1, §3).
    var hasLinux619BusInterfaces: Bool { profile == .upstream }

    /// How `poll_thread` and `poll_timeout` parse a write (§1).
    var pollParsing: PollParsing {
        switch profile {
        case .seed: return .sscanf
        case .upstream: return .kstrto
        }
    }

    /// Whether `poll_timeout` takes `ns`: the 5.x store refuses 0, 6.x takes
    /// 0; both refuse more than 120 s (§1).
    func acceptsPollTimeout(_ ns: UInt64) -> Bool {
        ns <= BusTimers.pollTimeoutLimit && (profile == .upstream || ns >= 1)
    }

    /// The variables of the AP bus's bindings-complete uevent: 6.x counts
    /// them in `COMPLETECOUNT`, the seed era (B513) does not (§2.3).
    func bindingsCompleteProperties(count: Int) -> [String] {
        switch profile {
        case .seed: return ["BINDINGS=complete"]
        case .upstream: return ["BINDINGS=complete", "COMPLETECOUNT=\(count)"]
        }
    }

    /// A mask write that changed the mask sends `APMASK=`/`AQMASK=` on 6.x
    /// (B515 on); the seed era (B513) sends none (§1, §2.3).
    var sendsMaskChangeUevents: Bool { profile == .upstream }

    /// A card's `config` write and a card's or queue's `online` write send
    /// `CONFIG=`/`ONLINE=` change events on 6.x (`ap_send_config_uevent`,
    /// `ap_send_online_uevent`); the seed era sends none (§2.3).
    var sendsStateUevents: Bool { profile == .upstream }

    /// `ap_uevent`'s variables for an AP card or queue of `type` (§2.1):
    /// 5.x gives cards and queues `DEV_TYPE` and `MODALIAS`; 6.x gives cards
    /// those and `MODE`, and queues `MODE` only.
    func apUeventKeys(isCard: Bool, type: AdapterType) -> [String] {
        let hex = String(type.hwtype, radix: 16, uppercase: true)
        let typeKeys = ["DEV_TYPE=" + String(repeating: "0", count: 4 - hex.utf8.count) + hex,
                        "MODALIAS=ap:t" + String(repeating: "0", count: 2 - hex.utf8.count) + hex]
        let mode = ["MODE=" + type.mode.ueventMode]
        switch profile {
        case .seed: return typeKeys
        case .upstream: return isCard ? typeKeys + mode : mode
        }
    }

    /// The mdev driver an mdev is bound to (docs/udev-libvirt.md §2.1 and
    /// its decision 5): the seed era's generic `vfio_mdev` (SPEC §2), 6.x's
    /// vendor driver `vfio_ap_mdev` (`vfio_ap_ops.c`, since 5.16).
    var mdevDriver: String {
        switch profile {
        case .seed: return "vfio_mdev"
        case .upstream: return "vfio_ap_mdev"
        }
    }

    // MARK: the VFIO device (§4)

    /// Every change of a running guest's CRYCB signals the config-change
    /// eventfd, which QEMU turns into an AP configuration change event
    /// (Linux 6.15, QEMU 10.1); the seed era has no such IRQ.
    var signalsConfigChange: Bool { profile == .upstream }

    /// The QEMU a guest's monitor reports (greeting, `query-version`): 8.2.0
    /// beside the seed-era kernel (the greeting clients.md recorded), 10.1.0
    /// upstream, whose config-change notification and migration it has.
    var qemuVersion: QEMUVersion {
        switch profile {
        case .seed: return QEMUVersion(major: 8, minor: 2, micro: 0)
        case .upstream: return QEMUVersion(major: 10, minor: 1, micro: 0)
        }
    }

    /// The VFIO device's IRQs: the request IRQ (index 0) and, 6.15+, the
    /// config-change IRQ (index 1).
    var vfioIRQs: [VfioIRQ] {
        switch profile {
        case .seed: return [.request]
        case .upstream: return [.request, .configChange]
        }
    }

    // MARK: the shadow CRYCB

    /// A full filtering of the assignment against the host.
    func filter(_ m: Matrix, host: APHost) -> Matrix {
        filterTrace(m, host: host.firmware.hostConfiguration, bound: host.bus.vfioBoundDomains(of:)).shadow
    }

    /// The filtering rule and how it got there, from its inputs alone: H and,
    /// per APID, the APQIs bound to vfio_ap.
    /// Seed (SPEC §3 "Filtering"; doc semantics of
    /// `vfio_ap_mdev_config_shadow_apcb`): by APID, then the APQI fallback;
    /// S.apm and S.aqm both empty or both not; S.adm = M.adm unfiltered.
    /// Upstream (`vfio_ap_mdev_filter_matrix`, `vfio_ap_mdev_filter_cdoms`):
    /// APIDs only, AQM filtered only by the host configuration, adapters
    /// without domains kept, S.adm = M.adm ∩ H.adm (§9.7–9.9).
    func filterTrace(_ m: Matrix, host h: Matrix, bound: (APID) -> Bitmap256<APQI>) -> FilterTrace {
        let candidates = Matrix(apm: m.apm & h.apm, aqm: m.aqm & h.aqm, adm: m.adm)
        let apids = candidates.apm, apqis = candidates.aqm
        let keptAdapters = Bitmap256(apids.filter { apqis.isSubset(of: bound($0)) })
        switch profile {
        case .seed:
            var s = Matrix(adm: m.adm)
            guard !apids.isEmpty, !apqis.isEmpty else { return FilterTrace(candidates: candidates, step: .outsideHost, shadow: s) }
            if !keptAdapters.isEmpty {
                s.apm = keptAdapters
                s.aqm = apqis
                return FilterTrace(candidates: candidates, step: .byAdapter, shadow: s)
            }
            let keptDomains = Bitmap256(apqis.filter { q in apids.allSatisfy { bound($0).contains(q) } })
            guard !keptDomains.isEmpty else { return FilterTrace(candidates: candidates, step: .nothingBound, shadow: s) }
            s.apm = apids
            s.aqm = keptDomains
            return FilterTrace(candidates: candidates, step: .byDomain, shadow: s)
        case .upstream:
            let s = Matrix(apm: keptAdapters, aqm: apqis, adm: m.adm & h.adm)
            return FilterTrace(candidates: candidates, step: apids.isEmpty ? .outsideHost : .byAdapter, shadow: s)
        }
    }

    /// The shadow a guest gets when it opens the mdev: the seed filters
    /// now; upstream pushes the shadow it keeps (no re-filtering at open).
    func atOpen(_ m: Matrix, shadow: Matrix, host: APHost) -> Matrix {
        switch profile {
        case .seed: return filter(m, host: host)
        case .upstream: return shadow
        }
    }

    /// The shadow after an id was assigned (`m` already has it).
    /// Seed: hot plug all or nothing (SPEC §3 "Hot plug"); upstream: a full
    /// re-filter of APM and AQM, which may also unplug other adapters (V11),
    /// and of the ADM only for a control domain (`vfio_ap_mdev_filter_cdoms`).
    func afterAssign(_ a: Assignment, _ m: Matrix, shadow s: Matrix, host: APHost) -> Matrix {
        switch (profile, a) {
        case (.seed, .adapter(let id)): return plugAdapter(id, into: s, assigned: m, host: host)
        case (.seed, .domain(let id)): return plugDomain(id, into: s, assigned: m, host: host)
        case (.seed, .controlDomain): return s.with(a, true)
        case (.upstream, .adapter), (.upstream, .domain): return filterMatrix(m, shadow: s, host: host)
        case (.upstream, .controlDomain):
            var out = s
            out.adm = m.adm & host.firmware.controlDomains
            return out
        }
    }

    /// The shadow after an id was unassigned. Seed: if S.apm or S.aqm
    /// becomes empty both do; upstream: only the bit goes, nothing is
    /// re-filtered (V15).
    func afterUnassign(_ a: Assignment, shadow s: Matrix) -> Matrix {
        switch a {
        case .adapter(let id): return unplug(adapters: Bitmap256([id]), from: s)
        case .domain(let id): return unplug(domains: Bitmap256([id]), from: s)
        case .controlDomain: return s.with(a, false)
        }
    }

    /// The shadow after queue `apqn` was newly bound to vfio_ap (probe).
    /// Seed: the adapter rule if its adapter is not plugged, then the
    /// domain rule; upstream: a full re-filter of APM and AQM (§9.14).
    func afterProbe(_ apqn: APQN, _ m: Matrix, shadow s: Matrix, host: APHost) -> Matrix {
        switch profile {
        case .seed:
            var out = s
            if !out.apm.contains(apqn.apid) { out = plugAdapter(apqn.apid, into: out, assigned: m, host: host) }
            if !out.aqm.contains(apqn.apqi) { out = plugDomain(apqn.apqi, into: out, assigned: m, host: host) }
            return out
        case .upstream:
            return filterMatrix(m, shadow: s, host: host)
        }
    }

    /// Upstream `vfio_ap_mdev_filter_matrix` alone: APM and AQM filtered
    /// anew, the ADM as it was (only `vfio_ap_mdev_filter_cdoms` touches it,
    /// kernel-reference §4.2).
    func filterMatrix(_ m: Matrix, shadow s: Matrix, host: APHost) -> Matrix {
        var out = filter(m, host: host)
        out.adm = s.adm
        return out
    }

    /// The shadow after a firmware change of the host configuration. Both:
    /// removed adapters and domains leave first. Seed: the empty rule, then
    /// the adapter rule per added adapter and the domain rule per added
    /// domain, ascending; control domains are never host-filtered. Upstream
    /// (`vfio_ap_on_cfg_changed`, `vfio_ap_on_scan_complete`): a removed
    /// control domain stays in the guest (the `bitmap_andnot` quirk, §4.5),
    /// and an assigned addition re-filters.
    func afterFirmware(_ change: HostConfigChange, _ m: Matrix, shadow s: Matrix, host: APHost) -> Matrix {
        var out = unplug(adapters: change.removed.apm, domains: change.removed.aqm, from: s)
        switch profile {
        case .seed:
            for a in change.added.apm & m.apm { out = plugAdapter(a, into: out, assigned: m, host: host) }
            for q in change.added.aqm & m.aqm { out = plugDomain(q, into: out, assigned: m, host: host) }
        case .upstream:
            // Removed control domains: removed & ~assigned, which can never hit the shadow.
            out.adm = out.adm.subtracting(change.removed.adm.subtracting(m.adm))
            if change.added.apm.intersects(m.apm) || change.added.aqm.intersects(m.aqm) {
                out = filterMatrix(m, shadow: out, host: host)
            }
            if change.added.adm.intersects(m.adm) { out.adm = m.adm & host.firmware.controlDomains }
        }
        return out
    }

    /// The shadow after ids leave it (unassign, unbind, firmware removal).
    func unplug(adapters: Bitmap256<APID> = Bitmap256(), domains: Bitmap256<APQI> = Bitmap256(), from s: Matrix) -> Matrix {
        var out = s
        out.apm = out.apm.subtracting(adapters)
        out.aqm = out.aqm.subtracting(domains)
        if profile == .seed && (out.apm.isEmpty || out.aqm.isEmpty) {
            out.apm = Bitmap256()
            out.aqm = Bitmap256()
        }
        return out
    }

    /// Seed hot plug of adapter `a` (SPEC §3, seed "Hot plug support", all or nothing).
    func plugAdapter(_ a: APID, into s: Matrix, assigned m: Matrix, host: APHost) -> Matrix {
        let h = host.firmware.hostConfiguration
        guard h.apm.contains(a), !s.apm.contains(a) else { return s }
        let bound = host.bus.vfioBoundDomains(of: a)
        var out = s
        if s.aqm.isEmpty {
            let domains = m.aqm & h.aqm
            guard !domains.isEmpty, domains.isSubset(of: bound) else { return s }
            out.apm.insert(a)
            out.aqm = domains
        } else if s.aqm.isSubset(of: bound) {
            out.apm.insert(a)
        }
        return out
    }

    /// Seed hot plug of usage domain `q`: the adapter rule with the axes swapped.
    func plugDomain(_ q: APQI, into s: Matrix, assigned m: Matrix, host: APHost) -> Matrix {
        let h = host.firmware.hostConfiguration
        guard h.aqm.contains(q), !s.aqm.contains(q) else { return s }
        var out = s
        if s.apm.isEmpty {
            let adapters = m.apm & h.apm
            guard !adapters.isEmpty, adapters.allSatisfy({ host.bus.isBoundToVfio(APQN($0, q)) }) else { return s }
            out.aqm.insert(q)
            out.apm = adapters
        } else if s.apm.allSatisfy({ host.bus.isBoundToVfio(APQN($0, q)) }) {
            out.aqm.insert(q)
        }
        return out
    }
}
