// Debian's mdevctl 1.2.0 against a real mount, run exactly as clients.md
// shows: a private mount namespace with the mount bound over /sys and a temp
// dir over /etc/mdevctl.d. The real /sys and /etc/mdevctl.d are never touched.

import APMatrixRuntime
import APMatrixModel
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// mdevctl ends its listings with an empty line.
func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }

/// A temp /etc/mdevctl.d with the directories mdevctl requires.
struct MdevctlEtc {
    let dir: String
    init() throws {
        dir = try makeTempDir("apmatrix-mt-etc")
        for sub in ["scripts.d", "scripts.d/callouts", "scripts.d/notifiers"] {
            guard mkdir(dir + "/" + sub, 0o755) == 0 else { throw TestFailure("mkdir \(sub): \(errnoText(errno))") }
        }
    }
    func remove() { _ = sh("rm -rf \(q(dir))") }
    func config(_ uuid: String) -> String { dir + "/matrix/" + uuid }
}

/// `mdevctl ARGS` in a private mount namespace (clients.md, verbatim).
func mdevctl(_ m: Mounted, _ etc: MdevctlEtc, _ args: String) -> ShellResult {
    sh("unshare -m --propagation private sh -c 'mount --bind \"$0\" /sys && mount --bind \"$1\" /etc/mdevctl.d && shift && exec \"$@\"' \(q(m.root)) \(q(etc.dir)) mdevctl \(args)",
       timeout: 30)
}

extension MountTests {
    @Suite struct Mdevctl {
        init() throws {
            // The namespace trick needs both mount points to exist; they are never written to.
            #expect(access("/etc/mdevctl.d", F_OK) == 0, "/etc/mdevctl.d is missing (bind target)")
            #expect(access("/usr/bin/mdevctl", X_OK) == 0, "mdevctl is not installed")
        }

