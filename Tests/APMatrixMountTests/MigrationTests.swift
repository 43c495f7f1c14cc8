// Live migration with the vfio-ap device attached (`--preview
// vfio-ap-migration`, docs/vfio-ap-migration-preview.md): two `serve`
// processes, the device state over a real TCP connection between them,
// driven over QMP by qemu.qmp as a management tool drives two QEMUs.

import Foundation
import Glibc
import Testing
import APMatrixTesting

/// Two emulated hosts with the preview, each with mdev `MigrationPair.uuid`
/// and every queue given to vfio_ap; on the source the mdev has adapter 5,
/// domains 4 and 0x47, control domain 4, and guest g1 runs with it.
final class MigrationPair {
    static let uuid = "62177883-f1bb-47f0-914d-32a22e3a8804"
    let source: ServeProcess
    let target: ServeProcess
    let dirs: [String]

    /// `targetHost`: the target's host file (JSON text), default the seed example.
    init(targetHost: String? = nil, sourceArguments: [String] = ["--preview", "vfio-ap-migration"], device: String = "") throws {
        let base = try makeTempDir()
        dirs = [base]
        let seed = packageRoot() + "/hosts/seed-example.json"
        var targetFile = seed
        if let targetHost {
            targetFile = base + "/target.json"
            try targetHost.write(toFile: targetFile, atomically: true, encoding: .utf8)
        }
        source = try ServeProcess(host: seed, profile: "upstream", arguments: sourceArguments)
        do {
            target = try ServeProcess(host: targetFile, profile: "upstream", arguments: ["--preview", "vfio-ap-migration"])
        } catch {
            source.finish(guestDirs: [])
            throw error
        }
        for s in [source, target] {
            guard writeAttr(s.sys + "/bus/ap/apmask", "0x0") == .ok,
                  writeAttr(s.sys + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", Self.uuid) == .ok else {
                throw TestFailure("cannot set up \(s.server)")
            }
        }
        for (attr, v) in [("assign_adapter", "5"), ("assign_domain", "4"), ("assign_domain", "0x47"), ("assign_control_domain", "4")] {
            guard writeAttr(mdev(source, attr), v) == .ok else { throw TestFailure("\(attr) \(v) on the source") }
        }
        let dev = "vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/\(Self.uuid),id=hostdev0" + device
        let start = try source.cli("guest start g1 --device \(dev) --qmp \(q(sourceQMP))")
        guard start.status == 0 else { throw TestFailure("guest start on the source: \(start)") }
        guard try source.cli("guest put-state g1 05.0004 key-of-g1").status == 0 else { throw TestFailure("put-state") }
    }

    var sourceQMP: String { dirs[0] + "/src.qmp" }
    var targetQMP: String { dirs[0] + "/dst.qmp" }
    var targetTree: String { dirs[0] + "/dst-sys" }

    func mdev(_ s: ServeProcess, _ attr: String) -> String { s.sys + "/devices/vfio_ap/matrix/\(Self.uuid)/\(attr)" }

    /// Starts the destination guest (`-incoming tcp:127.0.0.1:0`) and returns the address it bound.
    func startDestination(device: String = "") throws -> String {
        try startDestination(incoming: "tcp:127.0.0.1:0", device: device)
        guard let m = try api(target, "guests/g1")["migration"] as? [String: Any], let uri = m["uri"] as? String else {
            throw TestFailure("the destination reports no address")
        }
        return uri
    }

    /// Starts the destination guest with `-incoming INCOMING` (`defer`: it listens nowhere yet).
    func startDestination(incoming: String, device: String = "") throws {
        let dev = "vfio-ap,sysfsdev=/sys/bus/mdev/devices/\(Self.uuid),id=hostdev0" + device
        let r = try target.cli("guest start g1 --incoming \(incoming) --device \(dev) --qmp \(q(targetQMP)) --sysfs-mount \(q(targetTree))")
        guard r.status == 0 else { throw TestFailure("guest start --incoming: \(r)") }
    }

