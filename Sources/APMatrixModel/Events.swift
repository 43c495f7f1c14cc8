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
        }
    }

    /// true for the lines the real kernel prints, word for word.
    public var isKernelText: Bool {
        if case .kernel = self { return true }
        return false
    }
}
