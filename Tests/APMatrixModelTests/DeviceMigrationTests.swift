import APMatrixModel
import Foundation
import APMatrixTesting
import Testing

/// The vfio-ap migration preview in the model: the matrix device's
/// `features`, QEMU's blockers, the device's migration states, the source's
/// and the destination's steps, and the destination kernel's checks with the
/// series' lines (docs/vfio-ap-migration-preview.md).
@Suite struct DeviceMigrationTests {
    static let u = mdevA

    /// The seed example's LPAR (adapters 4-7, usage domains 0-15, 0x47,
    /// 0xab, 0xff, control domains 0-255), adapter 5 of `type5` (with
    /// `gr2` overriding its TAPQ), everything given to vfio_ap.
    static func host(preview: Bool = true, type5: String = "CEX8C", gr2: UInt64? = nil,
                     control: Bitmap256<APQI> = .all) throws -> APHost {
        let adapters = [(4, "CEX8C"), (5, type5), (6, "CEX8P"), (7, "CEX7C")].map {
            AdapterDescription(id: APID(integerLiteral: UInt8($0.0)), type: AdapterType($0.1)!, tapqGR2: $0.0 == 5 ? gr2 : nil)
        }
        let d = HostDescription(apxa: true, usageDomains: Bitmap256((0...15).map { APQI(integerLiteral: UInt8($0)) } + [0x47, 0xab, 0xff]),
                                controlDomains: control, apmask: Bitmap256(), aqmask: Bitmap256(), adapters: adapters)
        return try APHost(d, profile: .upstream, previews: preview ? [.vfioAPMigration] : [])
    }

    /// The source: mdev u with 05.0004, 05.0047 and control domain 4, guest g1 on it.
    static func source(device: VfioAPDevice? = nil) throws -> APHost {
        var h = try host()
        try h.mk(u, adapters: [5], domains: [4, 0x47], control: [4])
        let cpu = try CPUModel(parsing: "host", facilities: h.firmware.facilities)
        try h.startGuest("g1", cpu: cpu, device: device ?? VfioAPDevice(id: "hostdev0", mdev: u, sysfsdev: "/sys/devices/vfio_ap/matrix/\(u)"),
                         at: 1)
        try h.putHeldState("g1", APQN(5, 4), "key")
        _ = h.takeEvents()
        return h
    }

    /// A destination with mdev u (nothing assigned) and guest g1 waiting in `inmigrate`.
    static func destination(_ h: APHost) throws -> APHost {
        var h = h
        try h.mk(u)
        let cpu = try CPUModel(parsing: "host", facilities: h.firmware.facilities)
        try h.startGuest("g1", cpu: cpu, device: VfioAPDevice(id: "hostdev0", mdev: u, sysfsdev: "/sys/bus/mdev/devices/\(u)"),
                         incoming: true, at: 1)
        try h.listenIncoming("g1", on: "tcp:127.0.0.1:4446")
        try h.beginDeviceLoad("g1")
        _ = h.takeEvents()
        return h
    }

    static let sourceConfig = VfioAPConfig(adm: Bitmap256([APQI(4)]), queues: [
        .init(data: TAPQInfo(0x7280_0000_0eff_0007), apqn: APQN(5, 4)),
        .init(data: TAPQInfo(0x7280_0000_0eff_0007), apqn: APQN(5, 0x47)),
    ])

    @Test func featuresNameMigratableWithThePreviewOnly() throws {
        #expect(try Self.host().matrixFeatures == "guest_matrix hotplug ap_config migratable\n")
        #expect(try Self.host(preview: false).matrixFeatures == "guest_matrix hotplug ap_config\n")
        #expect(try makeHost(adapters: [5], domains: [4]).matrixFeatures == nil)
        let seed = try APHost(HostDescription.seedExample, profile: .seed, previews: [.vfioAPMigration])
        #expect(seed.previews.isEmpty && seed.matrixFeatures == nil)
    }

