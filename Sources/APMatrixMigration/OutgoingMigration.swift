import APMatrixModel
import APMatrixRuntime
import Dispatch
import FoundationEssentials
import Glibc

/// The source side of a migration, on a thread of its own (QEMU's
/// `migration_thread` and `source_return_path_thread`): connect, send the
/// guest's memory, stop the guest for switchover (waiting for
/// `migrate-continue` with `pause-before-switchover`), read the device's
/// state and send it, then, with a return path, wait for the destination's
/// `SHUT`. Every change of the guest is one model operation through the
/// runtime; the lock is never held while the thread waits.
enum OutgoingMigration {
    static func start(_ runtime: Runtime, guest: String, to uri: MigrationURI) {
        startThread { run(runtime, guest, uri) }
    }

    private static func run(_ runtime: Runtime, _ guest: String, _ uri: MigrationURI) {
        let (connected, failure) = TCP.connect(uri)
        guard let fd = connected else { return fail(runtime, guest, failure) }
        defer { close(fd) }
        guard let g = runtime.snapshot.guests[guest] else { return }
        let returnPath = g.capabilities.contains(.returnPath)
        if let e = TCP.writeAll(fd, MigrationStream.header(returnPath: returnPath)) { return fail(runtime, guest, e) }
        guard step(runtime, guest, "migration_connect", { (h: inout APHost) throws(APError) in try h.migrationConnected(guest) }) else { return }
        let memory = MigrationStream.section(MigrationStream.ram, MigrationStream.ramPayload(g.bus))
        if let e = TCP.writeAll(fd, memory) { return fail(runtime, guest, e) }

        // Switchover; with pause-before-switchover, wait for migrate-continue (or the guest's end).
        let waiter = StatusWaiter(runtime, guest)
        defer { waiter.cancel() }
        guard step(runtime, guest, "migration_switchover", { (h: inout APHost) throws(APError) in try h.migrationSwitchover(guest) }) else { return }
        if runtime.snapshot.guests[guest]?.migration.status == .preSwitchover { waiter.waitWhilePaused() }
        var device: [UInt8] = []
        do throws(APError) {
            device = try runtime.perform("migration_save_device") { (h: inout APHost) throws(APError) in try h.saveDeviceState(guest) }
        } catch {
            return fail(runtime, guest, "Error in migration completion: \(error.errno.description)")
        }
        let rest = MigrationStream.section(MigrationStream.vfio, MigrationStream.vfioPayload(device)) + [MigrationStream.sectionEOF]
        if let e = TCP.writeAll(fd, rest) { return fail(runtime, guest, e) }
        if returnPath, let e = awaitShut(fd) { return fail(runtime, guest, e) }
        _ = step(runtime, guest, "migration_complete") { (h: inout APHost, now: Uptime) throws(APError) in
            try h.completeMigration(guest, at: now)
        }
    }

    /// The destination's answer on the return path: nil for `SHUT(0)`;
    /// QEMU's `Sibling indicated error N` for an error flag; a return path
    /// that ends without `SHUT` (the destination died) fails the completion
    /// as an I/O error (docs/vfio-ap-migration-preview.md §8).
    private static func awaitShut(_ fd: Int32) -> String? {
        TCP.setReceiveTimeout(fd, seconds: 60)
        let r = StreamReader(fd: fd)
        while true {
            guard let type = r.uint(UInt16.self), let len = r.uint(UInt16.self), let data = r.bytes(Int(len)) else {
                return "Error in migration completion: Input/output error"
            }
            guard type == MigrationStream.shut else { continue }
            guard data.count == 4 else {
                return "Received 'SHUT' message (0x0001) withincorrect length \(len) expecting 4"
            }
            let flag = data.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return flag == 0 ? nil : "Sibling indicated error \(flag)"
        }
    }

    /// One model step at the host's time; false (the migration is over) when it is refused.
    private static func step(_ runtime: Runtime, _ guest: String, _ kind: String,
                             _ body: (inout APHost, Uptime) throws(APError) -> Void) -> Bool {
        do throws(APError) {
            try runtime.perform({ kind }, body)
            return true
        } catch {
            fail(runtime, guest, "Error in migration completion: \(error.errno.description)")
            return false
        }
    }

    private static func step(_ runtime: Runtime, _ guest: String, _ kind: String, _ body: (inout APHost) throws(APError) -> Void) -> Bool {
        step(runtime, guest, kind) { (h: inout APHost, _: Uptime) throws(APError) in try body(&h) }
    }

    static func fail(_ runtime: Runtime, _ guest: String, _ reason: String) {
        _ = try? runtime.perform({ "migration_failed" }) { (h: inout APHost, now: Uptime) throws(APError) in
            try h.failMigration(guest, reason, at: now)
        }
    }
}

/// Waits for a paused migration to go on: `migrate-continue` moves it to
/// `device`; a failure or the guest's end stops the wait.
final class StatusWaiter: Sendable {
    let semaphore = DispatchSemaphore(value: 0)
    let subscription: Subscription

    init(_ runtime: Runtime, _ guest: String) {
        let s = semaphore
        subscription = runtime.subscribe(after: nil) { entries in
            for e in entries {
                switch e.event {
                case let .migrationChanged(g, status, _) where g == guest && status != .preSwitchover: s.signal()
                case let .guestChanged(g, running) where g == guest && !running: s.signal()
                default: break
                }
            }
        }
    }

    /// Returns when the migration leaves `pre-switchover` (to `device`, or
    /// cancelled or failed: the next step then finds it so) or the guest stops.
    func waitWhilePaused() { semaphore.wait() }

    func cancel() { subscription.cancel() }
}
