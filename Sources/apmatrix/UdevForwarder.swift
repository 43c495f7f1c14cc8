import APMatrixModel
import APMatrixRuntime
import APMatrixServer
import CNamespace
import Foundation
import Glibc

/// The udev side of `apmatrix exec --udev`: the helper makes a netlink
/// socket in COMMAND's new network namespace and hands it back over
/// `channel`; every uevent the daemon logs after `after` then goes out on
/// it as udevd sends it (`UdevMonitorMessage`, the log's sequence as
/// `SEQNUM`), in the log's order, to the `udev` group of that namespace
/// alone: multicast on a namespace's socket reaches only that namespace's
/// listeners, so the machine's udevd, systemd and libvirt never see them.
struct UdevForwarder: Sendable {
    let client: APIClient
    let after: Int
    let channel: Int32

    /// libudev's `udev` multicast group (`MONITOR_GROUP_UDEV`).
    static let udevGroup: UInt32 = 2

    /// Forwards until the daemon's stream ends or the task is cancelled;
    /// returns at once if the helper ended before handing the socket over
    /// (its refusal says why).
    func run() async {
        let channel = self.channel
        let netlink = await onThread { cnamespace_receive_fd(channel) }
        close(channel)
        guard netlink >= 0 else { return }
        defer { close(netlink) }
        do {
            for try await event in client.eventStream(after: after) {
                guard let u = event.uevent, let action = UeventAction(rawValue: u.action) else { continue }
                let uevent = Uevent(action: action, devpath: u.devpath, subsystem: u.subsystem, properties: u.properties)
                let message = UdevMonitorMessage.encode(uevent, sequence: event.sequence, initialized: Self.monotonicMicroseconds())
                _ = message.withUnsafeBytes { cnamespace_uevent_send(netlink, $0.baseAddress, $0.count, Self.udevGroup) }
            }
        } catch where !Task.isCancelled {
            writeLine(STDERR_FILENO, "apmatrix exec: the daemon's events no longer reach libudev: \(error)")
        } catch {}
    }

    /// `USEC_INITIALIZED`: when "udevd" handled the event, on CLOCK_MONOTONIC as udevd's.
    static func monotonicMicroseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000 + UInt64(t.tv_nsec) / 1000
    }
}

/// Runs a blocking call on a thread of its own, off Swift's cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in Thread { c.resume(returning: body()) }.start() }
}
