// libudev against the emulated host through `apmatrix exec --udev`
// (docs/udev-libvirt.md): readdir's entry types, `udevadm info` on every
// kind of device, the preload library alone, a pyudev monitor receiving an
// mdev's events while the machine's own network namespace receives none.

import APMatrixTesting
import Foundation
import Glibc
import Testing

/// The seed example under the upstream profile, adapters 5 and 6 and
/// domains 4, 0x47, 0xab, 0xff free for vfio_ap (V4), mdev `uuidA` created.
func udevHost() throws -> ServeProcess {
    let s = try ServeProcess(host: packageRoot() + "/hosts/seed-example.json", profile: "upstream")
    let r = sh("""
        cd \(q(s.sys)) && echo -5,-6 > bus/ap/apmask && echo -4,-0x47,-0xab,-0xff > bus/ap/aqmask \
        && echo \(uuidA) > devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create
        """)
    #expect(r.status == 0, "\(r)")
    return s
}

extension MountTests {
    @Suite struct Udev {
        /// Every readdir entry has its type (sd-device skips DT_UNKNOWN ones).
        @Test func readdirGivesEachEntrysType() throws {
            try withMount { m in
                func types(_ dir: String) -> [String: UInt8] {
                    guard let d = opendir(m.path(dir)) else { return [:] }
                    defer { closedir(d) }
                    var out: [String: UInt8] = [:]
                    while let e = readdir(d) {
                        let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                        out[name] = e.pointee.d_type
                    }
                    return out
                }
                let dir = UInt8(DT_DIR), lnk = UInt8(DT_LNK), reg = UInt8(DT_REG)
                #expect(types("bus") == [".": dir, "..": dir, "ap": dir, "matrix": dir, "mdev": dir])
                let devices = types("bus/ap/devices")
                #expect(devices.count == 2 + 4 + 4 * 19, "\(devices.count)")
                #expect(devices["card05"] == lnk && devices["05.0004"] == lnk)
                #expect(Set(devices.filter { $0.key.first != "." }.values) == [lnk])
                let card = types("devices/ap/card05")
                #expect(card["uevent"] == reg && card["subsystem"] == lnk && card["05.0004"] == dir && card["config"] == reg)
            }
        }

        static let info = """
            P: /devices/ap/card05
            M: card05
            R: 05
            U: ap
            T: ap_card
            V: cex4card
            E: DEVPATH=/devices/ap/card05
            E: SUBSYSTEM=ap
            E: DEVTYPE=ap_card
            E: DRIVER=cex4card
            E: DEV_TYPE=000E
            E: MODALIAS=ap:t0E
            E: MODE=cca

            P: /devices/ap/card05/05.0004
            M: 05.0004
            R: 0004
            U: ap
            T: ap_queue
            V: vfio_ap
            E: DEVPATH=/devices/ap/card05/05.0004
            E: SUBSYSTEM=ap
            E: DEVTYPE=ap_queue
            E: DRIVER=vfio_ap
            E: MODE=cca

            P: /devices/vfio_ap/matrix
            M: matrix
            U: matrix
            V: vfio_ap
            E: DEVPATH=/devices/vfio_ap/matrix
            E: SUBSYSTEM=matrix
            E: DRIVER=vfio_ap

            P: /devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804
            M: 62177883-f1bb-47f0-914d-32a22e3a8804
            R: 8804
            U: mdev
            V: vfio_ap_mdev
            E: DEVPATH=/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804
            E: SUBSYSTEM=mdev
            E: DRIVER=vfio_ap_mdev

            P: /devices/ap
            M: ap


            """

