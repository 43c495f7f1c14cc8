// The VFIO device's interrupts and the AP configuration change notification
// (Linux 6.15 + QEMU 10.1, docs/upstream-ap-bus.md §4): vfio_ap signals the
// mdev's config-change eventfd at every push of a running guest's CRYCB;
// QEMU queues an AP configuration change event and raises a channel report
// word; the guest's CHSC store-event-information handler takes the event and
// its AP bus rescans at once.

/// An interrupt of the vfio-ap VFIO device (`include/uapi/linux/vfio.h`).
public enum VfioIRQ: Int, Sendable, CaseIterable, Codable {
    /// `VFIO_AP_REQ_IRQ_INDEX`: the kernel asks user space to release the device.
    case request = 0
    /// `VFIO_AP_CFG_CHG_IRQ_INDEX` (6.15): the guest's AP configuration changed.
    case configChange = 1

    /// How `guest show` names it.
    public var name: String {
        switch self {
        case .request: return "request"
        case .configChange: return "config change"
        }
    }
}

extension APHost {
    /// The VFIO IRQs QEMU registers for the guest's vfio-ap device (it asks
    /// for indexes 0 and 1), each with whether the kernel offers it: a
    /// kernel without index 1 makes QEMU only warn (`IRQ 1 not available`).
    /// Empty without a device.
    public func vfioIRQs(of guest: String) -> [(irq: VfioIRQ, wired: Bool)] {
        guard guests[guest]?.device != nil else { return [] }
        return VfioIRQ.allCases.map { ($0, rules.vfioIRQs.contains($0)) }
    }

    /// vfio_ap signals the guest's config-change eventfd: QEMU queues one AP
    /// configuration change event. Nothing where the kernel has no such IRQ.
    ///
    /// The corresponding kernel function is `signal_guest_ap_cfg_changed`.
    mutating func signalConfigChange(_ guest: String) {
        guard rules.signalsConfigChange, guests[guest]?.device != nil else { return }
        guests[guest]!.pendingConfigChanges += 1
    }

    /// Whether a guest has AP configuration change events to handle.
    /// A guest whose vCPUs are stopped (waiting for a migration) takes them when it runs.
    public var hasPendingConfigChanges: Bool { guests.values.contains { $0.pendingConfigChanges > 0 && $0.runState.isRunning } }

    /// Every guest handles its queued AP configuration change events at
    /// `now`: one CHSC store-event-information per event, each forcing a
    /// scan of its AP bus, which therefore sees the new CRYCB at once.
    ///
    /// The corresponding guest kernel functions are `chsc_process_sei_ap_cfg_chg`,
    /// `ap_bus_cfg_chg` and `ap_bus_force_rescan`.
    public mutating func handleConfigChanges(at now: Uptime) {
        for name in guests.keys.sorted() where guests[name]!.pendingConfigChanges > 0 && guests[name]!.runState.isRunning {
            let events = guests[name]!.pendingConfigChanges
            guests[name]!.pendingConfigChanges = 0
            for _ in 0..<events {
                let g = guests[name]!
                rescan(g, cause: "AP configuration change event", at: now, number: g.busScans(at: now) + 1)
            }
        }
    }
}
