/// QEMU's run state (`RunState`, qapi/run-state.json): those a guest here reaches.
public enum RunState: String, Sendable, Codable, CaseIterable {
    case running, inmigrate, postmigrate
    case finishMigrate = "finish-migrate"

    /// `query-status`'s `running`.
    public var isRunning: Bool { self == .running }
}

/// QEMU's `MigrationStatus` (qapi/migration.json, 10.1): those this
/// emulator's precopy migration passes.
public enum MigrationStatus: String, Sendable, Codable, CaseIterable {
    case none, setup, active, device, completed, failed, cancelling, cancelled
    case preSwitchover = "pre-switchover"

    /// `migration_is_running`: a migration in one of these states blocks another.
    public var isRunning: Bool { [.setup, .active, .device, .preSwitchover, .cancelling].contains(self) }
}

/// A migration capability (`MigrationCapability`); these three change what
/// this emulator does, the other names of QEMU 10.1 are accepted off.
public enum MigrationCapability: String, Sendable, Codable, CaseIterable {
    /// `MIGRATION` events for each status change.
    case events
    /// The destination answers on a return path, so a failure there fails the source.
    case returnPath = "return-path"
    /// The source stops in `pre-switchover` until `migrate-continue`.
    case pauseBeforeSwitchover = "pause-before-switchover"
}

/// A guest's migration as its QEMU keeps it (`MigrationState` on a source,
/// `MigrationIncomingState` on a destination started with `-incoming`).
/// Times are those of the events (as a bus timer's arming), never "now".
public struct GuestMigration: Hashable, Sendable, Codable {
    public internal(set) var status: MigrationStatus = .none
    /// `error-desc`.
    public internal(set) var errorDesc: String?
    /// `tcp:HOST:PORT`: where it goes, or (incoming) where it listens.
    public internal(set) var uri: String?
    /// A destination (`-incoming`).
    public internal(set) var incoming = false
    public internal(set) var started: Uptime?
    public internal(set) var finished: Uptime?
    /// The device state's bytes (`query-migrate`'s `vfio.transferred`).
    public internal(set) var transferred = 0
}

extension APHost {
    // MARK: the source (migration/migration.c)

    /// Why QEMU cannot migrate the guest now (`migration_is_blocked`): a
    /// Secure Execution guest (`s390_machine_protect`); a vfio-ap device of
    /// released QEMU (its vmsd is unmigratable); a device with
    /// `enable-migration=off` (`vfio_migration_realize`).
    public func migrationBlockers(_ name: String) throws(APError) -> [String] {
        let g = try guest(name)
        var out: [String] = []
        if g.secure { out.append("protected VMs are currently not migratable.") }
        if let d = g.device {
            if !rules.deviceMigration {
                out.append("State blocked by non-migratable device 'vfio-ap'")
            } else if d.enableMigration == .off {
                out.append("\(d.mdev): Migration is disabled for VFIO device")
            }
        }
        return out
    }

    /// QMP `migrate` on the source: refused while a migration runs, on a
    /// guest waiting for one or done with one, and with a blocker (its text,
    /// as QEMU answers); otherwise the migration is in `setup`.
    ///
    /// The corresponding QEMU functions are `qmp_migrate`, `migrate_prepare` and `migrate_init`.
    public mutating func startMigration(_ name: String, to uri: String, at now: Uptime) throws(APError) {
        let g = try guest(name)
        if g.migration.status.isRunning { throw APError(.resourceBusy, "There's a migration process in progress") }
        if g.runState == .inmigrate { throw APError(.invalidArgument, "Guest is waiting for an incoming migration") }
        if g.runState == .postmigrate {
            throw APError(.invalidArgument, "Can't migrate the vm that was paused due to previous migration")
        }
        if let blocker = try migrationBlockers(name).first { throw APError(.notSupported, blocker) }
        guests[name]?.migration = GuestMigration(status: .none, uri: uri, started: now)
        setMigrationStatus(name, .setup)
    }

    /// The connection to the destination is up: the migration is `active`
    /// (the guest's memory goes first).
    ///
    /// The corresponding QEMU function is `migration_connect`.
    public mutating func migrationConnected(_ name: String) throws(APError) {
        try expectStatus(name, .setup)
        setMigrationStatus(name, .active)
    }

