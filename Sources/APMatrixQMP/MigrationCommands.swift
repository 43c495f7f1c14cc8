import APMatrixModel
import APMatrixRuntime

/// QEMU's migration commands (qapi/migration.json, 10.1) on one guest's
/// monitor: `migrate`, `migrate_cancel`, `migrate-continue`, `migrate-incoming`,
/// `migrate-set-capabilities`, `query-migrate`, `query-migrate-capabilities`.
extension QMPCommands {
    static let migrationCommandNames = [
        "migrate", "migrate_cancel", "migrate-continue", "migrate-incoming", "migrate-set-capabilities", "query-migrate",
        "query-migrate-capabilities",
    ]

    /// QEMU 10.1's capability names, in its order; those this emulator acts on are `MigrationCapability`.
    static let capabilityNames = [
        "xbzrle", "rdma-pin-all", "auto-converge", "events", "postcopy-ram", "x-colo", "release-ram", "return-path",
        "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate",
        "x-ignore-shared", "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
        "switchover-ack", "dirty-limit", "mapped-ram",
    ]

    func runMigrationCommand(_ name: String, _ args: Args) throws(QMPFailure) -> QJSON {
        var args = args
        switch name {
        case "migrate":
            let uri = try args.optional("uri", .string)?.stringValue
            let channels = try args.optional("channels", .array)
            _ = try args.optional("detach", .boolean)
            let resume = try args.optional("resume", .boolean)
            try args.done()
            let address = try Self.address(uri, channels, of: name)
            if resume == .bool(true) { throw .generic("Cannot resume if there is no paused migration") }
            try migrate(address)
        case "migrate-incoming":
            let uri = try args.optional("uri", .string)?.stringValue
            let channels = try args.optional("channels", .array)
            let exitOnError = try args.optional("exit-on-error", .boolean)
            try args.done()
            let address = try Self.address(uri, channels, of: name)
            if exitOnError == .bool(false) {
                throw .generic("apmatrix emulates exit-on-error=true only: a failed load ends the destination's QEMU")
            }
            try listenIncoming(address)
        case "migrate_cancel":
            try args.done()
            try perform("qmp:migrate_cancel") { (h: inout APHost) throws(APError) in try h.cancelMigration(guest) }
        case "migrate-continue":
            let state = try args.required("state", .string).stringValue!
            try args.done()
            guard let s = MigrationStatus(rawValue: state) else { throw .generic("Parameter 'state' does not accept value '\(state)'") }
            try perform("qmp:migrate-continue") { (h: inout APHost) throws(APError) in try h.continueMigration(guest, from: s) }
        case "migrate-set-capabilities":
            let list = try args.required("capabilities", .array)
            try args.done()
            let changes = try capabilities(list)
            try perform("qmp:migrate-set-capabilities") { (h: inout APHost) throws(APError) in
                try h.setMigrationCapabilities(guest, changes)
            }
        case "query-migrate-capabilities":
            try args.done()
            let on = runtime.snapshot.guests[guest]?.capabilities ?? []
            return .array(Self.capabilityNames.map { n in
                .object([("capability", .string(n)), ("state", .bool(MigrationCapability(rawValue: n).map(on.contains) ?? false))])
            })
        default:
            try args.done()
            return queryMigrate()
        }
        return .object([])
    }

    /// The address of `migrate` or `migrate-incoming`: their `uri` (the
    /// `channels` form is QEMU's too, and not emulated).
    private static func address(_ uri: String?, _ channels: QJSON?, of command: String) throws(QMPFailure) -> String {
        if channels != nil {
            throw .generic(uri == nil ? "apmatrix emulates the 'uri' form of \(command) only" : "Need either 'uri' or 'channels' argument")
        }
        guard let uri else { throw .generic("Need either 'uri' or 'channels' argument") }
        return uri
    }

    /// `-incoming defer`'s destination listens on `text` (`Runtime.listenIncoming`).
    private func listenIncoming(_ text: String) throws(QMPFailure) {
        do throws(APError) {
            try runtime.listenIncoming(guest, on: try MigrationURI(parsing: text))
        } catch {
            throw .generic(error.message)
        }
    }