    /// GET /api/v1/PATH as JSON.
    func api(_ s: ServeProcess, _ path: String) throws -> [String: Any] {
        let r = sh("curl -sf \(q(s.server + "/api/v1/" + path))")
        guard r.status == 0, let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("GET \(path): \(r)")
        }
        return o
    }

    /// Each queue's reset count (`GET /queues`).
    func resets(_ s: ServeProcess) throws -> [String: Int] {
        let r = sh("curl -sf \(q(s.server + "/api/v1/queues"))")
        guard let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else {
            throw TestFailure("GET /queues: \(r)")
        }
        return Dictionary(uniqueKeysWithValues: list.map { ($0["apqn"] as! String, $0["resets"] as! Int) })
    }

    /// The host's log lines without their time stamps.
    func dmesg(_ s: ServeProcess) throws -> [String] {
        try s.cli("dmesg").stdout.split(separator: "\n").map { line in
            String(line.split(separator: "]", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces)
        }
    }

    /// Runs Tests/migration/drive_migration.py; its lines by kind.
    func drive(_ config: [String: Any]) throws -> [(kind: String, value: Any)] {
        let py = try python(modules: ["qemu.qmp"])
        let json = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
        let r = sh("\(q(py)) \(q(packageRoot() + "/Tests/migration/drive_migration.py")) \(q(json))", timeout: 60)
        guard r.status == 0 else { throw TestFailure("drive_migration.py: \(r)") }
        return try r.stdout.split(separator: "\n").map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return (o.keys.first!, o.values.first!)
        }
    }

    func finish() {
        source.finish(guestDirs: [])
        target.finish(guestDirs: [targetTree])
        for d in dirs { _ = sh("rm -rf \(q(d))") }
    }
}

/// The `MIGRATION` statuses among the source's events.
func migrationStatuses(_ lines: [(kind: String, value: Any)], _ kind: String = "src_event") -> [String] {
    lines.filter { $0.kind == kind }.compactMap { l in
        let e = l.value as! [String: Any]
        return e["event"] as? String == "MIGRATION" ? (e["data"] as! [String: Any])["status"] as? String : nil
    }
}

/// `query-status`'s answer as `STATUS running=BOOL`.
func qmpStatus(_ v: Any?) -> String {
    let d = v as? [String: Any]
    return "\(d?["status"] as? String ?? "-") running=\(d?["running"] as? Bool ?? false)"
}

func result(_ lines: [(kind: String, value: Any)]) -> [String: Any] {
    lines.last { $0.kind == "result" }?.value as? [String: Any] ?? [:]
}

extension MountTests {
    @Suite struct Migration {
        static let u = MigrationPair.uuid

