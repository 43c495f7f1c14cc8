import APMatrixModel

extension Runtime {
    // MARK: migration (QEMU's migration of one guest, GuestMigration.swift)

    /// QMP `migrate`: the model starts the migration (`setup`), then the
    /// edges run it by themselves; its progress shows in the guest's
    /// migration status and events.
    public func migrate(_ guest: String, to uri: MigrationURI) throws(APError) {
        try perform({ "migrate" }) { (h: inout APHost, now: Uptime) throws(APError) in
            try h.startMigration(guest, to: uri.description, at: now)
        }
        if let edges {
            edges.startOutgoing(self, guest: guest, to: uri)
        } else {
            _ = try? perform({ "migration_failed" }) { (h: inout APHost, now: Uptime) throws(APError) in
                try h.failMigration(guest, "this runtime has no migration channel", at: now)
            }
        }
    }

    /// Listens for the guest's incoming migration and records the bound
    /// address (`query-migrate`'s `socket-address`).
    func listenIncoming(_ guest: String, on uri: MigrationURI) throws(APError) {
        guard let edges else { throw APError(.notSupported, "this runtime has no migration channel") }
        let listener = try edges.listenIncoming(self, guest: guest, on: uri)
        attachments.withLock { $0[guest, default: GuestAttachments()].incoming = listener }
        try perform("migration_listen") { (h: inout APHost) throws(APError) in try h.listenIncoming(guest, on: listener.location) }
    }

    /// Waits until the guest's migration is no longer running (the CLI's
    /// `guest migrate --live`); returns its last state.
    public func awaitMigration(_ guest: String) async -> GuestMigration? {
        while let g = snapshot.guests[guest], g.migration.status.isRunning {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return snapshot.guests[guest]?.migration
    }
}
