// Power loss, not only a process kill: `serve --state` keeps its database on
// FaultFS, which holds every unsynced write in memory; writers go through the
// daemon's mount; the power is cut at random moments (every unsynced write
// lost, or a random prefix of them kept with the last one torn), and the
// daemon restarts on what survived: every acknowledged write is there, the
// database opens and passes SQLite's integrity check, the invariants hold.

import APMatrixTesting
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct PowerLoss {
        /// Cuts per run: APMATRIX_POWER_CUTS (scripts/stress sets more).
        static var cuts: Int { ProcessInfo.processInfo.environment["APMATRIX_POWER_CUTS"].flatMap(Int.init) ?? 20 }

        @Test func everyAcknowledgedWriteSurvivesPowerCuts() throws {
            let base = try makeTempDir()
            let disk = base + "/disk", stateDir = base + "/state", dir = base + "/mnt"
            #expect(mkdir(disk, 0o700) == 0 && mkdir(stateDir, 0o700) == 0)
            let state = stateDir + "/host.db"
            var fs = try FaultFS(backing: disk, mountpoint: stateDir)
            var serve: Spawned?
            defer {
                cleanupServe(serve, dir)
                fs.stop()
                _ = sh("rm -rf \(q(base))")
            }
            var (p, address) = try startStateServe(dir, state: state)
            serve = p
            #expect(address != nil, "stderr: \(p.stderrText)")
            var w = try AckedWriters(count: 3, dir: dir, base: base)
            var rng = SystemRandomNumberGenerator()
            var lost = 0, kept = 0, lostData = 0, syncs = 0
            for round in 0..<Self.cuts {
                let cut: FaultFS.Cut = round % 2 == 0 ? .dropUnsynced : .tornPrefix
                try w.run(round: round, dir: dir, killAfter: Int.random(in: 1...60, using: &rng)) {
                    // The power goes: the daemon dies with everything it had not synced.
                    p.signal(SIGKILL)
                    #expect(p.reap(timeout: 10) == 128 + SIGKILL)
                    removeTokenFile(of: p)
                    fs.stop()
                    syncs += fs.syncs
                    let r = fs.powerCut(cut, using: &rng)
                    lost += r.pending - r.kept
                    kept += r.kept
                    lostData += r.lostData
                }
                fs = try FaultFS(backing: disk, mountpoint: stateDir)
                (p, address) = try startStateServe(dir, state: state)
                serve = p
                guard let address else {
                    Issue.record("cut \(round) (\(cut)): serve did not start on what survived: \(p.stderrText)")
                    return
                }
                w.verify(round: round, dir: dir, address: address, what: "power cut (\(cut))")
            }
            print("power-cut test: \(Self.cuts) cuts survived, \(w.acked) acknowledged writes all present; \(syncs) fsyncs, \(lost) unsynced writes lost (\(lostData) of them to the database or its WAL) and \(kept) kept (the last of a torn prefix torn)")
            // A run that acknowledged nothing, or lost nothing, would have checked nothing.
            #expect(w.acked >= Self.cuts, "only \(w.acked) writes were acknowledged over \(Self.cuts) cuts")
            #expect(lost > 0, "no unsynced write was ever lost: the cuts tested nothing")
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "stderr: \(p.stderrText)")
        }
    }
}