        @Test func types() throws {
            let etc = try MdevctlEtc()
            defer { etc.remove() }
            try withMount { m in
                let r = mdevctl(m, etc, "types")
                #expect(r.status == 0, "\(r)")
                #expect(trimmed(r.stdout) == """
                    matrix
                      vfio_ap-passthrough
                        Available instances: 65536
                        Device API: vfio-ap
                        Name: VFIO AP Passthrough Device
                    """, "\(r)")
                try createMdev(m, uuidA)
                let r2 = mdevctl(m, etc, "types")
                #expect(r2.stdout.contains("Available instances: 65535"), "\(r2)")
            }
        }

        @Test func defineModifyStartListStopUndefine() throws {
            let etc = try MdevctlEtc()
            defer { etc.remove() }
            try withMount { m in
                try applyV4Masks(m)
                let u = uuidA
                let def = mdevctl(m, etc, "define -u \(u) -p matrix -t vfio_ap-passthrough")
                #expect(def.status == 0, "\(def)")
                #expect(access(etc.config(u), F_OK) == 0, "define wrote no config")
                for (attr, value) in [("assign_adapter", "5"), ("assign_adapter", "0x06"), ("assign_domain", "0x0004"),
                                      ("assign_domain", "71"), ("assign_control_domain", "4"), ("assign_control_domain", "0xab")] {
                    let r = mdevctl(m, etc, "modify -u \(u) --addattr \(attr) --value \(value)")
                    #expect(r.status == 0, "modify \(attr) \(value): \(r)")
                }
                let json = try String(contentsOfFile: etc.config(u), encoding: .utf8)
                let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
                let attrs = (obj?["attrs"] as? [[String: String]]) ?? []
                #expect(attrs == [["assign_adapter": "5"], ["assign_adapter": "0x06"], ["assign_domain": "0x0004"],
                                  ["assign_domain": "71"], ["assign_control_domain": "4"], ["assign_control_domain": "0xab"]],
                        "\(json)")
                #expect(obj?["mdev_type"] as? String == "vfio_ap-passthrough")

                let listDefined = mdevctl(m, etc, "list -d")
                #expect(listDefined.status == 0 && trimmed(listDefined.stdout) == "\(u) matrix vfio_ap-passthrough manual", "\(listDefined)")
                #expect(statErrno(m.mdev(u)) == ENOENT)

                // start: create, then the attributes in order, through the mount
                let start = mdevctl(m, etc, "start -u \(u)")
                #expect(start.status == 0, "\(start)")
                #expect(realPath(m.path("bus/mdev/devices/\(u)")) == m.mdev(u))
                #expect(cat(m.mdev(u) + "/matrix") == "05.0004\n05.0047\n06.0004\n06.0047\n")
                #expect(cat(m.mdev(u) + "/control_domains") == "0004\n00ab\n")
                #expect(cat(m.typeDir + "/available_instances") == "65535\n")

                let list = mdevctl(m, etc, "list")
                #expect(list.status == 0 && list.stdout.hasPrefix("\(u) matrix vfio_ap-passthrough manual"), "\(list)")
                let listD = mdevctl(m, etc, "list -d")
                #expect(listD.status == 0 && trimmed(listD.stdout) == "\(u) matrix vfio_ap-passthrough manual (active)", "\(listD)")
                // a second start of a running device is refused and changes nothing
                let again = mdevctl(m, etc, "start -u \(u)")
                #expect(again.status != 0, "\(again)")
                #expect(cat(m.mdev(u) + "/matrix") == "05.0004\n05.0047\n06.0004\n06.0047\n")

                // stop: writes 1 to remove
                let stop = mdevctl(m, etc, "stop -u \(u)")
                #expect(stop.status == 0, "\(stop)")
                #expect(statErrno(m.mdev(u)) == ENOENT)
                #expect(statErrno(m.path("bus/mdev/devices/\(u)")) == ENOENT)
                #expect(cat(m.typeDir + "/available_instances") == "65536\n")
                let listAfter = mdevctl(m, etc, "list")
                #expect(listAfter.status == 0 && trimmed(listAfter.stdout).isEmpty, "\(listAfter)")

                // undefine
                let undef = mdevctl(m, etc, "undefine -u \(u)")
                #expect(undef.status == 0, "\(undef)")
                #expect(access(etc.config(u), F_OK) != 0)
                let listNone = mdevctl(m, etc, "list -d")
                #expect(listNone.status == 0 && trimmed(listNone.stdout).isEmpty, "\(listNone)")
            }
        }

        /// Modern mdevctl configurations set a whole matrix at once through
        /// `ap_config` (upstream profile, kernel-reference §3.5); the value is
        /// written verbatim, as any attribute.
        @Test func apConfigInAConfigUpstream() throws {
            let etc = try MdevctlEtc()
            defer { etc.remove() }
            try withMount(profile: .upstream) { m in
                try applyV4Masks(m)
                let u = uuidA
                #expect(mdevctl(m, etc, "define -u \(u) -p matrix -t vfio_ap-passthrough").status == 0)
                let config = "0x0600000000000000000000000000000000000000000000000000000000000000,"
                    + "0x0800000000000000010000000000000000000000000000000000000000000000,"
                    + "0x0800000000000000000000000000000000000000000000000000000000000000"
                let modify = mdevctl(m, etc, "modify -u \(u) --addattr ap_config --value \(config)")
                #expect(modify.status == 0, "\(modify)")
                let start = mdevctl(m, etc, "start -u \(u)")
                #expect(start.status == 0, "\(start)")
                #expect(cat(m.mdev(u) + "/matrix") == "05.0004\n05.0047\n06.0004\n06.0047\n")
                #expect(cat(m.mdev(u) + "/ap_config") == config + "\n")
                #expect(cat(m.mdev(u) + "/guest_matrix") == "05.0004\n05.0047\n06.0004\n06.0047\n")
                #expect(cat(m.matrixDir + "/features") == "guest_matrix hotplug ap_config\n")
                #expect(mdevctl(m, etc, "stop -u \(u)").status == 0)
                // A matrix that shares nothing but is reserved for the host fails, and mdevctl removes the device.
                #expect(mdevctl(m, etc, "modify -u \(u) --delattr").status == 0)
                let reserved = "0x0800000000000000000000000000000000000000000000000000000000000000,0x80,0x"
                #expect(mdevctl(m, etc, "modify -u \(u) --addattr ap_config --value \(reserved)").status == 0)
                let refused = mdevctl(m, etc, "start -u \(u)")
                #expect(refused.status != 0, "\(refused)")
                #expect(statErrno(m.mdev(u)) == ENOENT)
            }
        }

        @Test func startWithAFailingAttributeRemovesTheDevice() throws {
            let etc = try MdevctlEtc()
            defer { etc.remove() }
            try withMount { m in
                try applyV4Masks(m)
                let u = uuidB
                #expect(mdevctl(m, etc, "define -u \(u) -p matrix -t vfio_ap-passthrough").status == 0)
                // adapter 4 with domain 0: 04.0000 is reserved for the host -> EADDRNOTAVAIL
                #expect(mdevctl(m, etc, "modify -u \(u) --addattr assign_adapter --value 4").status == 0)
                #expect(mdevctl(m, etc, "modify -u \(u) --addattr assign_domain --value 0").status == 0)
                let seq = lastSequence(m)
                let start = mdevctl(m, etc, "start -u \(u)")
                #expect(start.status != 0, "\(start)")
                #expect(start.stderr.contains("Cannot assign requested address"), "\(start)")
                #expect(start.stderr.contains("assign_domain"), "\(start)")
                // mdevctl wrote 1 to remove: the device is gone, the instance is back
                #expect(statErrno(m.mdev(u)) == ENOENT)
                #expect(listDir(m.matrixDir)?.contains(u) == false)
                #expect(cat(m.typeDir + "/available_instances") == "65536\n")
                let lines = logLines(m, after: seq)
                #expect(lines.contains { $0.contains(u) && $0.contains("created") }, "\(lines)")
                #expect(lines.contains { $0.contains(u) && $0.contains("removed") }, "\(lines)")
                let list = mdevctl(m, etc, "list")
                #expect(list.status == 0 && trimmed(list.stdout).isEmpty, "\(list)")

                // a sharing conflict fails the same way (EADDRINUSE)
                try createMdev(m, uuidA)
                #expect(writeAttr(m.mdev(uuidA) + "/assign_adapter", "5") == .ok)
                #expect(writeAttr(m.mdev(uuidA) + "/assign_domain", "4") == .ok)
                let u3 = uuid3
                #expect(mdevctl(m, etc, "define -u \(u3) -p matrix -t vfio_ap-passthrough").status == 0)
                #expect(mdevctl(m, etc, "modify -u \(u3) --addattr assign_domain --value 4").status == 0)
                #expect(mdevctl(m, etc, "modify -u \(u3) --addattr assign_adapter --value 5").status == 0)
                let start3 = mdevctl(m, etc, "start -u \(u3)")
                #expect(start3.status != 0 && start3.stderr.contains("Address already in use"), "\(start3)")
                #expect(statErrno(m.mdev(u3)) == ENOENT)
                #expect(cat(m.mdev(uuidA) + "/matrix") == "05.0004\n")
            }
        }
    }
}
