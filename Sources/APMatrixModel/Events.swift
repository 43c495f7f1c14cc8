/// Something the emulated host did or said, in the order it happened.
/// The model produces events; the edges timestamp, log and publish them.
public enum Event: Hashable, Sendable {
    /// A line the kernel itself logs, in the kernel's words (dmesg).
    case kernel(String)
    /// What the AP bus or vfio_ap did, in this project's words.
    case note(String)
    /// A running guest's CRYCB changed (hot plug, hot unplug, attach, release).
    case crycbChanged(guest: String, before: Matrix, after: Matrix, cause: String)
    /// A queue was reset (zeroized) because it left a guest or an mdev.
    case queueReset(APQN, cause: String)
    /// A guest's vfio-ap device was plugged (`device_add`) or unplugged (`device_del`).
    case deviceChanged(guest: String, device: VfioAPDevice, plugged: Bool)
    /// A guest started or stopped.
    case guestChanged(guest: String, running: Bool)
    /// A scan of a guest's own AP bus created or removed devices (what the guest kernel sees).
    case guestBusChanged(guest: String, scan: Int, added: [String], removed: [String], cause: String)
    /// A queue's Secure Execution state in a guest changed: bound, unbound,
    /// associated, or lost when the host reset the queue.
    case seQueueChanged(guest: String, apqn: APQN, change: SEChange, cause: String)
    /// A uevent the host's kernel sent.
    case uevent(Uevent)
    /// A guest's migration changed status; `announce`: its QMP clients get
    /// `MIGRATION` (the `events` capability was on).
    case migrationChanged(guest: String, status: MigrationStatus, announce: Bool)
    /// A guest's vfio-ap device changed migration state; `announce`: its
    /// QMP clients get `VFIO_MIGRATION` (the device has `migration-events`).
    case vfioMigrationChanged(guest: String, device: VfioAPDevice, state: VfioMigrationState, announce: Bool)
    /// A guest's QEMU run state changed (QMP `STOP` and `RESUME`).
    case runStateChanged(guest: String, state: RunState)

    /// The line `dmesg` shows.
    public var line: String {
        switch self {
        case .kernel(let text), .note(let text):
            return text
        case let .crycbChanged(guest, before, after, cause):
            return "guest \(guest): CRYCB \(before.summary) -> \(after.summary) (\(cause))"
        case let .queueReset(apqn, cause):
            return "queue \(apqn) reset (zeroized): \(cause)"
        case let .deviceChanged(guest, device, plugged):
            return "guest \(guest): vfio-ap device \(device.id) (mdev \(device.mdev)) \(plugged ? "plugged" : "unplugged")"
        case let .guestChanged(guest, running):
            return "guest \(guest): \(running ? "started" : "stopped")"
        case let .guestBusChanged(guest, scan, added, removed, cause):
            func list(_ names: [String]) -> String { names.isEmpty ? "-" : names.joined(separator: " ") }
            return "guest \(guest): AP bus scan \(scan) (\(cause)): added \(list(added)); removed \(list(removed))"
        case let .seQueueChanged(guest, apqn, change, cause):
            return "guest \(guest): queue \(apqn) SE \(change) (\(cause))"
        case let .uevent(u):
            return "uevent " + u.summary
        case let .migrationChanged(guest, status, _):
            return "guest \(guest): migration \(status.rawValue)"
        case let .vfioMigrationChanged(guest, device, state, _):
            return "guest \(guest): vfio-ap device \(device.id) (mdev \(device.mdev)) migration state \(state.rawValue)"
        case let .runStateChanged(guest, state):
            return "guest \(guest): run state \(state.rawValue)"
        }
    }

    /// The kind of event, as the state file and the API name it.
    public var kind: String {
        switch self {
        case .kernel: return "kernel"
        case .note: return "note"
        case .crycbChanged: return "crycb"
        case .queueReset: return "reset"
        case .deviceChanged: return "device"
        case .guestChanged: return "guest"
        case .guestBusChanged: return "bus"
        case .seQueueChanged: return "se"
        case .uevent: return "uevent"
        case .migrationChanged: return "migration"
        case .vfioMigrationChanged: return "vfio-migration"
        case .runStateChanged: return "runstate"
        }
    }

    /// true for the lines the real kernel prints, word for word.
    public var isKernelText: Bool {
        if case .kernel = self { return true }
        return false
    }
}
