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
        for g in guests where g.runState == .inmigrate {
            do throws(APError) {
                guard let uri = g.migration.uri else { throw APError(.invalidArgument, "no address to listen on") }
                try listenIncoming(g.name, on: try MigrationURI(parsing: uri))
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