    /// Switchover: the VM stops (`finish-migrate`, its device to STOP), then
    /// the migration waits in `pre-switchover` with that capability, or goes
    /// on to `device`.
    ///
    /// The corresponding QEMU functions are `migration_completion_precopy`,
    /// `migration_stop_vm` and `migration_switchover_prepare`.
    public mutating func migrationSwitchover(_ name: String) throws(APError) {
        let g = try expectStatus(name, .active)
        setRunState(name, .finishMigrate)
        if g.device != nil && rules.deviceMigration { try setDeviceMigrationState(name, .stop) }
        setMigrationStatus(name, g.capabilities.contains(.pauseBeforeSwitchover) ? .preSwitchover : .device)
    }

    /// QMP `migrate-continue`: the migration must be in `state`.
    ///
    /// The corresponding QEMU function is `qmp_migrate_continue`.
    public mutating func continueMigration(_ name: String, from state: MigrationStatus) throws(APError) {
        let g = try guest(name)
        guard g.migration.status == state, state == .preSwitchover else {
            throw APError(.invalidArgument, "Migration not in expected state: \(g.migration.status.rawValue)")
        }
        setMigrationStatus(name, .device)
    }

    /// The device's state for the stream: STOP_COPY, read, STOP. Empty
    /// without a migratable device.
    ///
    /// The corresponding QEMU functions are `vfio_save_complete_precopy` and `vfio_save_cleanup`.
    public mutating func saveDeviceState(_ name: String) throws(APError) -> [UInt8] {
        let g = try expectStatus(name, .device)
        guard g.device != nil, rules.deviceMigration else { return [] }
        try setDeviceMigrationState(name, .stopCopy)
        let bytes = try readDeviceState(name)
        try setDeviceMigrationState(name, .stop)
        guests[name]?.migration.transferred = bytes.count
        return bytes
    }

    /// The migration completed: the source stays `postmigrate`, and its
    /// vfio-ap device is closed: the mdev is released and the queues that
    /// left the guest are reset before anyone else may use them (SPEC §5
    /// across hosts; docs/vfio-ap-migration-preview.md §8).
    ///
    /// The corresponding QEMU function is `migration_completion_end`; the
    /// kernel's is `vfio_ap_mdev_close_device`.
    public mutating func completeMigration(_ name: String, at now: Uptime) throws(APError) {
        let g = try expectStatus(name, .device)
        guests[name]?.migration.finished = now
        setMigrationStatus(name, .completed)
        setRunState(name, .postmigrate)
        if let d = g.device { release(name, d, cause: "guest \(name) migrated", announce: false) }
    }

    /// The migration failed with `reason` (`error-desc`): a guest stopped
    /// for switchover runs again, its device back to RUNNING, its queues
    /// and CRYCB untouched. A cancelled migration ends here too, whatever
    /// stopped its thread: `cancelled` after the guest runs again, with no
    /// error (the stream's end was the cancel's own doing).
    ///
    /// The corresponding QEMU functions are `migrate_set_error`,
    /// `migration_iteration_finish`, `migration_cleanup` and `vfio_migration_state_notifier`.
    public mutating func failMigration(_ name: String, _ reason: String, at now: Uptime) throws(APError) {
        let g = try guest(name)
        guard g.migration.status.isRunning else { return }
        guests[name]?.migration.finished = now
        guard g.migration.status != .cancelling else {
            try resumeAfterSwitchover(g)
            setMigrationStatus(name, .cancelled)
            return
        }
        guests[name]?.migration.errorDesc = reason
        setMigrationStatus(name, .failed)
        try resumeAfterSwitchover(g)
    }

    /// QMP `migrate_cancel`: a running outgoing migration goes to
    /// `cancelling` (a paused one is woken), and its thread ends it
    /// (`failMigration`). Without one, on a destination, or already
    /// cancelling, nothing happens, as in QEMU.
    ///
    /// The corresponding QEMU function is `migration_cancel`.
    public mutating func cancelMigration(_ name: String) throws(APError) {
        let g = try guest(name)
        guard !g.migration.incoming, g.migration.status.isRunning, g.migration.status != .cancelling else { return }
        setMigrationStatus(name, .cancelling)
    }

