// `apmatrix exec` against a real `apmatrix serve`: mdevctl, a guest's tree,
// exit statuses, stderr and signals passing through, two hosts side by side,
// and the machine's own /sys, /etc/mdevctl.d, /etc/udev/rules.d and /run/lock
// untouched. No test makes a namespace by hand: exec alone does.

import APMatrixTesting
import Foundation
import Glibc
import Testing

/// What exec must never change on the machine: the mounts at the paths it
/// binds over (mountinfo lines: mount id, parent, device, options; a path
/// that is no mount point has none, and must get none) and every file under
/// /etc/mdevctl.d and /etc/udev/rules.d (path, type, mode, digest).
struct RealMachine: Equatable, CustomStringConvertible {
    let mounts: [String]
    let files: String

    static let paths = ["/sys", "/etc/mdevctl.d", "/etc/udev/rules.d", "/run/lock"]

    static func record() -> RealMachine {
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let mounts = info.split(separator: "\n").filter { line in
            let f = line.split(separator: " ")
            return f.count > 4 && paths.contains(String(f[4]))
        }.map(String.init)
        let files = sh("""
            find /etc/mdevctl.d /etc/udev/rules.d -printf '%p %y %m\\n' | sort
            find /etc/mdevctl.d /etc/udev/rules.d -type f -exec md5sum {} + | sort
            """).stdout
        return RealMachine(mounts: mounts, files: files)
    }

    var description: String { mounts.joined(separator: "\n") + "\n" + files }
}

/// The private root of a ServeProcess (no state file): `$APMATRIX_RUN_DIR/hosts/`
/// and the mount point as systemd-escape writes it (mkdtemp's suffix needs no escaping).
func privateRoot(_ s: ServeProcess) -> String {
    let suffix = s.base.dropFirst("/tmp/apmatrix-mt.".count)
    return s.base + "/run/hosts/tmp-apmatrix\\x2dmt.\(suffix)-sys"
}

extension MountTests {
    @Suite struct Exec {
        /// The seed example with adapters 5, 6 and domains 4, 0x47, 0xab, 0xff free for vfio_ap (V4).
        func seedHost() throws -> ServeProcess {
            let s = try ServeProcess(host: packageRoot() + "/hosts/seed-example.json")
            let r = sh("echo -5,-6 > \(q(s.sys))/bus/ap/apmask && echo -4,-0x47,-0xab,-0xff > \(q(s.sys))/bus/ap/aqmask")
            #expect(r.status == 0, "\(r)")
            return s
        }

