// `serve --state` (SPEC §6): every acknowledged write survives a SIGKILL of
// the daemon at any moment, with one writer or eight; guests, mdev order and
// QMP sockets come back after a restart; an idle host writes nothing.

import APMatrixTesting
import CSQLite
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct Durability {
        /// Kills per run: APMATRIX_CRASH_KILLS (scripts/stress sets more).
        static var kills: Int { ProcessInfo.processInfo.environment["APMATRIX_CRASH_KILLS"].flatMap(Int.init) ?? 6 }

        /// `writers` writer processes through the mount of `serve --state`, the
        /// daemon SIGKILLed after a random number of acknowledged writes,
        /// restarted `kills` times; every acknowledged write must be there.
        func survivesSigkills(writers: Int, kills: Int, maxAcks: Int) throws -> Int {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.db"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            var (p, address) = try startStateServe(dir, state: state)
            serve = p
            #expect(address != nil, "stderr: \(p.stderrText)")
            var w = try AckedWriters(count: writers, dir: dir, base: base)
            var rng = SystemRandomNumberGenerator()
            for round in 0..<kills {
                try w.run(round: round, dir: dir, killAfter: Int.random(in: 1...maxAcks, using: &rng)) {
                    p.signal(SIGKILL)
                    #expect(p.reap(timeout: 10) == 128 + SIGKILL)
                    removeTokenFile(of: p)
                }
                (p, address) = try startStateServe(dir, state: state)
                serve = p
                guard let address else {
                    Issue.record("round \(round): serve did not resume: \(p.stderrText)")
                    return w.acked
                }
                w.verify(round: round, dir: dir, address: address, what: "kill")
            }
            // A run that acknowledged nothing would have checked nothing.
            #expect(w.acked >= kills, "only \(w.acked) writes were acknowledged over \(kills) kills")
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "stderr: \(p.stderrText)")
            return w.acked
        }

        @Test func everyAcknowledgedWriteSurvivesSigkill() throws {
            let acked = try survivesSigkills(writers: 3, kills: Self.kills, maxAcks: 120)
            print("crash test: \(Self.kills) SIGKILLs survived, \(acked) acknowledged writes all present")
        }

        /// Eight writer processes at once on one `serve --state`: none hangs
        /// (each write waits for the one before it to be committed), and after
        /// a SIGKILL every acknowledged write is there and the invariants hold.
        @Test func eightWritersWithStateSurviveAKill() throws {
            let acked = try survivesSigkills(writers: 8, kills: 2, maxAcks: 400)
            print("eight writers: 2 SIGKILLs survived, \(acked) acknowledged writes all present")
        }

        @Test func guestsAndQMPSocketsComeBack() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.db", qmp = base + "/g1.qmp"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            var (p, address) = try startStateServe(dir, state: state)
            serve = p
            let cli = try apmatrixExecutable()
            let u = uuidA
            #expect(writeAttr(dir + "/bus/ap/aqmask", "-0-255") == .ok)
            #expect(writeAttr(dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", u) == .ok)
            #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_adapter", "5") == .ok)
            #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_domain", "4") == .ok)
            let start = sh("\(q(cli)) guest start g1 --cpu host,apqi=off --device vfio-ap,sysfsdev=\(dir)/devices/vfio_ap/matrix/\(u),id=hostdev0 --qmp \(q(qmp)) --server \(q(address!))")
            #expect(start.status == 0, "\(start)")
            let put = sh("\(q(cli)) guest put-state g1 05.0004 key-1 --server \(q(address!))")
            #expect(put.status == 0, "\(put)")
            p.signal(SIGKILL)
            #expect(p.reap(timeout: 10) == 128 + SIGKILL)
            removeTokenFile(of: p)

            (p, address) = try startStateServe(dir, state: state)
            serve = p
            #expect(address != nil, "stderr: \(p.stderrText)")
            let show = sh("\(q(cli)) guest show g1 --server \(q(address!))")
            #expect(show.stdout.contains("  cpu      host,ap=on,apqci=on,apft=on,apqi=off,appv=on,appvi=on\n"), "\(show)")
            #expect(show.stdout.contains("  qmp      \(qmp)\n"), "\(show)")
            #expect(show.stdout.contains("  state    queue 05.0004 holds \"key-1\"\n"), "\(show)")
            #expect(cat(dir + "/devices/vfio_ap/matrix/\(u)/guest_matrix") == "05.0004\n")
            // the reopened monitor answers
            let greeting = sh("timeout 5 python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(4096).decode())' \(q(qmp))")
            #expect(greeting.stdout.contains("\"QMP\""), "\(greeting)")
            // stopping the guest resets its queue, durably
            #expect(sh("\(q(cli)) guest stop g1 --server \(q(address!))").status == 0)
            p.signal(SIGKILL)
            #expect(p.reap(timeout: 10) == 128 + SIGKILL)
            removeTokenFile(of: p)
            (p, address) = try startStateServe(dir, state: state)
            serve = p
            let queues = sh("curl -sf \(q(address!))/api/v1/queues")
            let list = try JSONSerialization.jsonObject(with: Data(queues.stdout.utf8)) as? [[String: Any]] ?? []
            let q54 = list.first { $0["apqn"] as? String == "05.0004" }
            #expect(q54?["resets"] as? Int == 1, "\(queues)")
            #expect(q54?["holdsStateOf"] == nil && q54?["owner"] as? String == "none", "\(queues)")
            let gone = sh("\(q(cli)) guest show g1 --server \(q(address!))")
            #expect(gone.status == 1 && gone.stderr.contains("ENOENT"), "\(gone)")
        }

        /// Time is not a change of the host: with three guests running (their
        /// AP buses scanning every config_time) and nothing happening, nothing
        /// is written: SQLite's data_version, seen from a connection of our
        /// own, does not move, nor do the database's files, nor the bytes the
        /// daemon sends to storage.
        @Test func anIdleHostWritesNothing() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.db"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            let (p, address) = try startStateServe(dir, state: state)
            serve = p
            let cli = try apmatrixExecutable(), server = try #require(address)
            #expect(writeAttr(dir + "/bus/ap/aqmask", "0x0") == .ok)
            #expect(writeAttr(dir + "/bus/ap/apmask", "0x0") == .ok)
            for (i, u) in [uuidA, uuidB, uuid3].enumerated() {
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", u) == .ok)
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_adapter", "\(i)") == .ok)
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_domain", "4") == .ok)
                let start = sh("\(q(cli)) guest start g\(i) --device vfio-ap,sysfsdev=\(dir)/devices/vfio_ap/matrix/\(u),id=hostdev0 --server \(q(server))")
                #expect(start.status == 0, "\(start)")
            }
            // config_time 5 s: a periodic scan of each guest falls into the idle window.
            let mount = sh("\(q(cli)) guest mount g0 \(q(base + "/g0")) --server \(q(server))")
            #expect(mount.status == 0, "\(mount)")
            #expect(writeAttr(base + "/g0/bus/ap/config_time", "5") == .ok)
            var db: OpaquePointer?
            #expect(sqlite3_open_v2(state, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK)
            defer { sqlite3_close_v2(db) }
            func dataVersion() -> Int64 {
                var stmt: OpaquePointer?
                sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &stmt, nil)
                defer { sqlite3_finalize(stmt) }
                return sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1
            }
            func stamps() -> [String] {
                // Not -shm: a reader (ours) writes its read mark there.
                ["", "-wal"].map { suffix in
                    var st = stat()
                    guard stat(state + suffix, &st) == 0 else { return "\(suffix) missing" }
                    return "\(suffix) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
                }
            }
            func storageWrites() -> String {
                ((try? String(contentsOfFile: "/proc/\(p.pid)/io", encoding: .utf8)) ?? "").split(separator: "\n")
                    .first { $0.hasPrefix("write_bytes:") }.map(String.init) ?? "?"
            }
            let files = stamps(), written = storageWrites(), version = dataVersion()
            #expect(version > 0)
            usleep(6_500_000)
            #expect(stamps() == files, "the state's files changed while the host was idle")
            #expect(dataVersion() == version, "the state database was written while the host was idle")
            #expect(storageWrites() == written, "the daemon wrote to storage while the host was idle")
            #expect(cat(base + "/g0/bus/ap/scans") != "1\n", "the guest's bus scanned in the meantime")
            // and a change is seen: the count works
            #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(uuidA)/assign_domain", "5") == .ok)
            #expect(dataVersion() == version + 1)
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "stderr: \(p.stderrText)")
        }
    }
}
