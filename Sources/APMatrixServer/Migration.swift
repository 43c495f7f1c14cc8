import APMatrixModel
import APMatrixRuntime

/// Moving a guest to another emulated host (SPEC §4 "Live migration").
enum Migration {
    /// Refused for a Secure Execution guest (the model's rule) and while a
    /// vfio-ap device is attached, as the seed says; the target starts the
    /// guest with the same CPU model (checked against its own facilities),
    /// then the guest stops here. The target's token is the request's, else
    /// this daemon's user finds it as the CLI does.
    static func migrate(_ runtime: Runtime, _ name: String, _ r: MigrateRequest) async throws(APError) {
        let h = runtime.snapshot
        try h.checkMigratable(name)
        let g = try h.guest(name)
        if let d = g.device {
            throw APError(.resourceBusy,
                          "guest \(name) uses mdev \(d.mdev) (device \(d.id)): live migration is not supported while an AP device is attached; hot unplug it first (QMP device_del \(d.id), or guest detach-device), migrate, then plug an mdev of the target host")
        }
        _ = try await APIClient(server: r.to, token: r.token).startGuest(StartGuestRequest(name: name, cpu: g.cpu.description, qmp: r.qmp))
        try runtime.stopGuest(name)
    }
}