    @Test func blockersAreQEMUs() throws {
        var released = try Self.host(preview: false)
        try released.mk(Self.u, adapters: [5], domains: [4])
        let cpu = try CPUModel(parsing: "host", facilities: released.firmware.facilities)
        let plain = VfioAPDevice(id: "hostdev0", mdev: Self.u, sysfsdev: "/sys/bus/mdev/devices/\(Self.u)")
        #expect(errorOf { try released.plugDevice("none", plain) }?.errno.symbol == "ENOENT")
        let withProperty = try VfioAPDevice(sysfsdev: plain.sysfsdev, id: "hostdev0", properties: [("enable-migration", "on")])
        #expect(errorOf { try released.startGuest("g0", cpu: cpu, device: withProperty, at: 1) }
                == APError(.invalidArgument, "Property 'vfio-ap.enable-migration' not found (the series' QEMU has it: serve --preview vfio-ap-migration)"))
        try released.startGuest("g1", cpu: cpu, device: plain, at: 1)
        #expect(try released.migrationBlockers("g1") == ["State blocked by non-migratable device 'vfio-ap'"])
        #expect(errorOf { try released.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2) }
                == APError(.notSupported, "State blocked by non-migratable device 'vfio-ap'"))

        let off = try VfioAPDevice(sysfsdev: plain.sysfsdev, id: "hostdev0", properties: [("enable-migration", "off")])
        let h = try Self.source(device: off)
        #expect(try h.migrationBlockers("g1") == ["\(Self.u): Migration is disabled for VFIO device"])

        var se = try Self.host()
        try se.mk(Self.u, adapters: [5], domains: [4])
        try se.startGuest("s", cpu: cpu, device: plain, secure: true, at: 1)
        #expect(try se.migrationBlockers("s") == ["protected VMs are currently not migratable."])
        #expect(errorOf { try se.startGuest("d", cpu: cpu, device: nil, secure: true, incoming: true, at: 1) }?.errno.symbol == "EINVAL")
        #expect(errorOf { _ = try VfioAPDevice(sysfsdev: plain.sysfsdev, id: "d", properties: [("enable-migration", "maybe")]) }
                == APError(.invalidArgument, "Parameter 'enable-migration' does not accept value 'maybe'"))
    }

    /// The device's states (`vfio_ap_set_state`): every arc passes STOP,
    /// none touches the CRYCB; a closed device accepts RUNNING only.
    @Test func deviceStatesWalkThroughStop() throws {
        var h = try Self.source()
        let crycb = h.crycb(of: "g1")
        try h.setDeviceMigrationState("g1", .stopCopy)
        #expect(h.vfio.mdevs[Self.u]?.migrationState == .stopCopy)
        #expect(h.takeEvents().map(\.line) == ["guest g1: vfio-ap device hostdev0 (mdev \(Self.u)) migration state stop-copy"])
        try h.setDeviceMigrationState("g1", .running)
        #expect(h.crycb(of: "g1") == crycb)
        #expect(errorOf { _ = try h.readDeviceState("g1") }?.errno.symbol == "EINVAL")
        try h.stopGuest("g1")
        #expect(h.vfio.mdevs[Self.u]?.migrationState == nil)
        var idle = try Self.host()
        let cpu = try CPUModel(parsing: "host", facilities: idle.firmware.facilities)
        try idle.startGuest("bare", cpu: cpu, device: nil, at: 1)
        try idle.setDeviceMigrationState("bare", .running)
        #expect(errorOf { try idle.setDeviceMigrationState("bare", .stop) }?.errno.symbol == "ENODEV")
    }

    /// The source: setup, active, device (guest stopped, device STOP), the
    /// stream read in STOP_COPY, completed: postmigrate, the device closed,
    /// each queue reset once and its state gone.
    @Test func theSourceSendsItsConfigurationAndReleasesItsQueues() throws {
        var h = try Self.source()
        try h.setMigrationCapabilities("g1", [(.events, true)])
        try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2)
        #expect(errorOf { try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2) }
                == APError(.resourceBusy, "There's a migration process in progress"))
        #expect(errorOf { try h.setMigrationCapabilities("g1", [(.returnPath, true)]) }?.errno.symbol == "EBUSY")
        try h.migrationConnected("g1")
        try h.migrationSwitchover("g1")
        #expect(h.guests["g1"]?.runState == .finishMigrate && h.vfio.mdevs[Self.u]?.migrationState == .stop)
        let bytes = try h.saveDeviceState("g1")
        #expect(bytes == Self.sourceConfig.encoded)
        #expect(bytes.count == 72 && h.vfio.mdevs[Self.u]?.migrationState == .stop)
        try h.completeMigration("g1", at: 3)
        let g = try #require(h.guests["g1"])
        #expect(g.runState == .postmigrate && g.device == nil && g.migration.status == .completed && g.migration.transferred == 72)
        #expect(h.resets(5, 4) == 1 && h.resets(5, 0x47) == 1)
        #expect(h.firmware.records[APQN(5, 4)]?.heldState == nil)
        #expect(h.vfio.mdevs[Self.u]?.guest == nil)
        #expect(h.takeEvents().compactMap { e -> String? in
            if case let .migrationChanged(_, s, announce) = e { return "\(s.rawValue) \(announce)" }
            return nil
        } == ["setup true", "active true", "device true", "completed true"])
        #expect(h.checkInvariants().isEmpty)
        #expect(errorOf { try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 4) }
                == APError(.invalidArgument, "Can't migrate the vm that was paused due to previous migration"))
    }

    /// A failure after switchover runs the guest again; nothing else changes.
    @Test func aFailedMigrationLeavesTheSourceAsItWas() throws {
        var h = try Self.source()
        let crycb = h.crycb(of: "g1"), records = h.firmware.records
        try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2)
        try h.migrationConnected("g1")
        try h.migrationSwitchover("g1")
        _ = try h.saveDeviceState("g1")
        try h.failMigration("g1", "Sibling indicated error 1", at: 3)
        let g = try #require(h.guests["g1"])
        #expect(g.runState == .running && g.migration.status == .failed && g.migration.errorDesc == "Sibling indicated error 1")
        #expect(h.vfio.mdevs[Self.u]?.migrationState == .running && h.crycb(of: "g1") == crycb && h.firmware.records == records)
        #expect(h.checkInvariants().isEmpty)
    }

    /// `migrate_cancel` at pre-switchover: `cancelling` at once (a second
    /// cancel does nothing); the thread, finding the migration no longer in
    /// `device`, ends it: the guest and its device run again, then
    /// `cancelled`, with no error (QEMU's `migration_cancel`,
    /// `migration_iteration_finish`, `migration_cleanup`).
    @Test func cancelAtPreSwitchoverRunsTheGuestAgain() throws {
        var h = try Self.source()
        let crycb = h.crycb(of: "g1"), records = h.firmware.records
        try h.setMigrationCapabilities("g1", [(.pauseBeforeSwitchover, true), (.events, true)])
        try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2)
        try h.migrationConnected("g1")
        try h.migrationSwitchover("g1")
        _ = h.takeEvents()
        try h.cancelMigration("g1")
        try h.cancelMigration("g1")
        #expect(h.takeEvents() == [.migrationChanged(guest: "g1", status: .cancelling, announce: true)])
        #expect(h.checkInvariants().isEmpty, "stopped for switchover while cancelling is a state QEMU passes")
        #expect(errorOf { try h.continueMigration("g1", from: .preSwitchover) }
                == APError(.invalidArgument, "Migration not in expected state: cancelling"))
        #expect(errnoOf { _ = try h.saveDeviceState("g1") } == "EINVAL")
        #expect(errorOf { try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 3) }
                == APError(.resourceBusy, "There's a migration process in progress"))
        try h.failMigration("g1", "Error in migration completion: EINVAL", at: 3)
        let statuses = h.takeEvents().compactMap { e -> String? in
            switch e {
            case let .migrationChanged(_, status, _): return status.rawValue
            case let .runStateChanged(_, state): return "run " + state.rawValue
            default: return nil
            }
        }
        #expect(statuses == ["run running", "cancelled"])
        let g = try #require(h.guests["g1"])
        #expect(g.runState == .running && g.migration.status == .cancelled && g.migration.errorDesc == nil)
        #expect(h.vfio.mdevs[Self.u]?.migrationState == .running && h.crycb(of: "g1") == crycb && h.firmware.records == records)
        #expect(h.checkInvariants().isEmpty)
    }

    /// Without a migration, on a destination, or after one ended, `migrate_cancel` changes nothing.
    @Test func cancelWithoutARunningMigrationDoesNothing() throws {
        var h = try Self.source()
        try h.cancelMigration("g1")
        try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2)
        try h.failMigration("g1", "Failed to connect", at: 3)
        _ = h.takeEvents()
        try h.cancelMigration("g1")
        #expect(h.guests["g1"]?.migration.status == .failed)
        var d = try Self.destination(Self.host())
        let waiting = d.guests["g1"]?.migration
        try d.cancelMigration("g1")
        #expect(d.guests["g1"]?.migration == waiting && d.takeEvents().isEmpty && h.takeEvents().isEmpty)
        #expect(errorOf { try h.cancelMigration("g9") } == APError(.noSuchFileOrDirectory, "no guest named g9"))
    }

    /// `-incoming defer` listens nowhere until `migrate-incoming`; a second
    /// one, or one on a guest started without `-incoming`, is refused with
    /// QEMU's texts; a restarted daemon listens again without the check.
    @Test func deferredIncomingStartsOnce() throws {
        var h = try Self.host()
        try h.mk(Self.u)
        let cpu = try CPUModel(parsing: "host", facilities: h.firmware.facilities)
        try h.startGuest("g1", cpu: cpu, device: VfioAPDevice(id: "hostdev0", mdev: Self.u, sysfsdev: "/sys/bus/mdev/devices/\(Self.u)"),
                         incoming: true, at: 1)
        try h.startGuest("g2", cpu: cpu, device: nil, at: 1)
        #expect(h.guests["g1"]?.migration.status == MigrationStatus.none && h.guests["g1"]?.migration.uri == nil)
        #expect(errorOf { try h.checkIncomingStart("g2") }
                == APError(.invalidArgument, "'-incoming' was not specified on the command line"))
        try h.checkIncomingStart("g1")
        try h.listenIncoming("g1", on: "tcp:127.0.0.1:4446")
        #expect(h.guests["g1"]?.migration.status == .setup && h.guests["g1"]?.migration.uri == "tcp:127.0.0.1:4446")
        #expect(errorOf { try h.listenIncoming("g1", on: "tcp:127.0.0.1:4447") }
                == APError(.alreadyInProcess, "The incoming migration has already been started"))
        try h.listenIncoming("g1", on: "tcp:127.0.0.1:4446", resuming: true)
        #expect(h.checkInvariants().isEmpty)
    }

    /// `migrate-continue` needs the state it names (QEMU's text otherwise).
    @Test func continueNeedsPreSwitchover() throws {
        var h = try Self.source()
        try h.setMigrationCapabilities("g1", [(.pauseBeforeSwitchover, true)])
        try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2)
        #expect(errorOf { try h.continueMigration("g1", from: .preSwitchover) }
                == APError(.invalidArgument, "Migration not in expected state: setup"))
        try h.migrationConnected("g1")
        try h.migrationSwitchover("g1")
        #expect(h.guests["g1"]?.migration.status == .preSwitchover)
        try h.continueMigration("g1", from: .preSwitchover)
        #expect(h.guests["g1"]?.migration.status == .device)
    }

    /// The destination: the source's guest matrix replaces the mdev's
    /// assignment and is plugged into the stopped guest; when it runs, its
    /// AP bus takes the configuration change event at once.
    @Test func theDestinationTakesTheSourcesMatrix() throws {
        var h = try Self.destination(Self.host())
        #expect(h.guests["g1"]?.runState == .inmigrate && h.guests["g1"]?.bus.queues == [])
        try h.resumeDeviceState("g1", Self.sourceConfig)
        #expect(h.mx(Self.u) == "05.0004\n05.0047\n" && h.gm(Self.u) == "05.0004\n05.0047\n")
        #expect(h.vfio.mdevs[Self.u]?.matrix.adm == Bitmap256([APQI(4)]))
        #expect(h.guests["g1"]?.pendingConfigChanges == 1 && !h.hasPendingConfigChanges)
        try h.completeIncoming("g1", deviceBytes: 72, incomplete: false, at: 2)
        #expect(h.guests["g1"]?.runState == .running && h.guests["g1"]?.migration.status == .completed)
        h.handleConfigChanges(at: 2)
        #expect(h.guests["g1"]?.bus.queues == [APQN(5, 4), APQN(5, 0x47)])
        #expect(h.checkInvariants().isEmpty)
    }

    /// A stream that never completed leaves the mdev as it was (the series
    /// does not check at RESUMING -> STOP); a note says so.
    @Test func anIncompleteStreamChangesNothingButANote() throws {
        var h = try Self.destination(Self.host())
        let before = h.vfio.mdevs[Self.u]
        try h.completeIncoming("g1", deviceBytes: 40, incomplete: true, at: 2)
        #expect(h.vfio.mdevs[Self.u]?.matrix == before?.matrix)
        #expect(h.takeEvents().map(\.line).contains(
            "vfio_ap: mdev \(Self.u): the device state ended before the whole configuration arrived; the mdev keeps its configuration"))
    }

    /// The destination kernel's checks, in order, each logging every entry first.
    @Test(arguments: [
        // Older card: the AP type.
        ("CEX7C", nil as UInt64?, "EINVAL", ["AP type of source (0e) not compatible with target (0d)"]),
        // A newer card and a card with native function for a stateless source are fine.
        ("CEX8C", 0x7240_0000_0eff_0007, "EINVAL", ["Full native card function available on source queue 05.0004",
                                                     "Only stateless functions available on target queue 05.0004"]),
        ("CEX8C", 0xf280_0000_0eff_0007, "EINVAL", ["APSC facility not installed in source queue 05.0004",
                                                     "APSC facility installed in target queue 05.0004"]),
        ("CEX8C", 0x7280_4000_0eff_0007, "EINVAL", ["Bind/associate state for source (0) and target (1) queue 05.0004 must be 0"]),
        ("CEX8P", nil, "EINVAL", ["mex4k facility installed in source queue 05.0004", "mex4k facility not installed in target queue 05.0004",
                                   "crt4k facility installed in source queue 05.0004", "crt4k facility not installed in target queue 05.0004",
                                   "Coprocessor-mode facility installed in source queue 05.0004",
                                   "Coprocessor-mode  facility not installed target queue 05.0004",
                                   "XCP-mode facility not installed source queue 05.0004", "XCP-mode facility installed target queue 05.0004"]),
    ] as [(String, UInt64?, String, [String])])
    func incompatibleQueuesAreRefusedWithTheSeriesLines(type: String, gr2: UInt64?, errno: String, detail: [String]) throws {
        var h = try Self.destination(Self.host(type5: type, gr2: gr2))
        let before = HostState(h)
        #expect(errorOf { try h.resumeDeviceState("g1", Self.sourceConfig) }?.errno.symbol == errno)
        let p = "vfio_ap_mdev \(Self.u)"
        let lines = detail.map { $0.hasPrefix("APSC facility installed in target") ? "\(p) \($0)" : "\(p): \($0)" }
        #expect(h.takeEvents().map(\.line) == ["05.0004", "05.0047"].flatMap { apqn in
            ["\(p): Migration failed: Source and target queue (\(apqn)) not compatible"]
                + lines.map { $0.replacingOccurrences(of: "05.0004", with: apqn) }
        })
        #expect(HostState(h) == before)
    }

    @Test func compatibleQueuesMayBeNewerOrRicher() throws {
        for (type, gr2) in [("CEX8C", nil), ("CEX8C", 0x7280_0000_0eff_0007 as UInt64?)] {
            var h = try Self.destination(Self.host(type5: type, gr2: gr2))
            var older = Self.sourceConfig
            older.queues = older.queues.map { .init(data: TAPQInfo(0x7240_0000_0dff_0007), apqn: $0.apqn) }
            try h.resumeDeviceState("g1", older)
            #expect(h.gm(Self.u) == "05.0004\n05.0047\n")
        }
    }

    /// Queues not bound to vfio_ap here, and control domains the LPAR lacks: ENODEV after every line.
    @Test func unavailableQueuesAndControlDomainsAreENODEV() throws {
        var h = try Self.destination(Self.host())
        var config = Self.sourceConfig
        config.queues.append(.init(data: TAPQInfo(0x7280_0000_0eff_0007), apqn: APQN(9, 4)))
        #expect(errorOf { try h.resumeDeviceState("g1", config) }?.errno.symbol == "ENODEV")
        #expect(h.takeEvents().map(\.line) == ["vfio_ap_mdev \(Self.u): Queue 09.0004 not available to vfio_ap driver on target host"])
        var c = try Self.destination(Self.host(control: Bitmap256([APQI(1)])))
        #expect(errorOf { try c.resumeDeviceState("g1", Self.sourceConfig) }?.errno.symbol == "ENODEV")
        #expect(c.takeEvents().map(\.line) == ["vfio_ap_mdev: \(Self.u): Control domain 0004 not available on the destination host"])
    }

    /// The migration fields are saved with the guest and the mdev, and a
    /// state the kernel cannot reach is refused.
    @Test func migrationStateIsSavedAndChecked() throws {
        var h = try Self.source()
        try h.setMigrationCapabilities("g1", [(.events, true), (.returnPath, true)])
        try h.startMigration("g1", to: "tcp:127.0.0.1:4446", at: 2)
        try h.migrationConnected("g1")
        try h.migrationSwitchover("g1")
        _ = h.takeEvents()
        _ = h.takeChanges()
        let back = try JSONDecoder().decode(APHost.self, from: JSONEncoder().encode(h))
        #expect(back == h)
        #expect(back.previews == [.vfioAPMigration] && back.guests["g1"]?.runState == .finishMigrate)
        #expect(back.vfio.mdevs[Self.u]?.migrationState == .stop)
        var doc = try JSONSerialization.jsonObject(with: JSONEncoder().encode(h)) as! [String: Any]
        var mdevs = doc["mdevs"] as! [[String: Any]]
        mdevs[0]["guest"] = nil
        doc["mdevs"] = mdevs
        var guests = doc["guests"] as! [[String: Any]]
        guests[0]["device"] = nil
        doc["guests"] = guests
        let broken = try JSONSerialization.data(withJSONObject: doc)
        let e = try #require(errorOfDecoding(broken))
        #expect(e.contains("migration-state: mdev \(Self.u) has migration state stop while closed"))
    }

    func errorOfDecoding(_ data: Data) -> String? {
        do {
            _ = try JSONDecoder().decode(APHost.self, from: data)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