        /// `udevadm info` inside `exec --udev` prints what the page's
        /// experiments printed for the kernel's contents (§3), through the
        /// symlinks a user gives too; outside, nothing changed.
        @Test func udevadmInfoShowsTheKernelsProperties() throws {
            let s = try udevHost()
            defer { s.finish(guestDirs: []) }
            let devices = ["/sys/bus/ap/devices/card05", "/sys/devices/ap/card05/05.0004", "/sys/class/mdev_bus/matrix",
                           "/sys/bus/mdev/devices/\(uuidA)", "/sys/devices/ap"]
            let r = try s.cli("exec --udev -- sh -c \(q("for d in \(devices.joined(separator: " ")); do udevadm info $d; done"))")
            #expect(r.status == 0 && r.stdout == Self.info, "\(r)")

            // The preload library alone (without the variable that turns the check off).
            let shim = try s.cli("exec --udev -- env -u SYSTEMD_DEVICE_VERIFY_SYSFS sh -c \(q("udevadm info --query=property /sys/devices/ap/card05 && stat -f -c %t /sys /sys/devices/ap/card05"))")
            #expect(shim.status == 0 && shim.stdout == """
                DEVPATH=/devices/ap/card05
                DEVTYPE=ap_card
                DRIVER=cex4card
                DEV_TYPE=000E
                MODALIAS=ap:t0E
                MODE=cca
                SUBSYSTEM=ap
                62656572
                62656572

                """, "\(shim)")
            // Only FUSE under /sys: another filesystem keeps its type (ext4, tmpfs, … as outside).
            let tmp = sh("stat -f -c %t /tmp").stdout
            let inside = try s.cli("exec --udev -- stat -f -c %t /tmp")
            #expect(inside.stdout == tmp && !tmp.isEmpty, "\(inside) vs \(tmp)")

            // Outside the namespace: the machine's /sys, no preload, the mount is FUSE.
            let outside = sh("udevadm info /sys/devices/ap/card05")
            #expect(outside.status == 1 && outside.stderr == "Unknown device \"/sys/devices/ap/card05\": No such device\n", "\(outside)")
            #expect(sh("stat -f -c %t \(q(s.sys))").stdout == "65735546\n")
            // Without --udev, exec is as before: no preload, so sd-device refuses the FUSE tree.
            let plain = try s.cli("exec -- udevadm info /sys/devices/ap/card05")
            #expect(plain.status == 1 && plain.stderr.contains("No such device"), "\(plain)")
        }

        /// A pyudev monitor inside `exec --udev` gets an mdev's `add`, `bind`,
        /// `unbind` and `remove` as udevd's messages, in order, for a create
        /// and remove through the mount; a listener in the machine's own
        /// network namespace gets none of them.
        @Test func aMonitorReceivesAnMdevsEventsAndTheMachineNone() throws {
            let py = try python(modules: ["pyudev"])
            let s = try udevHost()
            defer { s.finish(guestDirs: []) }
            let u = uuidB
            let stop = s.base + "/stop-listening"
            let outside = try Spawned([py, packageRoot() + "/Tests/udev/listen.py", u, stop, "60"])
            defer { outside.signal(SIGKILL); outside.reap(timeout: 5) }
            #expect(outside.waitForStdoutLine(timeout: 20) { $0 == "listening" } != nil, "\(outside.stderrText)")
            let env = ProcessInfo.processInfo.environment.merging(["APMATRIX_SERVER": s.server, "APMATRIX_RUN_DIR": s.runDirectory]) { $1 }
            let monitor = try Spawned([try apmatrixExecutable(), "exec", "--udev", "--", py, packageRoot() + "/Tests/udev/monitor.py", "mdev", "4"],
                                      environment: env)
            defer { monitor.signal(SIGKILL); monitor.reap(timeout: 5) }
            #expect(monitor.waitForStdoutLine(timeout: 30) { $0 == "ready" } != nil, "\(monitor.stderrText)")

            let M = s.sys + "/devices/vfio_ap/matrix"
            #expect(writeAttr(M + "/mdev_supported_types/vfio_ap-passthrough/create", u) == .ok)
            #expect(writeAttr(M + "/\(u)/remove", "1") == .ok)
            #expect(monitor.reap(timeout: 30) == 0, "\(monitor.stderrText)")
            let d = "/devices/vfio_ap/matrix/\(u) mdev"
            #expect(monitor.stdoutText == """
                ready
                add \(d) - True True
                bind \(d) vfio_ap_mdev True True
                unbind \(d) - True True
                remove \(d) - True True

                """, "\(monitor.stderrText)")
            #expect(FileManager.default.createFile(atPath: stop, contents: nil))
            #expect(outside.reap(timeout: 10) == 0)
            #expect(outside.stdoutText == "listening\n0\n", "\(outside.stderrText)")
        }

        /// What `--udev` refuses, and what it says it makes: a guest's tree has
        /// no uevents; without its preload library beside the executable it
        /// runs nothing and says how to build it.
        @Test func refusalsAndPaths() throws {
            let s = try udevHost()
            defer { s.finish(guestDirs: []) }
            let guest = try s.cli("exec --udev --guest g1 -- true")
            #expect(guest.status == 64 && guest.stderr.contains("--udev shows the host's devices and uevents to libudev; a guest's tree has none"), "\(guest)")
            let paths = try s.cli("exec --udev --print-paths")
            #expect(paths.status == 0 && paths.stdout.contains("\n/run               a private tmpfs with udev/control (--udev), its own network namespace\n"), "\(paths)")

            let lone = s.base + "/lone"
            #expect(sh("mkdir -p \(q(lone)) && cp \(q(try apmatrixExecutable())) \(q(lone))/apmatrix").status == 0)
            let r = sh("APMATRIX_SERVER=\(q(s.server)) APMATRIX_RUN_DIR=\(q(s.runDirectory)) \(q(lone))/apmatrix exec --udev -- touch \(q(lone))/ran", timeout: 60)
            #expect(r.status == 1 && r.stderr.contains("--udev needs libapmatrix-sysfs-magic.so beside apmatrix (\(lone)/libapmatrix-sysfs-magic.so): build it with `swift build --product apmatrix-sysfs-magic`"), "\(r)")
            #expect(access(lone + "/ran", F_OK) != 0, "COMMAND ran")
        }
    }
}
