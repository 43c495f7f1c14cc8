// `apmatrix serve` as a subprocess (SPEC §6): `ready` on stdout, SIGTERM
// unmounts and exits 0, a bad host file is refused with one line naming the
// field and nothing mounted, a dead mount left by `kill -9` is recovered.

import APMatrixTesting
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct Serve {
        @Test func readyThenSigtermUnmountsAndExitsZero() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt"           // missing: serve creates it
            var p: Spawned?
            defer { cleanupServe(p, dir); rmdir(base) }
            p = try startServe(dir)
            let serve = p!
            let first = serve.stdoutText.split(separator: "\n").first.map(String.init)
            #expect(first == "ready" || first?.hasPrefix("ready ") == true,
                    "stdout: \(serve.stdoutText) stderr: \(serve.stderrText)")
            #expect(serve.status == nil, "serve exited: \(serve.stderrText)")
            #expect(isApmatrixMount(dir), "no fuse.apmatrix mount at \(dir)")
            // the embedded default: 8 adapters, masks all ones
            let r = sh("cat \(q(dir))/bus/ap/apmask && ls \(q(dir))/devices/ap && cat \(q(dir))/bus/ap/ap_max_domain_id")
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout == allOnesMask + (0...7).map { "card0\($0)\n" }.joined() + "uevent\n255\n", "\(r)")
            // SIGTERM: unmount and exit 0
            serve.signal(SIGTERM)
            let status = serve.reap(timeout: 15)
            #expect(status == 0, "exit \(String(describing: status)); stderr: \(serve.stderrText)")
            #expect(!isApmatrixMount(dir), "the mount is still there after SIGTERM")
            #expect(statErrno(dir) == 0)
            #expect(listDir(dir) == [], "the directory should be empty again")
        }

        @Test func sigintAlsoUnmountsAndExitsZero() throws {
            let dir = try makeTempDir()
            var p: Spawned?
            defer { cleanupServe(p, dir) }
            p = try startServe(dir)
            #expect(isApmatrixMount(dir))
            p!.signal(SIGINT)
            #expect(p!.reap(timeout: 15) == 0, "stderr: \(p!.stderrText)")
            #expect(!isApmatrixMount(dir))
        }

        static let badHosts: [(json: String, field: String)] = [
            (#"{"domains":"0-15","adapters":[{"id":300,"type":"CEX8C"}]}"#, "adapters[0].id"),
            (#"{"domains":"0-15","adapters":[{"id":5,"type":"CEX8C"}],"bogus":1}"#, "bogus"),
            (#"{"domains":"0-15","adapters":[{"id":5,"type":"CEX9Z"}]}"#, "adapters[0].type"),
            (#"{"domains":"0-15","adapters":[{"id":5,"type":"CEX8C","colour":"red"}]}"#, "colour"),
            (#"{"adapters":[{"id":5,"type":"CEX8C"}]}"#, "domains"),
            (#"{"domains":"0-15","adapters":[{"id":5,"type":"CEX8C","domains":"16"}]}"#, "adapters[0].domains"),
            (#"{"domains":"0-15","apmask":"0xzz","adapters":[]}"#, "apmask"),
        ]

        @Test(arguments: 0..<badHosts.count)
        func badHostFileIsRefused(_ index: Int) throws {
            let (json, field) = Self.badHosts[index]
            let dir = try makeTempDir()
            let hostDir = try makeTempDir("apmatrix-mt-host")
            defer { _ = sh("rm -rf \(q(hostDir))") }
            let hostFile = hostDir + "/host.json"
            try json.write(toFile: hostFile, atomically: true, encoding: .utf8)
            var p: Spawned?
            defer { cleanupServe(p, dir) }
            p = try Spawned([try apmatrixExecutable(), "serve", "--mount", dir, "--host", hostFile])
            let status = p!.reap(timeout: 20)
            #expect(status != nil && status != 0, "serve accepted \(json): \(p!.stderrText)")
            let lines = p!.stderrText.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(lines.count == 1, "want one stderr line, got: \(p!.stderrText)")
            #expect(p!.stderrText.contains(field), "stderr does not name \(field): \(p!.stderrText)")
            #expect(!p!.stdoutText.contains("ready"))
            #expect(!isApmatrixMount(dir), "a bad host file left a mount")
        }

        @Test func deadMountLeftByKill9IsRecovered() throws {
            let dir = try makeTempDir()
            var first: Spawned?
            var second: Spawned?
            defer { cleanupServe(second, dir); cleanupServe(first, dir) }
            first = try startServe(dir)
            #expect(isApmatrixMount(dir))
            #expect(writeAttr(dir + "/bus/ap/apmask", "-1") == .ok)
            first!.signal(SIGKILL)
            #expect(first!.reap(timeout: 10) == 128 + SIGKILL)
            // the daemon is gone, the mount stays: ENOTCONN
            var err: Int32 = 0
            for _ in 0..<100 { err = statErrno(dir); if err == ENOTCONN { break }; usleep(50_000) }
            #expect(err == ENOTCONN, "stat gave \(errnoText(err))")
            let ls = sh("ls \(q(dir))")
            #expect(ls.status != 0 && ls.stderr.contains("Transport endpoint is not connected"), "\(ls)")
            #expect(isApmatrixMount(dir))

            // a new serve on the same directory recovers it
            second = try startServe(dir)
            #expect(second!.stdoutText.hasPrefix("ready"), "stdout: \(second!.stdoutText) stderr: \(second!.stderrText)")
            #expect(second!.status == nil)
            #expect(statErrno(dir) == 0)
            let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8))?
                .split(separator: "\n").filter { $0.split(separator: " ").dropFirst().first.map(String.init) == dir } ?? []
            #expect(mounts.count == 1, "mounts at \(dir): \(mounts)")
            // a fresh host (the first one's state is gone)
            #expect(cat(dir + "/bus/ap/apmask") == allOnesMask)
            second!.signal(SIGTERM)
            #expect(second!.reap(timeout: 15) == 0, "stderr: \(second!.stderrText)")
            #expect(!isApmatrixMount(dir))
            #expect(statErrno(dir) == 0)
        }
    
        /// A daemon whose tree was unmounted from outside is only half alive:
        /// it notices the end of its FUSE session, says why, and exits non-zero.
        @Test func externalUnmountEndsServe() throws {
            let dir = try makeTempDir()
            var p: Spawned?
            defer { cleanupServe(p, dir) }
            p = try startServe(dir)
            #expect(isApmatrixMount(dir))
            #expect(sh("umount \(q(dir))").status == 0)
            let status = p!.reap(timeout: 15)
            #expect(status == 1, "exit \(String(describing: status)); stderr: \(p!.stderrText)")
            #expect(p!.stderrText.contains("the tree at \(dir) was unmounted from outside"), "stderr: \(p!.stderrText)")
            #expect(!isApmatrixMount(dir))
        }

        /// scripts/sweep-mounts (what scripts/test runs first and last) removes
        /// the mount of a dead daemon and leaves a live one, such as a user's
        /// scripts/run in another terminal, alone.
        @Test func sweepRemovesDeadMountsOnly() throws {
            let live = try makeTempDir(), dead = try makeTempDir()
            var a: Spawned?, b: Spawned?
            defer { cleanupServe(a, live); cleanupServe(b, dead) }
            a = try startServe(live)
            b = try startServe(dead)
            b!.signal(SIGKILL)
            #expect(b!.reap(timeout: 10) == 128 + SIGKILL)
            #expect(statErrno(dead) == ENOTCONN)
            let sweep = sh(q(packageRoot() + "/scripts/sweep-mounts"))
            #expect(sweep.status == 0, "\(sweep)")
            #expect(sweep.stderr.contains("removed the dead mount \(dead)"), "\(sweep)")
            #expect(!sweep.stderr.contains(live), "\(sweep)")
            #expect(!isApmatrixMount(dead))
            #expect(isApmatrixMount(live))
            #expect(cat(live + "/bus/ap/apmask") == allOnesMask, "the live mount still answers")
        }
    }
}
