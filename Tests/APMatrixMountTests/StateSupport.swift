// Shared by the tests of `serve --state`: the daemon as a process, writers
// that print what was acknowledged, and the check that every acknowledged
// write is there after the daemon died (SIGKILL or a power cut).

import APMatrixModel
import APMatrixRuntime
import APMatrixSysfs
import APMatrixTesting
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

/// The domains of an mdev as its `matrix` shows them (`05.0004` lines).
func matrixDomains(_ path: String) -> Set<Int> {
    Set(apqns(cat(path)).map(\.q))
}

/// Writers on mdevs of their own (writer i: adapter i, domains 0-15) and
/// what they had acknowledged, across deaths and restarts of the daemon.
struct AckedWriters {
    let uuids: [String]
    let base: String
    let script: String
    /// The domains verified per writer.
    var known: [Set<Int>]
    var acked = 0

    /// Frees every queue and makes one mdev per writer through the mount at `dir`.
    init(count: Int, dir: String, base: String) throws {
        uuids = (1...count).map { String(format: "11111111-2222-4333-8444-%012d", $0) }
        self.base = base
        script = base + "/writer.py"
        known = uuids.map { _ in [] }
        try ackWriterScript.write(toFile: script, atomically: true, encoding: .utf8)
        #expect(writeAttr(dir + "/bus/ap/apmask", "0x0") == .ok)
        #expect(writeAttr(dir + "/bus/ap/aqmask", "0x0") == .ok)
        for (i, u) in uuids.enumerated() {
            #expect(writeAttr(dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", u) == .ok)
            #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_adapter", "\(i)") == .ok)
        }
    }

    func outputs(_ round: Int) -> [String] { uuids.indices.map { base + "/out.\(round).\($0)" } }

    /// Runs the writers through `dir` until `killAfter` writes were
    /// acknowledged (or they finish), then `kill`s the daemon and waits for them.
    func run(round: Int, dir: String, killAfter: Int, kill: () -> Void) throws {
        let outs = outputs(round)
        let cmd = uuids.enumerated().map { i, u in
            "timeout -k 2 60 /usr/bin/python3 \(q(script)) \(q(dir)) \(u) \(round * 10 + i) 400 > \(q(outs[i])) 2>&1 & "
        }.joined() + "wait"
        let writers = try Spawned(["/bin/bash", "-c", cmd])
        for _ in 0..<600 {
            let acks = outs.reduce(0) { n, f in
                n + ((try? String(contentsOfFile: f, encoding: .utf8)) ?? "").components(separatedBy: "\nack ").count - 1
            }
            if acks >= killAfter || writers.reap(timeout: 0.01) != nil { break }
        }
        kill()
        #expect(writers.reap(timeout: 70) == 0, "writers did not stop after the daemon died")
    }

    /// After a restart: each mdev's domains are those its acknowledged writes
    /// give (a write in flight may or may not have landed), and the daemon's
    /// own check (invariants and SQLite's integrity check) passes.
    mutating func verify(round: Int, dir: String, address: String, what: String) {
        for (i, u) in uuids.enumerated() {
            let lines = ((try? String(contentsOfFile: outputs(round)[i], encoding: .utf8)) ?? "").split(separator: "\n")
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
            #expect(now.subtracting(unsure) == expected.subtracting(unsure),
                    "\(what) \(round) mdev \(u): matrix has domains \(now.sorted()), acknowledged writes say \(expected.sorted())")
            known[i] = now
        }
        let check = sh("\(q(try! apmatrixExecutable())) check-state --server \(q(address))")
        #expect(check.status == 0 && check.stdout.contains("integrity_check ok"), "\(what) \(round): \(check)")
        // mdevs in creation order with their iommu groups
        let mdevs = sh("curl -sf \(q(address))/api/v1/mdevs")
        let list = (try? JSONSerialization.jsonObject(with: Data(mdevs.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(list.map { "\($0["uuid"] ?? "") \($0["iommuGroup"] ?? "")" } == uuids.enumerated().map { "\($1) \($0)" },
                "\(mdevs)")
    }
}

/// A state database made in-process: the seed example's host with adapter 5
/// and domain 4 freed, mdev `uuidA` holding 05.0004 and a guest g1 using it.
func makeStateDatabase(_ path: String, profile: Profile = .seed) throws {
    let host = try APHost(.seedExample, profile: profile)
    let (store, _) = try StateStore.open(path: path, profile: profile, fresh: host)
    let runtime = Runtime(host: host, store: store)
    let sysfs = SysfsEndpoint(runtime)
    try sysfs.write("/bus/ap/apmask", Array("-5".utf8))
    try sysfs.write("/bus/ap/aqmask", Array("-4".utf8))
    try sysfs.write("/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", Array(uuidA.utf8))
    try sysfs.write("/devices/vfio_ap/matrix/\(uuidA)/assign_adapter", Array("5".utf8))
    try sysfs.write("/devices/vfio_ap/matrix/\(uuidA)/assign_domain", Array("4".utf8))
    try runtime.startGuest(GuestStart(name: "g1", device: VfioAPDevice(id: "hostdev0", mdev: MdevUUID(parsing: uuidA)!,
                                                                        sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuidA)")))
    store.close()
}