        @Test func qemuQMPMigratesTheGuestWithItsQueues() throws {
            let pair = try MigrationPair(device: ",migration-events=on")
            defer { pair.finish() }
            #expect(cat(pair.source.sys + "/devices/vfio_ap/matrix/features") == "guest_matrix hotplug ap_config migratable\n")
            let before = try pair.resets(pair.source)
            let uri = try pair.startDestination()
            let lines = try pair.drive(["src": pair.sourceQMP, "dst": pair.targetQMP, "uri": uri, "caps": ["events", "return-path"]])
            #expect(qmpStatus(lines.first { $0.kind == "dst_status_before" }?.value) == "inmigrate running=false")
            #expect(migrationStatuses(lines) == ["setup", "active", "device", "completed"])
            let vfio = lines.filter { $0.kind == "src_event" }.map { $0.value as! [String: Any] }
                .filter { $0["event"] as? String == "VFIO_MIGRATION" }.map { $0["data"] as! [String: String] }
            #expect(vfio == [
                ["device-id": "hostdev0", "qom-path": "/machine/peripheral/hostdev0", "device-state": "stop"],
                ["device-id": "hostdev0", "qom-path": "/machine/peripheral/hostdev0", "device-state": "stop-copy"],
                ["device-id": "hostdev0", "qom-path": "/machine/peripheral/hostdev0", "device-state": "stop"],
            ])
            let stop = lines.first { ($0.value as? [String: Any])?["event"] as? String == "STOP" }?.value as? [String: Any]
            #expect(stop?["has_data"] as? Bool == false)
            // The destination (events set while it waited, after its setup): active, the hot plug
            // of the stream's matrix into the stopped guest (this project's event), completed, RESUME.
            #expect(migrationStatuses(lines, "dst_event") == ["active", "completed"])
            #expect(lines.filter { $0.kind == "dst_event" }.compactMap { ($0.value as? [String: Any])?["event"] as? String }
                    == ["MIGRATION", "__io.github.apmatrix_VFIO_AP_CFG_CHANGED", "MIGRATION", "RESUME"])
            let res = result(lines)
            let migrated = res["src_migrate"] as! [String: Any]
            #expect(migrated["status"] as? String == "completed")
            #expect((migrated["vfio"] as? [String: Int])?["transferred"] == 72)
            #expect(qmpStatus(res["src_status"]) == "postmigrate running=false")
            #expect(qmpStatus(res["dst_status"]) == "running running=true")
            #expect((res["dst_migrate"] as? [String: Any])?["status"] as? String == "completed")

            // The target: its guest_matrix, matrix and CRYCB have the queues; its guest tree lists them at once.
            #expect(cat(pair.mdev(pair.target, "guest_matrix")) == "05.0004\n05.0047\n")
            #expect(cat(pair.mdev(pair.target, "matrix")) == "05.0004\n05.0047\n")
            #expect(cat(pair.mdev(pair.target, "control_domains")) == "0004\n")
            #expect(listDir(pair.targetTree + "/devices/ap")?.sorted() == ["card05"])
            #expect(listDir(pair.targetTree + "/devices/ap/card05")?.filter { $0.hasPrefix("05.") }.sorted() == ["05.0004", "05.0047"])

            // The source: every queue that left the guest was reset once, the state it held dropped.
            let after = try pair.resets(pair.source)
            #expect(after["05.0004"] == (before["05.0004"] ?? 0) + 1)
            #expect(after["05.0047"] == (before["05.0047"] ?? 0) + 1)
            let guest = try pair.api(pair.source, "guests/g1")
            #expect(guest["runState"] as? String == "postmigrate")
            #expect(guest["device"] == nil && guest["heldState"] == nil)
            let log = try pair.dmesg(pair.source)
            #expect(log.contains("queue 05.0004 reset (zeroized): released: guest g1 migrated"))
            #expect(log.contains("queue 05.0047 reset (zeroized): released: guest g1 migrated"))
        }

        /// A target whose queues differ: older cards, another mode, a GR2
        /// that differs in a compared bit (SLCF). The target's kernel logs
        /// the series' lines, its QEMU exits; the source (with return-path)
        /// fails with QEMU's `Sibling indicated error 1` and runs on with its
        /// device, CRYCB, queues and their state untouched.
        @Test(arguments: [
            ("CEX7C", nil, ["vfio_ap_mdev \(u): AP type of source (0e) not compatible with target (0d)"]),
            ("CEX8A", nil, [
                "vfio_ap_mdev \(u): Coprocessor-mode facility installed in source queue 05.0004",
                "vfio_ap_mdev \(u): Coprocessor-mode  facility not installed target queue 05.0004",
                "vfio_ap_mdev \(u): Accelerator-mode facility not installed source queue 05.0004",
                "vfio_ap_mdev \(u): Accelerator-mode facility installed target queue 05.0004",
            ]),
            ("CEX8C", "0x73800000" + "0eff0007", [
                "vfio_ap_mdev \(u): Stateless-command-filtering (SLCF) not available in source queue 05.0004",
                "vfio_ap_mdev \(u): Stateless-command-filtering (SLCF) available in target queue 05.0004",
            ]),
        ] as [(String, String?, [String])])
        func anIncompatibleTargetFailsTheSourceWhichRunsOn(type: String, gr2: String?, detail: [String]) throws {
            let adapter5 = "{ \"id\": 5, \"type\": \"\(type)\"" + (gr2.map { ", \"tapqGR2\": \"\($0)\"" } ?? "") + " }"
            let host = """
                { "apxa": true, "domains": "0-15,0x47,0xab,0xff", "controlDomains": "0-255",
                  "adapters": [ { "id": 4, "type": "CEX8C" }, \(adapter5), { "id": 6, "type": "CEX8P" } ] }
                """
            let pair = try MigrationPair(targetHost: host)
            defer { pair.finish() }
            let before = try pair.resets(pair.source)
            let uri = try pair.startDestination()
            let lines = try pair.drive(["src": pair.sourceQMP, "dst": pair.targetQMP, "uri": uri, "caps": ["events", "return-path"]])
            #expect(migrationStatuses(lines) == ["setup", "active", "device", "failed"])
            let res = result(lines)
            #expect(res["src_migrate"] as? [String: String] == ["status": "failed", "error-desc": "Sibling indicated error 1"])
            #expect(qmpStatus(res["src_status"]) == "running running=true")

            // The target's log: per queue the header line and the detail lines, then QEMU's exit.
            let log = try pair.dmesg(pair.target)
            for apqn in ["05.0004", "05.0047"] {
                let header = "vfio_ap_mdev \(Self.u): Migration failed: Source and target queue (\(apqn)) not compatible"
                let i = try #require(log.firstIndex(of: header))
                #expect(Array(log[(i + 1)...].prefix(detail.count)) == detail.map { $0.replacingOccurrences(of: "05.0004", with: apqn) })
            }
            #expect(log.contains("guest g1: qemu-system-s390x: load of migration failed: Invalid argument"))
            #expect(log.contains("guest g1: qemu-system-s390x exited with status 1"))
            #expect(try pair.target.cli("guest list").stdout.contains("g1") == false)

            // The source runs on unharmed.
            #expect(cat(pair.mdev(pair.source, "guest_matrix")) == "05.0004\n05.0047\n")
            #expect(try pair.resets(pair.source) == before)
            let guest = try pair.api(pair.source, "guests/g1")
            #expect(guest["runState"] as? String == "running")
            #expect((guest["device"] as? [String: Any])?["id"] as? String == "hostdev0")
            #expect(guest["heldState"] as? [String: String] == ["05.0004": "key-of-g1"])
        }

        /// Without `return-path` the source cannot learn that the destination
        /// failed: it reports `completed`, as QEMU does.
        @Test func withoutReturnPathTheSourceReportsCompleted() throws {
            let host = """
                { "apxa": true, "domains": "0-15,0x47,0xab,0xff", "controlDomains": "0-255",
                  "adapters": [ { "id": 5, "type": "CEX7C" } ] }
                """
            let pair = try MigrationPair(targetHost: host)
            defer { pair.finish() }
            let uri = try pair.startDestination()
            let lines = try pair.drive(["src": pair.sourceQMP, "dst": pair.targetQMP, "uri": uri, "caps": ["events"]])
            #expect(migrationStatuses(lines) == ["setup", "active", "device", "completed"])
            #expect(try pair.dmesg(pair.target).contains("guest g1: qemu-system-s390x: load of migration failed: Invalid argument"))
        }

        /// The destination daemon dies while the source is paused before
        /// switchover (the stream is open, the memory sent): the source fails
        /// and keeps its device and queues.
        @Test func killingTheDestinationMidStreamFailsTheSourceWhichKeepsItsDevice() throws {
            let pair = try MigrationPair()
            defer { pair.finish() }
            let before = try pair.resets(pair.source)
            let uri = try pair.startDestination()
            let lines = try pair.drive(["src": pair.sourceQMP, "uri": uri, "caps": ["events", "return-path", "pause-before-switchover"],
                                        "kill_pid": Int(pair.target.process.pid)])
            #expect(migrationStatuses(lines) == ["setup", "active", "pre-switchover", "device", "failed"])
            let res = result(lines)
            let desc = (res["src_migrate"] as? [String: String])?["error-desc"]
            #expect(["Error in migration completion: Input/output error", "Unable to write to socket: Broken pipe",
                     "Unable to write to socket: Connection reset by peer"].contains(desc ?? ""))
            #expect(qmpStatus(res["src_status"]) == "running running=true")
            #expect(cat(pair.mdev(pair.source, "guest_matrix")) == "05.0004\n05.0047\n")
            #expect(try pair.resets(pair.source) == before)
            #expect((try pair.api(pair.source, "guests/g1")["device"] as? [String: Any])?["id"] as? String == "hostdev0")
        }

        /// The destination as libvirt starts it: `-incoming defer`, then QMP
        /// `migrate-incoming` (a second one refused with QEMU's text); the
        /// source migrates to the port it bound, and the guest arrives with
        /// its queues.
        @Test func deferredIncomingListensOnMigrateIncoming() throws {
            let pair = try MigrationPair()
            defer { pair.finish() }
            try pair.startDestination(incoming: "defer")
            let waiting = try #require(try pair.api(pair.target, "guests/g1")["migration"] as? [String: Any])
            #expect(waiting["status"] as? String == "none" && waiting["uri"] == nil && waiting["incoming"] as? Bool == true)
            let lines = try pair.drive(["src": pair.sourceQMP, "dst": pair.targetQMP, "incoming": "tcp:127.0.0.1:0",
                                        "caps": ["events", "return-path"]])
            #expect(lines.filter { $0.kind == "incoming" }.count == 1)
            #expect(lines.first { $0.kind == "incoming_again_error" }?.value as? String == "The incoming migration has already been started")
            let listening = try #require(lines.first { $0.kind == "dst_listening" }?.value as? [String: Any])
            #expect(listening["status"] as? String == "setup")
            #expect(migrationStatuses(lines) == ["setup", "active", "device", "completed"])
            #expect(qmpStatus(result(lines)["dst_status"]) == "running running=true")
            #expect(cat(pair.mdev(pair.target, "guest_matrix")) == "05.0004\n05.0047\n")
        }

        /// `migrate-incoming` on a guest that was not started with `-incoming`: QEMU's refusal.
        @Test func migrateIncomingNeedsIncoming() throws {
            let pair = try MigrationPair()
            defer { pair.finish() }
            let py = try python(modules: ["qemu.qmp"])
            let script = """
                import asyncio, sys
                from qemu.qmp import QMPClient, ExecuteError
                async def main():
                    c = QMPClient("src")
                    await c.connect(sys.argv[1])
                    try:
                        await c.execute("migrate-incoming", {"uri": "tcp:127.0.0.1:0"})
                    except ExecuteError as e:
                        print(e.error.error.desc)
                    try:
                        await c.execute("migrate-incoming", {"uri": "tcp:127.0.0.1:0", "exit-on-error": False})
                    except ExecuteError as e:
                        print(e.error.error.desc)
                    await c.disconnect()
                asyncio.run(main())
                """
            let r = sh("\(q(py)) -c \(q(script)) \(q(pair.sourceQMP))", timeout: 30)
            #expect(r.stdout == "'-incoming' was not specified on the command line\n"
                    + "apmatrix emulates exit-on-error=true only: a failed load ends the destination's QEMU\n", "\(r)")
        }

        /// `migrate_cancel` at pre-switchover (twice, the second a no-op):
        /// cancelling, the guest runs again (RESUME), cancelled; the source
        /// keeps its device, queues and CRYCB; the destination's stream ends
        /// early, so its QEMU reports the failed load and exits.
        @Test func migrateCancelAtPreSwitchoverKeepsTheGuestOnTheSource() throws {
            let pair = try MigrationPair()
            defer { pair.finish() }
            let before = try pair.resets(pair.source)
            let uri = try pair.startDestination()
            let lines = try pair.drive(["src": pair.sourceQMP, "dst": pair.targetQMP, "uri": uri,
                                        "caps": ["events", "return-path", "pause-before-switchover"], "cancel": true])
            #expect(migrationStatuses(lines) == ["setup", "active", "pre-switchover", "cancelling", "cancelled"])
            let events = lines.filter { $0.kind == "src_event" }.compactMap { ($0.value as? [String: Any])?["event"] as? String }
            #expect(events.filter { $0 != "MIGRATION" } == ["STOP", "RESUME"])
            #expect(lines.filter { $0.kind == "cancel" || $0.kind == "cancel_again" }.count == 2)
            let res = result(lines)
            #expect(res["src_migrate"] as? [String: String] == ["status": "cancelled"])
            #expect(qmpStatus(res["src_status"]) == "running running=true")
            #expect(res["dst_gone"] != nil, "the destination's QEMU should have exited: \(res)")
            #expect(cat(pair.mdev(pair.source, "guest_matrix")) == "05.0004\n05.0047\n")
            #expect(try pair.resets(pair.source) == before)
            #expect(try pair.dmesg(pair.target).contains("guest g1: qemu-system-s390x: load of migration failed: Input/output error"))
        }

        /// No destination listening: QEMU's connect error; the guest runs on.
        @Test func noDestinationListeningFailsAtConnect() throws {
            let pair = try MigrationPair()
            defer { pair.finish() }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            let port = Int(UInt16(bigEndian: a.sin_port))
            close(fd)   // bound once, now closed: nothing listens there
            let lines = try pair.drive(["src": pair.sourceQMP, "uri": "tcp:127.0.0.1:\(port)", "caps": ["events"]])
            #expect(migrationStatuses(lines) == ["setup", "failed"])
            #expect(result(lines)["src_migrate"] as? [String: String]
                    == ["status": "failed", "error-desc": "Failed to connect to '127.0.0.1:\(port)': Connection refused"])
            #expect(qmpStatus(result(lines)["src_status"]) == "running running=true")
        }

        /// Refusals that QEMU answers to `migrate` at once (its blockers).
        @Test func blockersRefuseMigrateAtOnce() throws {
            // Released QEMU and kernel: the vfio-ap device is not migratable.
            let released = try MigrationPair(sourceArguments: [])
            defer { released.finish() }
            #expect(cat(released.source.sys + "/devices/vfio_ap/matrix/features") == "guest_matrix hotplug ap_config\n")
            var lines = try released.drive(["src": released.sourceQMP, "uri": "tcp:127.0.0.1:1", "caps": []])
            #expect(lines.first { $0.kind == "migrate_error" }?.value as? String == "State blocked by non-migratable device 'vfio-ap'")
            let plug = try released.source.cli("guest start g2 --device vfio-ap,sysfsdev=/sys/bus/mdev/devices/\(Self.u),id=d,enable-migration=on")
            #expect(plug.status != 0 && plug.stderr.contains("Property 'vfio-ap.enable-migration' not found"))

            // The series' QEMU with enable-migration=off.
            let off = try MigrationPair(device: ",enable-migration=off")
            defer { off.finish() }
            lines = try off.drive(["src": off.sourceQMP, "uri": "tcp:127.0.0.1:1", "caps": []])
            #expect(lines.first { $0.kind == "migrate_error" }?.value as? String == "\(Self.u): Migration is disabled for VFIO device")

            // A Secure Execution guest: QEMU's protected-VM blocker.
            let se = off.dirs[0] + "/se.qmp"
            #expect(try off.source.cli("guest start se --secure --qmp \(q(se))").status == 0)
            lines = try off.drive(["src": se, "uri": "tcp:127.0.0.1:1", "caps": []])
            #expect(lines.first { $0.kind == "migrate_error" }?.value as? String == "protected VMs are currently not migratable.")
        }

        /// `guest migrate --live`: the CLI drives it all (the target's guest
        /// started with -incoming, QMP migrate with return-path, the wait).
        @Test func guestMigrateLiveMovesTheGuest() throws {
            let pair = try MigrationPair()
            defer { pair.finish() }
            let token = try String(contentsOfFile: pair.target.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let r = try pair.source.cli("guest migrate g1 --to \(pair.target.server) --to-token \(token) --live")
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout == "guest g1 migrated to \(pair.target.server)\n")
            #expect(try pair.api(pair.source, "guests/g1")["runState"] as? String == "postmigrate")
            #expect(try pair.api(pair.target, "guests/g1")["runState"] as? String == "running")
            #expect(cat(pair.mdev(pair.target, "guest_matrix")) == "05.0004\n05.0047\n")
        }

        /// The migration is part of the guest's saved state: a restarted
        /// source still has its guest postmigrate with the migration's
        /// outcome, and it must be started with the preview it was booted with.
        @Test func aRestartedSourceKeepsTheMigrationsOutcome() throws {
            let state = try makeTempDir() + "/state.db"
            defer { _ = sh("rm -rf \(q(URL(fileURLWithPath: state).deletingLastPathComponent().path))") }
            let pair = try MigrationPair(sourceArguments: ["--preview", "vfio-ap-migration", "--state", state])
            defer { pair.finish() }
            let token = try String(contentsOfFile: pair.target.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try pair.source.cli("guest migrate g1 --to \(pair.target.server) --to-token \(token) --live").status == 0)
            pair.source.finish(guestDirs: [])

            let dir = try makeTempDir()
            let refused = try startServe(dir + "/sys", profile: "upstream", arguments: ["--state", state])
            #expect(refused.reap(timeout: 30) == 1)
            #expect(refused.stderrText.contains("holds a host booted with --preview vfio-ap-migration; start it with the same (this start has no --preview)"))
            cleanupServe(refused, dir + "/sys")
            rmdir(dir)

            let again = try ServeProcess(profile: "upstream", arguments: ["--preview", "vfio-ap-migration", "--state", state])
            defer { again.finish(guestDirs: []) }
            let g = try pair.api(again, "guests/g1")
            #expect(g["runState"] as? String == "postmigrate")
            let m = try #require(g["migration"] as? [String: Any])
            #expect(m["status"] as? String == "completed" && m["transferred"] as? Int == 72)
            #expect(m["capabilities"] as? [String] == ["return-path"])
            #expect(cat(again.sys + "/devices/vfio_ap/matrix/features") == "guest_matrix hotplug ap_config migratable\n")
        }

        @Test func seedProfileRefusesThePreview() throws {
            let r = sh("\(q(try apmatrixExecutable())) serve --mount /nonexistent/never --preview vfio-ap-migration")
            #expect(r.status != 0)
            #expect(r.stderr.contains("--preview vfio-ap-migration is a preview of the upstream profile: add --profile upstream"))
        }
    }
}
