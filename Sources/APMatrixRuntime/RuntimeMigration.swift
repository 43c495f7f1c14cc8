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
    /// address (`query-migrate`'s `socket-address`): at a start with
    /// `-incoming URI`, for QMP `migrate-incoming` after `-incoming defer`,
    /// and (`resuming`) again after a restart.
    public func listenIncoming(_ guest: String, on uri: MigrationURI, resuming: Bool = false) throws(APError) {
        guard let edges else { throw APError(.notSupported, "this runtime has no migration channel") }
        // Checked before a socket is opened for nothing, and again under the lock with the bound address.
        if !resuming { try read { (h: borrowing APHost) throws(APError) in try h.checkIncomingStart(guest) } }
        let listener = try edges.listenIncoming(self, guest: guest, on: uri)
        do throws(APError) {
            try perform("migration_listen") { (h: inout APHost) throws(APError) in
                try h.listenIncoming(guest, on: listener.location, resuming: resuming)
            }
        } catch {
            listener.close()
            throw error
        }
        attachments.withLock { $0[guest, default: GuestAttachments()].incoming = listener }
    }

    /// After a restart from a state file: an outgoing migration that was
    /// running lost its connection with the daemon, so it fails and the
    /// guest runs on (its device back to RUNNING); a destination still
    /// waiting listens again on the address it had. Returns what could not
    /// be resumed.
    public func resumeMigrations() -> [String] {
        let guests = snapshot.guests.values.sorted { $0.name < $1.name }
        var failures: [String] = []
        for g in guests where g.migration.status.isRunning && !g.migration.incoming {
            _ = try? perform({ "migration_failed" }) { (h: inout APHost, now: Uptime) throws(APError) in
                try h.failMigration(g.name, "the migration was interrupted: apmatrix serve restarted", at: now)
            }
        }
        // A destination started with `-incoming defer` and no `migrate-incoming` yet listens nowhere.
        for g in guests where g.runState == .inmigrate {
            guard let uri = g.migration.uri else { continue }
            do throws(APError) {
                try listenIncoming(g.name, on: try MigrationURI(parsing: uri), resuming: true)
            } catch {
                failures.append("guest \(g.name): incoming migration: \(error.message)")
            }
        }
        return failures
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