        @Test func mdevctlLifecycleThroughExecAloneLeavesTheMachineAlone() throws {
            let before = RealMachine.record()
            #expect(before.mounts.contains { $0.split(separator: " ")[4] == "/sys" }, "\(before)")
            let s = try seedHost()
            defer { s.finish(guestDirs: []) }
            func mdevctl(_ args: String) throws -> ShellResult { try s.cli("exec -- mdevctl \(args)") }
            let u = uuidA

            let types = try mdevctl("types")
            #expect(types.status == 0 && trimmed(types.stdout) == """
                matrix
                  vfio_ap-passthrough
                    Available instances: 65536
                    Device API: vfio-ap
                    Name: VFIO AP Passthrough Device
                """, "\(types)")
            #expect(try mdevctl("define -u \(u) -p matrix -t vfio_ap-passthrough").status == 0)
            for (attr, value) in [("assign_adapter", "5"), ("assign_adapter", "6"), ("assign_domain", "0x0004"), ("assign_control_domain", "4")] {
                let r = try mdevctl("modify -u \(u) --addattr \(attr) --value \(value)")
                #expect(r.status == 0, "modify \(attr): \(r)")
            }
            // The definition is the host's: in its private root, kept from one exec to the next.
            let config = privateRoot(s) + "/etc/mdevctl.d/matrix/" + u
            #expect(access(config, F_OK) == 0, "no \(config)")
            let defined = try mdevctl("list -d")
            #expect(defined.status == 0 && trimmed(defined.stdout) == "\(u) matrix vfio_ap-passthrough manual", "\(defined)")

            let start = try mdevctl("start -u \(u)")
            #expect(start.status == 0, "\(start)")
            #expect(cat(s.sys + "/devices/vfio_ap/matrix/\(u)/matrix") == "05.0004\n06.0004\n")
            #expect(cat(s.sys + "/devices/vfio_ap/matrix/\(u)/control_domains") == "0004\n")
            let list = try mdevctl("list")
            #expect(list.status == 0 && trimmed(list.stdout) == "\(u) matrix vfio_ap-passthrough manual (defined)", "\(list)")
            let listD = try mdevctl("list -d")
            #expect(trimmed(listD.stdout) == "\(u) matrix vfio_ap-passthrough manual (active)", "\(listD)")

            #expect(try mdevctl("stop -u \(u)").status == 0)
            #expect(statErrno(s.sys + "/devices/vfio_ap/matrix/\(u)") == ENOENT)
            #expect(trimmed(try mdevctl("list").stdout).isEmpty)
            #expect(try mdevctl("undefine -u \(u)").status == 0)
            #expect(access(config, F_OK) != 0)
            #expect(trimmed(try mdevctl("list -d").stdout).isEmpty)

            // The tools' relocating variables are unset inside; the daemon is named.
            let env = try s.cli("exec -- sh -c 'echo \"${SYSFS_ROOT-unset} ${MDEVCTL_ENV_ROOT-unset} ${APMATRIX_SYSFS-unset} $APMATRIX_SERVER\"'")
            #expect(env.stdout == "unset unset unset \(s.server)\n", "\(env)")
            #expect(RealMachine.record() == before)
        }

        @Test func printPathsNamesEveryBinding() throws {
            let s = try ServeProcess()
            defer { s.finish(guestDirs: []) }
            let r = try s.cli("exec --print-paths")
            let root = privateRoot(s)
            #expect(r.status == 0 && r.stdout == """
                /sys               \(s.sys)
                /etc/mdevctl.d     \(root)/etc/mdevctl.d
                /etc/udev/rules.d  \(root)/etc/udev/rules.d
                /run/lock          \(root)/run/lock

                """, "\(r)")
            // Nothing was created: --print-paths runs nothing.
            #expect(statErrno(root) == ENOENT)
            let both = try s.cli("exec --print-paths -- true")
            #expect(both.status == 64 && both.stderr.contains("--print-paths runs nothing"), "\(both)")
            let none = try s.cli("exec")
            #expect(none.status == 64 && none.stderr.contains("give the command after --"), "\(none)")
        }

        @Test func guestTreeIsMountedForTheDurationOnly() throws {
            let before = RealMachine.record()
            let s = try seedHost()
            let kept = s.base + "/kept"
            defer { s.finish(guestDirs: [kept]) }
            let M = s.sys + "/devices/vfio_ap/matrix"
            let setup = sh("""
                set -e; echo \(uuidA) > \(q(M))/mdev_supported_types/vfio_ap-passthrough/create
                for a in 5 6; do echo $a > \(q(M))/\(uuidA)/assign_adapter; done
                for d in 4 0x47; do echo $d > \(q(M))/\(uuidA)/assign_domain; done
                """)
            #expect(setup.status == 0, "\(setup)")
            #expect(try s.cli("guest start guest1 --device vfio-ap,sysfsdev=\(M)/\(uuidA),id=hostdev0").status == 0)
            let paths = try s.cli("exec --guest guest1 --print-paths")
            #expect(paths.stdout.hasPrefix("/sys               (guest1's tree, mounted for the duration of COMMAND)\n"
                                           + "/etc/mdevctl.d     \(privateRoot(s))/guests/guest1/etc/mdevctl.d\n"), "\(paths)")

            let ls = try s.cli("exec --guest guest1 -- sh -c 'ls /sys/bus/ap/devices; cat /sys/bus/ap/ap_adapter_mask'")
            #expect(ls.status == 0 && ls.stdout == "05.0004\n05.0047\n06.0004\n06.0047\ncard05\ncard06\n0x06" + String(repeating: "0", count: 62) + "\n", "\(ls)")
            let leftovers = sh("grep -c ' /tmp/apmatrix-exec' /proc/mounts; ls -d /tmp/apmatrix-exec.* 2>/dev/null | wc -l")
            #expect(leftovers.stdout == "0\n0\n", "the guest's tree is still mounted after exec: \(leftovers)")

            // A tree the guest has mounted already is used, and stays.
            #expect(try s.cli("guest mount guest1 \(q(kept))").status == 0)
            let again = try s.cli("exec --guest guest1 -- ls /sys/devices/ap")
            #expect(again.stdout == "card05\ncard06\n", "\(again)")
            #expect(isApmatrixMount(kept))
            let unknown = try s.cli("exec --guest nobody -- true")
            #expect(unknown.status == 1 && unknown.stderr.contains("ENOENT"), "\(unknown)")
            #expect(RealMachine.record() == before)
        }

        @Test func exitStatusStdoutAndStderrPassThrough() throws {
            let s = try ServeProcess()
            defer { s.finish(guestDirs: []) }
            let failing = try s.cli("exec -- sh -c 'echo out; echo oops >&2; exit 3'")
            #expect(failing.status == 3 && failing.stdout == "out\n" && failing.stderr == "oops\n", "\(failing)")
            let missing = try s.cli("exec -- /nonexistent/tool --flag")
            #expect(missing.status == 127 && missing.stderr == "apmatrix exec: /nonexistent/tool: No such file or directory\n", "\(missing)")
            let input = try s.cli("exec -- sh -c 'read line; echo \"[$line]\"' <<< 'from stdin'")
            #expect(input.stdout == "[from stdin]\n", "\(input)")
            // COMMAND killed by a signal: exec dies of the same signal.
            let killed = try s.cli("exec -- sh -c 'kill -USR1 $$'")
            #expect(killed.status == 128 + SIGUSR1, "\(killed)")
            // Nothing blocked or ignored: a pipe closed early ends its writer.
            let pipe = try s.cli("exec -- sh -c 'yes | head -1; trap'")
            #expect(pipe.stdout == "y\n", "\(pipe)")
        }

        @Test func signalsSentToExecReachTheCommand() throws {
            let s = try ServeProcess()
            defer { s.finish(guestDirs: []) }
            let p = try Spawned([try apmatrixExecutable(), "exec", "--server", s.server, "--", "sh", "-c",
                                 "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done"])
            #expect(p.waitForStdoutLine(timeout: 20) { $0 == "ready" } != nil, "\(p.stdoutText) \(p.stderrText)")
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 7, "\(p.stdoutText) \(p.stderrText)")
            #expect(p.stdoutText == "ready\ngot TERM\n")
        }

        @Test func twoHostsKeepTheirDefinitionsApart() throws {
            let before = RealMachine.record()
            let a = try ServeProcess(host: packageRoot() + "/hosts/seed-example.json"), b = try ServeProcess()
            defer { a.finish(guestDirs: []); b.finish(guestDirs: []) }
            #expect(try a.cli("exec -- mdevctl define -u \(uuidA) -p matrix -t vfio_ap-passthrough").status == 0)
            #expect(try b.cli("exec -- mdevctl define -u \(uuidB) -p matrix -t vfio_ap-passthrough").status == 0)
            // Both at once: each sees its own /sys and its own definitions.
            let both = sh("""
                APMATRIX_SERVER=\(q(a.server)) \(q(try apmatrixExecutable())) exec -- sh -c 'sleep 0.5; mdevctl list -d; ls /sys/devices/ap | head -1' > \(q(a.base))/out &
                APMATRIX_SERVER=\(q(b.server)) \(q(try apmatrixExecutable())) exec -- sh -c 'sleep 0.5; mdevctl list -d; ls /sys/devices/ap | head -1' > \(q(b.base))/out &
                wait; cat \(q(a.base))/out \(q(b.base))/out | sed '/^$/d'
                """, timeout: 40)
            #expect(both.stdout == "\(uuidA) matrix vfio_ap-passthrough manual\ncard04\n\(uuidB) matrix vfio_ap-passthrough manual\ncard00\n", "\(both)")
            #expect(RealMachine.record() == before)
        }

        @Test func refusedWithoutRootOrWithoutTheRightToMakeANamespace() throws {
            let s = try ServeProcess()
            defer { s.finish(guestDirs: []) }
            let exe = try apmatrixExecutable()
            let user = sh("setpriv --reuid=65534 --regid=65534 --clear-groups -- \(q(exe)) exec --server \(q(s.server)) -- touch /sys/x")
            #expect(user.status == 1 && user.stderr == "Error: EPERM: apmatrix exec needs root to make a private mount namespace (try sudo); nothing was run, the machine's /sys is untouched\n", "\(user)")
            let noAdmin = sh("setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin -- \(q(exe)) exec --server \(q(s.server)) -- touch /sys/x")
            #expect(noAdmin.status == 125 && noAdmin.stderr == "apmatrix exec: cannot make a private mount namespace (unshare: Operation not permitted): apmatrix exec needs root with CAP_SYS_ADMIN; nothing was run\n", "\(noAdmin)")
        }
    }
}
