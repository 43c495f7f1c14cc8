import APMatrixModel
import APMatrixRuntime

/// Moving a guest to another emulated host (SPEC §4 "Live migration").
enum Migration {
    /// Refused for a Secure Execution guest (the model's rule). Without
    /// `live`, the seed's procedure: refused while a vfio-ap device is
    /// attached; the target starts the guest with the same CPU model
    /// (checked against its own facilities), then the guest stops here.
    /// With `live`, QEMU's: `migrate` over TCP (`live`). The target's token
    /// is the request's, else this daemon's user finds it as the CLI does.
    static func migrate(_ runtime: Runtime, _ name: String, _ r: MigrateRequest) async throws(APError) {
        let h = runtime.snapshot
        try h.checkMigratable(name)
        let g = try h.guest(name)
        if r.live == true { return try await live(runtime, g, r) }
        if let d = g.device {
            throw APError(.resourceBusy,
                          "guest \(name) uses mdev \(d.mdev) (device \(d.id)): live migration is not supported while an AP device is attached; hot unplug it first (QMP device_del \(d.id), or guest detach-device), migrate, then plug an mdev of the target host\(h.previews.contains(.vfioAPMigration) ? ", or migrate it with its device: guest migrate --live" : "")")
        }
        _ = try await APIClient(server: r.to, token: r.token).startGuest(StartGuestRequest(name: name, cpu: g.cpu.description, qmp: r.qmp))
        try runtime.stopGuest(name)
    }

    /// What a management tool does with two QEMUs (docs/vfio-ap-migration-preview.md,
    /// README "Live migration with the vfio-ap device"): the target starts
    /// the guest with `-incoming tcp:HOST:0` and the same device (the same
    /// mdev UUID must exist there), the source sets `return-path` and
    /// migrates to the address the target bound, and the answer waits for
    /// the end: `completed`, or the failure's `error-desc` (EIO) after the
    /// target's guest is gone.
    static func live(_ runtime: Runtime, _ g: Guest, _ r: MigrateRequest) async throws(APError) {
        if let blocker = try runtime.snapshot.migrationBlockers(g.name).first { throw APError(.notSupported, blocker) }
        let target = APIClient(server: r.to, token: r.token)
        let device = g.device.map { d in
            "vfio-ap,sysfsdev=\(d.sysfsdev),id=\(d.id)" + (d.enableMigration.map { ",enable-migration=\($0.rawValue)" } ?? "")
                + (d.migrationEvents.map { ",migration-events=\($0 ? "on" : "off")" } ?? "")
        }
        let started = try await target.startGuest(StartGuestRequest(name: g.name, cpu: g.cpu.description, device: device,
                                                                    qmp: r.qmp, incoming: "tcp:\(host(of: r.to)):0"))
        guard let bound = started.migration?.uri, let uri = try? MigrationURI(parsing: bound) else {
            try? await target.stopGuest(g.name)
            throw APError(.ioError, "the target started guest \(g.name) but reports no incoming address")
        }
        do throws(APError) {
            try runtime.perform("migrate-set-capabilities") { (h: inout APHost) throws(APError) in
                try h.setMigrationCapabilities(g.name, [(.returnPath, true)])
            }
            try runtime.migrate(g.name, to: uri)
        } catch {
            try? await target.stopGuest(g.name)
            throw error
        }
        let end = await runtime.awaitMigration(g.name)
        guard end?.status == .completed else {
            // A target that failed has exited (its QEMU's exit); one never reached still waits.
            try? await target.stopGuest(g.name)
            throw APError(.ioError, "migration of guest \(g.name) to \(uri) failed: \(end?.errorDesc ?? (end?.status == .cancelled ? "cancelled on its QMP monitor (migrate_cancel)" : "the guest stopped")); the target's log (apmatrix dmesg --server \(r.to)) says why")
        }
    }

    /// The host of the target's API URL, where its incoming guest listens (loopback for `unix:`).
    static func host(of url: String) -> String {
        guard let scheme = url.range(of: "://") else { return "127.0.0.1" }
        let rest = url[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" }
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.prefix { $0 != ":" })
    }
}
