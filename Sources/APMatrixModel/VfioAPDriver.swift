// vfio_ap as an AP bus driver: the callbacks through which the AP bus talks
// to it (`in_use`, `probe`, `remove`, `on_config_changed`), and how its
// shadows follow and reach the guests' CRYCBs.
extension APHost {
    // MARK: the AP driver callbacks

    /// vfio_ap's `in_use` callback: which of these APQNs, about to be
    /// reserved for the host, mdevs have assigned, as the profile reports
    /// them; each one is logged in the profile's words. Empty: not in use.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_resource_in_use`.
    mutating func vfioInUse(_ apqns: Matrix) -> [MdevConflict] {
        guard vfio.anyAssigned(apqns) else { return [] }
        let conflicts = rules.reported(vfio.conflicts(with: apqns, except: nil))
        for c in conflicts {
            for apqn in c.apqns { events.append(.kernel(rules.maskConflictLine(apqn, owner: c.mdev.uuid))) }
        }
        return conflicts
    }

    /// vfio_ap's probe callback for a queue newly bound to vfio_ap (mask
    /// change or `bind`): the shadow of the mdev that has it assigned
    /// follows `ProfileRules.afterProbe`.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_probe_queue`.
    mutating func vfioProbe(_ apqn: APQN, cause: String) {
        guard let m = vfio.owner(of: apqn), rules.shadowWithoutGuest || m.guest != nil else { return }
        setShadow(m.uuid, rules.afterProbe(apqn, m.matrix, shadow: m.shadow, host: self), cause: cause)
    }

    /// vfio_ap's remove callback for a queue leaving vfio_ap outside a
    /// firmware change (unbind, mask change): a queue in a shadow unplugs
    /// its whole adapter; upstream also resets a queue outside any shadow.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_remove_queue`.
    mutating func vfioRemove(_ apqn: APQN, cause: String) {
        if let m = vfio.owner(of: apqn), m.shadow.contains(apqn) {
            setShadow(m.uuid, rules.unplug(adapters: Bitmap256([apqn.apid]), from: m.shadow), cause: cause)
        } else if rules.resetsQueueLeavingVfio {
            reset(apqn, cause: cause)
        }
    }

    /// vfio_ap's configuration-change callbacks, after the bus scanned the
    /// new configuration: the shadow of every mdev that has one follows
    /// `ProfileRules.afterFirmware` (removals first, then additions).
    ///
    /// The corresponding kernel functions are `vfio_ap_on_cfg_changed` and
    /// `vfio_ap_on_scan_complete`.
    mutating func vfioConfigChanged(_ change: HostConfigChange, cause: String) {
        for m in mdevsWithShadow {
            setShadow(m.uuid, rules.afterFirmware(change, m.matrix, shadow: m.shadow, host: self), cause: cause)
        }
    }

    // MARK: shadow and CRYCB

    /// Replaces an mdev's shadow: logs the CRYCB change of its guest and
    /// signals its config-change eventfd, records who holds its queues, and
    /// resets every queue that left the shadow.
    ///
    /// The corresponding kernel function is `vfio_ap_mdev_update_guest_apcb`.
    mutating func setShadow(_ uuid: MdevUUID, _ new: Matrix, cause: String) {
        guard let m = vfio.mdevs[uuid], new != m.shadow else { return }
        let old = m.shadow
        vfio.mdevs[uuid]?.shadow = new
        if let g = m.guest {
            pushCRYCB(g, from: old, to: new, cause: cause)
            signalConfigChange(g)
        }
        for apqn in old.apqns where !new.contains(apqn) { reset(apqn, cause: "left the shadow: \(cause)") }
    }

    /// KVM rewrites a guest's CRYCB (`kvm_arch_crypto_set_masks`): the
    /// change is logged and the queues that arrive hold the guest's state from now on.
    mutating func pushCRYCB(_ guest: String, from old: Matrix, to new: Matrix, cause: String) {
        guard old != new else { return }
        events.append(.crycbChanged(guest: guest, before: old, after: new, cause: cause))
        for apqn in new.apqns where !old.contains(apqn) {
            firmware.records[apqn, default: QueueRecord()].holdsStateOf = guest
        }
    }
}