    /// A guest stopped for switchover runs again, its device back to RUNNING.
    private mutating func resumeAfterSwitchover(_ g: Guest) throws(APError) {
        guard g.runState == .finishMigrate else { return }
        if g.device != nil && rules.deviceMigration { try setDeviceMigrationState(g.name, .running) }
        setRunState(g.name, .running)
    }

    /// `migrate-set-capabilities`: refused while an outgoing migration runs
    /// (QEMU's `migration_is_running` looks at the source side only, so a
    /// destination may set `events` while it waits).
    ///
    /// The corresponding QEMU function is `qmp_migrate_set_capabilities`.
    public mutating func setMigrationCapabilities(_ name: String, _ changes: [(MigrationCapability, Bool)]) throws(APError) {
        let g = try guest(name)
        if !g.migration.incoming && g.migration.status.isRunning {
            throw APError(.resourceBusy, "There's a migration process in progress")
        }
        var caps = g.capabilities
        for (c, on) in changes { if on { caps.insert(c) } else { caps.remove(c) } }
        guests[name]?.capabilities = caps
    }

    // MARK: the destination (`-incoming`)

    /// Whether the guest may start listening: it waits for a migration
    /// (`-incoming`) and listens nowhere yet (`-incoming defer`). A
    /// daemon restarted from its state listens again without this check.
    ///
    /// The corresponding QEMU function is `qmp_migrate_incoming`, whose texts these are.
    public func checkIncomingStart(_ name: String) throws(APError) {
        let g = try guest(name)
        guard g.runState == .inmigrate else { throw APError(.invalidArgument, "'-incoming' was not specified on the command line") }
        guard g.migration.uri == nil else { throw APError(.alreadyInProcess, "The incoming migration has already been started") }
    }

    /// The incoming side listens on `uri` (the bound address): `setup`.
    ///
    /// The corresponding QEMU function is `qemu_start_incoming_migration`.
    public mutating func listenIncoming(_ name: String, on uri: String, resuming: Bool = false) throws(APError) {
        if !resuming { try checkIncomingStart(name) }
        guests[name]?.migration.uri = uri
        setMigrationStatus(name, .setup)
    }

    /// The source connected: `active`; the guest's memory (its kernel's AP
    /// bus) is `ram`, loaded as it was on the source, its timers re-armed here.
    ///
    /// The corresponding QEMU function is `process_incoming_migration_co`.
    public mutating func loadIncomingMemory(_ name: String, bus: GuestBus, at now: Uptime) throws(APError) {
        let g = try incoming(name)
        if g.migration.status == .setup {
            guests[name]?.migration.started = now
            setMigrationStatus(name, .active)
        }
        var loaded = bus
        loaded.timers.recordScan(bus.timers.scans(at: bus.timers.timerArmed), at: now)
        guests[name]?.bus = loaded
    }

    /// The device section starts: the device goes to RESUMING.
    ///
    /// The corresponding QEMU function is `vfio_load_setup`.
    public mutating func beginDeviceLoad(_ name: String) throws(APError) {
        let g = try incoming(name)
        if g.migration.status == .setup { setMigrationStatus(name, .active) }
        guard g.device != nil else { throw APError(.invalidArgument, "guest \(name) has no vfio-ap device for the stream's device state") }
        try setDeviceMigrationState(name, .resuming)
    }

    /// The stream ended well: the device leaves RESUMING (a configuration
    /// that never completed is not applied, as in the series), the VM starts,
    /// the migration is `completed`.
    ///
    /// The corresponding QEMU functions are `vfio_load_cleanup` and
    /// `process_incoming_migration_bh`; the kernel's is `vfio_ap_set_state`.
    public mutating func completeIncoming(_ name: String, deviceBytes: Int, incomplete: Bool, at now: Uptime) throws(APError) {
        let g = try incoming(name)
        if let d = g.device, rules.deviceMigration {
            if incomplete {
                events.append(.note("vfio_ap: mdev \(d.mdev): the device state ended before the whole configuration arrived; the mdev keeps its configuration"))
            }
            try setDeviceMigrationState(name, .running)
        }
        guests[name]?.migration.transferred = deviceBytes
        guests[name]?.migration.finished = now
        setMigrationStatus(name, .completed)
        setRunState(name, .running)
    }

