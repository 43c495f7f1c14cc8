import APMatrixModel

extension MonitorCore {
    /// The QMP event for a model event of this guest, if any: QEMU's
    /// `DEVICE_DELETED` whenever its device goes (device_del, the control
    /// API, a stop), and this project's downstream extension
    /// `__io.github.apmatrix_VFIO_AP_CFG_CHANGED` for every CRYCB change, so
    /// a client can wait for hot plug and unplug of adapters and domains;
    /// around a migration QEMU's `MIGRATION` (with the `events` capability),
    /// `VFIO_MIGRATION` (with the device's `migration-events`), `STOP` and `RESUME`.
    func translate(_ event: Event, device: inout VfioAPDevice?) -> QJSON? {
        let guest = commands.guest
        switch event {
        case let .deviceChanged(g, d, plugged) where g == guest:
            if plugged { device = d; return nil }
            device = nil
            return QMPCommands.event("DEVICE_DELETED", .object([
                ("device", .string(d.id)), ("path", .string("/machine/peripheral/\(d.id)")),
            ]))
        case let .crycbChanged(g, before, after, cause) where g == guest:
            func masks(_ m: Matrix) -> QJSON {
                .object([("apm", .array(m.apm.map { .int($0.value) })), ("aqm", .array(m.aqm.map { .int($0.value) })),
                         ("adm", .array(m.adm.map { .int($0.value) }))])
            }
            return QMPCommands.event(QMPCommands.configChangedEvent, .object([
                ("device", device.map { .string($0.id) } ?? .null), ("cause", .string(cause)),
                ("before", masks(before)), ("after", masks(after)),
            ]))
        case let .guestChanged(g, running) where g == guest && !running:
            device = nil
            return nil
        case let .migrationChanged(g, status, announce) where g == guest && announce:
            return QMPCommands.event("MIGRATION", .object([("status", .string(status.rawValue))]))
        case let .vfioMigrationChanged(g, d, state, announce) where g == guest && announce:
            return QMPCommands.event("VFIO_MIGRATION", .object([
                ("device-id", .string(d.id)), ("qom-path", .string("/machine/peripheral/\(d.id)")),
                ("device-state", .string(state.rawValue)),
            ]))
        case let .runStateChanged(g, state) where g == guest:
            // QEMU's `STOP` when the vCPUs stop, `RESUME` when they run again; neither has data.
            switch state {
            case .running: return QMPCommands.event("RESUME", nil)
            case .finishMigrate: return QMPCommands.event("STOP", nil)
            case .inmigrate, .postmigrate: return nil
            }
        default:
            return nil
        }
    }
}
