// `serve --state` (SPEC §6): every acknowledged write survives a SIGKILL of
// the daemon at any moment; a bad state file is refused and left untouched;
// guests, mdev order and QMP sockets come back after a restart.

import Foundation
import Glibc
import Testing

/// One writer on its own mdev and adapter: random assign/unassign of domains
/// 0-15 through the mount. Prints `try OP` before each write and `ack OP`
/// after a successful one (flushed, so a kill loses no ack); stops at the
/// first failure (the daemon died) or after `ops` writes.
let ackWriterScript = #"""
import os, random, sys
root, uuid, seed, ops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
mdev = os.path.join(root, "devices/vfio_ap/matrix", uuid)
for i in range(ops):
    op = rnd.choice(["assign", "unassign"])
    d = rnd.randrange(16)
    print("try %s %d" % (op, d), flush=True)
    try:
        fd = os.open(os.path.join(mdev, op + "_domain"), os.O_WRONLY)
        try:
            os.write(fd, b"%d\n" % d)
        finally:
            os.close(fd)
    except OSError as e:
        print("stop %s" % os.strerror(e.errno), flush=True)
        break
    print("ack %s %d" % (op, d), flush=True)
"""#

/// Starts `serve --state` on `dir` (API on a free loopback port); the `ready` line's address.
func startStateServe(_ dir: String, state: String, extra: [String] = []) throws -> (Spawned, String?) {
    let p = try Spawned([try apmatrixExecutable(), "serve", "--mount", dir, "--state", state,
                         "--listen", "127.0.0.1:0"] + extra)
    let ready = p.waitForStdoutLine(timeout: 30) { $0.hasPrefix("ready") }
    return (p, ready.map { String($0.dropFirst(6)) })
}

/// The domains of an mdev as its `matrix` shows them (`05.0004` lines).
func matrixDomains(_ path: String) -> Set<Int> {
    Set(apqns(cat(path)).map(\.q))
}

extension MountTests {
    @Suite struct Durability {
        static let writerUUIDs = [
            "11111111-2222-4333-8444-000000000001", "11111111-2222-4333-8444-000000000002",
            "11111111-2222-4333-8444-000000000003",
        ]

        /// Kills per run: APMATRIX_CRASH_KILLS (scripts/crash-test sets more).
        static var kills: Int { ProcessInfo.processInfo.environment["APMATRIX_CRASH_KILLS"].flatMap(Int.init) ?? 6 }

        @Test func everyAcknowledgedWriteSurvivesSigkill() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.state"
            let script = base + "/writer.py"
            try ackWriterScript.write(toFile: script, atomically: true, encoding: .utf8)
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            var (p, address) = try startStateServe(dir, state: state)
            serve = p
            #expect(address != nil, "stderr: \(p.stderrText)")
            // Setup: nothing reserved, one mdev with one adapter per writer.
            #expect(writeAttr(dir + "/bus/ap/apmask", "0x0") == .ok)
            #expect(writeAttr(dir + "/bus/ap/aqmask", "0x0") == .ok)
            for (i, u) in Self.writerUUIDs.enumerated() {
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", u) == .ok)
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_adapter", "\(i)") == .ok)
            }
            var known = Self.writerUUIDs.map { _ in Set<Int>() }   // the verified domains per writer
            var acked = 0
            var rng = SystemRandomNumberGenerator()
            for round in 0..<Self.kills {
                // Writers run; the daemon is killed after a random number of acknowledged writes.
                let outs = Self.writerUUIDs.indices.map { base + "/out.\(round).\($0)" }
                let cmd = Self.writerUUIDs.enumerated().map { i, u in
                    "timeout -k 2 60 /usr/bin/python3 \(q(script)) \(q(dir)) \(u) \(round * 10 + i) 400 > \(q(outs[i])) 2>&1 & "
                }.joined() + "wait"
                let killAfter = Int.random(in: 1...120, using: &rng)
                let writers = try Spawned(["/bin/bash", "-c", cmd])
                var acks = 0
                for _ in 0..<600 {
                    acks = outs.reduce(0) { n, f in
                        n + ((try? String(contentsOfFile: f, encoding: .utf8)) ?? "").components(separatedBy: "\nack ").count - 1
                    }
                    if acks >= killAfter || writers.reap(timeout: 0.01) != nil { break }
                }
                p.signal(SIGKILL)
                #expect(p.reap(timeout: 10) == 128 + SIGKILL)
                removeTokenFile(of: p)
                #expect(writers.reap(timeout: 70) == 0, "writers did not stop after the kill")

                (p, address) = try startStateServe(dir, state: state)
                serve = p
                guard address != nil else {
                    Issue.record("round \(round): serve did not resume: \(p.stderrText)")
                    return
                }
                for (i, u) in Self.writerUUIDs.enumerated() {
                    let lines = ((try? String(contentsOfFile: outs[i], encoding: .utf8)) ?? "").split(separator: "\n")
                    var expected = known[i], unsure = Set<Int>()
                    for line in lines {
                        let f = line.split(separator: " ")
                        guard f.count == 3, let d = Int(f[2]) else { continue }
                        if f[0] == "try" { unsure.insert(d) }
                        if f[0] == "ack" {
                            unsure.remove(d)
                            acked += 1
                            if f[1] == "assign" { expected.insert(d) } else { expected.remove(d) }
                        }
                    }
                    let now = matrixDomains(dir + "/devices/vfio_ap/matrix/\(u)/matrix")
                    // An unacknowledged write in flight may or may not have landed.
                    #expect(now.subtracting(unsure) == expected.subtracting(unsure),
                            "round \(round) mdev \(u): matrix has domains \(now.sorted()), acknowledged writes say \(expected.sorted())")
                    known[i] = now
                }
                let check = sh("\(q(try apmatrixExecutable())) check-state --server \(q(address!))")
                #expect(check.status == 0, "round \(round): \(check)")
                // mdevs in creation order with their iommu groups
                let mdevs = sh("curl -sf \(q(address!))/api/v1/mdevs")
                let list = (try? JSONSerialization.jsonObject(with: Data(mdevs.stdout.utf8))) as? [[String: Any]] ?? []
                #expect(list.map { "\($0["uuid"] ?? "") \($0["iommuGroup"] ?? "")" } == Self.writerUUIDs.enumerated().map { "\($1) \($0)" },
                        "\(mdevs)")
            }
            print("crash test: \(Self.kills) SIGKILLs survived, \(acked) acknowledged writes all present")
            // A run that acknowledged nothing would have checked nothing.
            #expect(acked >= Self.kills, "only \(acked) writes were acknowledged over \(Self.kills) kills")
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "stderr: \(p.stderrText)")
        }

        @Test func guestsAndQMPSocketsComeBack() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.state", qmp = base + "/g1.qmp"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            var (p, address) = try startStateServe(dir, state: state)
            serve = p
            let cli = try apmatrixExecutable()
            let u = Self.writerUUIDs[0]
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

        /// Time is not a change of the host: with a guest running (its AP bus
        /// scanning every config_time) and nothing happening, nothing is written.
        @Test func anIdleHostWritesNothing() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.state"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            let (p, address) = try startStateServe(dir, state: state)
            serve = p
            let start = sh("\(q(try apmatrixExecutable())) guest start g1 --server \(q(try #require(address)))")
            #expect(start.status == 0, "\(start)")
            // config_time 5 s: a periodic scan falls into the idle window.
            let mount = sh("\(q(try apmatrixExecutable())) guest mount g1 \(q(base + "/g1")) --server \(q(address!))")
            #expect(mount.status == 0, "\(mount)")
            #expect(writeAttr(base + "/g1/bus/ap/config_time", "5") == .ok)
            func stamp() -> String {
                var st = stat()
                guard stat(state, &st) == 0 else { return "missing" }
                return "\(st.st_ino) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_size)"
            }
            let before = stamp()
            usleep(6_500_000)
            #expect(stamp() == before, "the state file changed while the host was idle")
            #expect(cat(base + "/g1/bus/ap/scans") != "1\n", "the guest's bus scanned in the meantime")
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "stderr: \(p.stderrText)")
        }

        @Test(arguments: [
            ("{\"format\": \"apmatrix-state\", \"version\": 1, \"profile\": \"seed\", \"host\": {", "not a complete JSON document (71 bytes; truncated or corrupt)"),
            ("{\"format\": \"apmatrix-state\", \"version\": 2, \"profile\": \"seed\"}", "written by a newer apmatrix (format version 2; this one reads up to 1)"),
            ("{\"format\": \"apmatrix-state\", \"version\": 1, \"profile\": \"upstream\"}", "it records profile upstream, not seed; start with --profile upstream"),
            ("{\"hello\": 1}", "not an apmatrix state file (no \"format\": \"apmatrix-state\")"),
            ("{\"format\": \"apmatrix-state\", \"version\": 1, \"profile\": \"seed\"}", "the document: the field host is missing"),
        ])
        func badStateFilesAreRefusedAndKept(_ content: String, _ reason: String) throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.state"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            try content.write(toFile: state, atomically: false, encoding: .utf8)
            let (p, address) = try startStateServe(dir, state: state)
            serve = p
            #expect(address == nil)
            #expect(p.reap(timeout: 15) == 1)
            #expect(p.stderrText.hasSuffix("state file \(state): \(reason); the file is left as it is (start with --reset to replace it)\n"),
                    "stderr: \(p.stderrText)")
            #expect((try? String(contentsOfFile: state, encoding: .utf8)) == content)
            #expect(!isApmatrixMount(dir))
            // --reset starts fresh and replaces the file
            let (fresh, freshAddress) = try startStateServe(dir, state: state, extra: ["--reset"])
            serve = fresh
            #expect(freshAddress != nil, "stderr: \(fresh.stderrText)")
            #expect((try? String(contentsOfFile: state, encoding: .utf8))?.contains("\"format\":\"apmatrix-state\"") == true)
        }
    }
}