    /// Starts the migration; the connection and the stream run on their own
    /// (`Runtime.migrate`), the status shows in `query-migrate` and `MIGRATION`.
    private func migrate(_ text: String) throws(QMPFailure) {
        let guest = self.guest
        do throws(APError) {
            let uri = try MigrationURI(parsing: text)
            guard uri.port != 0 else { throw APError(.invalidArgument, "error parsing address '\(uri.host):0': port 0 cannot be connected to") }
            try runtime.migrate(guest, to: uri)
        } catch {
            throw .generic(error.message)
        }
    }

    private func capabilities(_ list: QJSON) throws(QMPFailure) -> [(MigrationCapability, Bool)] {
        guard case .array(let items) = list else { return [] }
        var out: [(MigrationCapability, Bool)] = []
        for (i, item) in items.enumerated() {
            guard case .object(let members) = item else {
                throw .generic("Invalid parameter type for 'capabilities[\(i)]', expected: object")
            }
            var a = Args(members)
            let name = try a.required("capability", .string).stringValue!
            guard case .bool(let on) = try a.required("state", .boolean) else { continue }
            try a.done()
            guard Self.capabilityNames.contains(name) else {
                throw .generic("Parameter 'capabilities[\(i)].capability' does not accept value '\(name)'")
            }
            guard let c = MigrationCapability(rawValue: name) else {
                if on { throw .generic("Capability '\(name)' is not emulated by apmatrix (it emulates events, return-path and pause-before-switchover)") }
                continue
            }
            out.append((c, on))
        }
        return out
    }

    /// `query-migrate` as `fill_source_migration_info` and
    /// `fill_destination_migration_info` shape it for each status.
    private func queryMigrate() -> QJSON {
        let h = runtime.snapshot
        guard let g = h.guests[guest] else { return .object([]) }
        let m = g.migration
        var out: [(String, QJSON)] = []
        if m.status != .none { out.append(("status", .string(m.status.rawValue))) }
        let now = runtime.clock.now()
        func ms(_ from: Uptime?, _ to: Uptime) -> QJSON { .int(from.map { max(0, Int(((to.seconds - $0.seconds) * 1000).rounded())) } ?? 0) }
        if m.incoming {
            if let uri = m.uri, let u = try? MigrationURI(parsing: uri) {
                out.append(("socket-address", .array([.object([("type", .string("inet")), ("host", .string(u.host)),
                                                               ("port", .string(String(u.port)))])])))
            }
        } else {
            switch m.status {
            case .active, .device, .preSwitchover, .cancelling, .completed:
                out.append(("setup-time", .int(0)))
                out.append(("total-time", ms(m.started, m.finished ?? now)))
                out.append(m.status == .completed ? ("downtime", ms(m.started, m.finished ?? now)) : ("expected-downtime", .int(300)))
                out.append(("ram", Self.emptyRAMStats))
                out.append(("vfio", .object([("transferred", .int(m.transferred))])))
            default:
                break
            }
            if m.status == .none, let reasons = try? h.migrationBlockers(guest), !reasons.isEmpty {
                out.append(("blocked-reasons", .array(reasons.map(QJSON.string))))
            }
        }
        if let e = m.errorDesc { out.append(("error-desc", .string(e))) }
        return .object(out)
    }

    /// `MigrationStats` of a guest without emulated memory pages.
    static let emptyRAMStats: QJSON = .object([
        "transferred", "remaining", "total", "duplicate", "normal", "normal-bytes", "dirty-pages-rate", "mbps",
        "dirty-sync-count", "postcopy-requests", "multifd-bytes", "pages-per-second", "precopy-bytes",
        "downtime-bytes", "postcopy-bytes", "dirty-sync-missed-zero-copy",
    ].map { ($0, QJSON.int(0)) } + [("page-size", .int(4096))])

    private func perform(_ kind: String, _ body: (inout APHost) throws(APError) -> Void) throws(QMPFailure) {
        do throws(APError) { try runtime.perform(kind, body) } catch { throw .generic(error.message) }
    }
}