    /// The load failed with `reason`: QEMU reports it and exits (status 1),
    /// which closes the device (its queues are reset).
    ///
    /// The corresponding QEMU function is `process_incoming_migration_co`.
    public mutating func failIncoming(_ name: String, _ reason: String, at now: Uptime) throws(APError) {
        _ = try incoming(name)
        guests[name]?.migration.errorDesc = reason
        guests[name]?.migration.finished = now
        setMigrationStatus(name, .failed)
        events.append(.note("guest \(name): qemu-system-s390x: \(reason)"))
        events.append(.note("guest \(name): qemu-system-s390x exited with status 1"))
        try stopGuest(name)
    }

    // MARK: helpers

    func incoming(_ name: String) throws(APError) -> Guest {
        let g = try guest(name)
        guard g.runState == .inmigrate, g.migration.incoming else {
            throw APError(.invalidArgument, "guest \(name) does not wait for a migration")
        }
        return g
    }

    @discardableResult
    func expectStatus(_ name: String, _ status: MigrationStatus) throws(APError) -> Guest {
        let g = try guest(name)
        guard g.migration.status == status else {
            throw APError(.invalidArgument, "guest \(name): the migration is \(g.migration.status.rawValue), not \(status.rawValue)")
        }
        return g
    }

    mutating func setMigrationStatus(_ name: String, _ status: MigrationStatus) {
        guests[name]?.migration.status = status
        let announce = guests[name]?.capabilities.contains(.events) ?? false
        events.append(.migrationChanged(guest: name, status: status, announce: announce))
    }

    mutating func setRunState(_ name: String, _ state: RunState) {
        guard let old = guests[name]?.runState, old != state else { return }
        guests[name]?.runState = state
        events.append(.runStateChanged(guest: name, state: state))
    }
}

/// QEMU's `-incoming`: an address to listen on at start, or `defer`, whose
/// address comes later with QMP `migrate-incoming` (as libvirt starts every
/// destination).
public enum IncomingOption: Hashable, Sendable {
    case listen(MigrationURI)
    case deferred

    /// `defer` or a migration address (`MigrationURI`'s rules).
    public init(parsing text: String) throws(APError) {
        self = text == "defer" ? .deferred : .listen(try MigrationURI(parsing: text))
    }
}

/// A migration address as QEMU's `-incoming` and `migrate` take it:
/// `tcp:HOST:PORT`, HOST a name, an IPv4 address or `[IPv6]`. Other QEMU
/// transports (`unix:`, `exec:`, `fd:`, `file:`, `rdma:`, `vsock:`) are
/// known and not emulated; anything else is not a migration protocol.
public struct MigrationURI: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// EINVAL with QEMU's text for an unknown transport, ENOTSUP for one
    /// this emulator does not have, EINVAL for a bad host or port.
    public init(parsing text: String) throws(APError) {
        let known = ["unix", "exec", "fd", "file", "rdma", "vsock"]
        guard text.hasPrefix("tcp:") else {
            if let scheme = text.split(separator: ":").first.map(String.init), known.contains(scheme) {
                throw APError(.notSupported, "migration uri '\(text)': apmatrix emulates tcp:HOST:PORT only")
            }
            throw APError(.invalidArgument, "Parameter 'uri' expects a valid migration protocol")
        }
        let rest = text.dropFirst(4)
        guard let colon = rest.lastIndex(of: ":") else {
            throw APError(.invalidArgument, "error parsing address '\(rest)': tcp:HOST:PORT has no port")
        }
        var host = String(rest[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") }),
              let port = Int(rest[rest.index(after: colon)...]), (0...65535).contains(port) else {
            throw APError(.invalidArgument, "error parsing address '\(rest)': give tcp:HOST:PORT with a port 0-65535")
        }
        self.init(host: host, port: port)
    }

    /// `tcp:127.0.0.1:4446`, `tcp:[::1]:4446`.
    public var description: String { "tcp:" + (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }
}
