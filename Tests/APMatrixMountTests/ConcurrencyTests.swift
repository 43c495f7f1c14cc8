// Several processes write to the same mdevs at once through the mount: no
// hang, only errnos SPEC §3 allows, and afterwards the security invariants
// (SPEC §5) hold when read back through the mount.

import APMatrixRuntime
import APMatrixModel
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// One writer: `ops` random writes of assign/unassign adapter/domain on the
/// given mdevs, some malformed or out of range, some mask toggles. Prints one
/// JSON object: errno name -> count, keyed per operation kind.
let writerScript = #"""
import errno, json, os, random, sys
root, seed, ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
uuids = sys.argv[4:]
rnd = random.Random(seed)
mdir = os.path.join(root, "devices/vfio_ap/matrix")
adapters = [4, 5, 6, 7]
domains = [0, 1, 4, 0x47, 0xab, 0xff]
counts = {}
def store(path, value, kind):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        name = "open:" + errno.errorcode.get(e.errno, str(e.errno))
    else:
        try:
            os.write(fd, value.encode())
            name = "ok"
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            os.close(fd)
    key = kind + ":" + name
    counts[key] = counts.get(key, 0) + 1
for i in range(ops):
    r = rnd.random()
    u = rnd.choice(uuids)
    if r < 0.04:
        store(os.path.join(mdir, u, "assign_adapter"), "256", "assign")            # ENODEV
    elif r < 0.07:
        store(os.path.join(mdir, u, "assign_domain"), "0x4g\n", "assign")          # EINVAL
    elif r < 0.10:
        store(os.path.join(root, "bus/ap/apmask"), rnd.choice(["+4", "-4", "+7\n", "-7\n"]), "mask")
    elif r < 0.14:
        with open(os.path.join(mdir, u, "matrix")) as f:
            f.read()
        counts["read:ok"] = counts.get("read:ok", 0) + 1
    else:
        what = rnd.choice(["adapter", "domain"])
        op = "assign" if rnd.random() < 0.6 else "unassign"
        ident = rnd.choice(adapters if what == "adapter" else domains)
        fmt = rnd.choice(["%d", "0x%x", "%d\n", "0x%02x\n"])
        store(os.path.join(mdir, u, op + "_" + what), fmt % ident, op)
print(json.dumps(counts))
"""#

extension MountTests {
    @Suite struct Concurrency {
        @Test func concurrentWritersKeepTheInvariants() throws {
            try withMount(.seedExample) { m in
                try applyV4Masks(m)
                let uuids = [uuidA, uuidB, uuid3, "0d5f7a2c-1111-4c3b-8e9f-a1b2c3d4e5f6"]
                for u in uuids { try createMdev(m, u) }
                let scriptDir = try makeTempDir("apmatrix-mt-script")
                defer { _ = sh("rm -rf \(q(scriptDir))") }
                let script = scriptDir + "/writer.py"
                try writerScript.write(toFile: script, atomically: true, encoding: .utf8)

                // APMATRIX_STRESS_OPS: writes per writer (scripts/stress sets more).
                let writers = 8, ops = ProcessInfo.processInfo.environment["APMATRIX_STRESS_OPS"].flatMap(Int.init) ?? 500
                // all writers start together, each under `timeout`; the outer wait collects them
                let cmd = (0..<writers).map { i in
                    "timeout -k 2 \(90 + ops / 5) /usr/bin/python3 \(q(script)) \(q(m.root)) \(i + 1) \(ops) \(uuids.map(q).joined(separator: " ")) > \(q(scriptDir))/out.\(i) 2> \(q(scriptDir))/err.\(i) & "
                }.joined() + "wait; for i in $(seq 0 \(writers - 1)); do echo \"rc.$i $(cat \(q(scriptDir))/out.$i)\"; cat \(q(scriptDir))/err.$i >&2; done"
                let start = Date()
                let r = sh(cmd, timeout: 120 + Double(ops) / 5)
                let elapsed = Date().timeIntervalSince(start)
                #expect(!r.timedOut, "writers hung: \(r)")
                #expect(r.stderr.isEmpty, "writer errors: \(r.stderr)")

                // every errno is one SPEC §3 allows for that kind of write
                let allowed: [String: Set<String>] = [
                    "assign": ["ok", "EADDRINUSE", "EADDRNOTAVAIL", "ENODEV", "EINVAL"],
                    "unassign": ["ok"],
                    "mask": ["ok", "EADDRINUSE"],
                    "read": ["ok"],
                ]
                var total = 0
                var seen: [String: Int] = [:]
                let outputs = r.stdout.split(separator: "\n")
                #expect(outputs.count == writers, "\(r)")
                for line in outputs {
                    guard let brace = line.firstIndex(of: "{"),
                          let obj = try? JSONSerialization.jsonObject(with: Data(line[brace...].utf8)) as? [String: Int] else {
                        Issue.record("a writer printed no counts: \(line)")
                        continue
                    }
                    for (key, n) in obj {
                        let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
                        #expect(allowed[parts[0]]?.contains(parts[1]) == true, "unexpected result \(key) ×\(n)")
                        total += n
                        seen[key, default: 0] += n
                    }
                }
                #expect(total == writers * ops, "counts: \(seen)")
                // the mix really exercised the checks
                #expect((seen["assign:ok"] ?? 0) > 0 && (seen["assign:EADDRINUSE"] ?? 0) > 0, "\(seen)")
                #expect((seen["assign:ENODEV"] ?? 0) > 0 && (seen["assign:EINVAL"] ?? 0) > 0, "\(seen)")
                print("concurrent writers: \(writers)×\(ops) writes in \(String(format: "%.1f", elapsed)) s: \(seen.sorted { $0.key < $1.key })")

                // the invariants, read back through the mount
                let apm = maskIDs(cat(m.path("bus/ap/apmask")))
                let aqm = maskIDs(cat(m.path("bus/ap/aqmask")))
                var owner: [APQNPair: String] = [:]
                for u in uuids {
                    let text = readAttr(m.mdev(u) + "/matrix")
                    #expect(text.errno == 0)
                    for p in apqns(text.text) {
                        if let other = owner[p] { Issue.record("\(p) is in both \(other) and \(u)") }
                        owner[p] = u
                        #expect(!(apm.contains(p.a) && aqm.contains(p.q)), "\(p) of \(u) is reserved for the host")
                    }
                }
                // and the model's own checker agrees
                #expect(m.runtime.snapshot.checkInvariants().isEmpty, "\(m.runtime.snapshot.checkInvariants())")
                // the mount still answers normally
                #expect(cat(m.typeDir + "/available_instances") == "\(65536 - uuids.count)\n")
            }
        }
    }
}
