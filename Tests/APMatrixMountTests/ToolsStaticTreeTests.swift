// The read tools against a hand-made directory tree that imitates a real
// s390 host's /sys (regular files with the kernel's formats, symlinks, the
// noise a real tree has: uevent, power/, subsystem): the read path does not
// depend on the emulator. No mount is involved.

import APMatrixModel
import APMatrixTools
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// A real host: adapters 03 (CEX7C, reserved for the host) and 05 (CEX8P,
/// given to vfio_ap), usage domains 6 and 11, control domains 6, 11, 12.
/// Queue 05.000b was unbound from vfio_ap; mdev `staticUUID` has 05.0006 and
/// 05.000b and a running guest, which got 05.0006 (APQI fallback).
let staticUUID = "a1b2c3d4-0000-4000-8000-000000000001"

struct StaticSysfs {
    let root: String

    init() throws {
        root = try makeTempDir("apmatrix-static")
        let zeros = String(repeating: "0", count: 60)
        file("bus/ap/apmask", "0xfb" + String(repeating: "f", count: 62))
        file("bus/ap/aqmask", "0x" + String(repeating: "f", count: 64))
        file("bus/ap/ap_max_adapter_id", "255")
        file("bus/ap/ap_max_domain_id", "255")
        file("bus/ap/ap_domain", "6")
        file("bus/ap/features", "APXA QACT")
        file("bus/ap/ap_adapter_mask", "0x1400" + zeros)
        file("bus/ap/ap_usage_domain_mask", "0x0210" + zeros)
        file("bus/ap/ap_control_domain_mask", "0x0218" + zeros)
        file("bus/ap/uevent", "")
        for d in ["cex4card", "cex4queue", "vfio_ap"] { file("bus/ap/drivers/\(d)/bind", ""); file("bus/ap/drivers/\(d)/unbind", "") }
        card("03", type: "CEX7C", hwtype: 13)
        card("05", type: "CEX8P", hwtype: 14)
        queue("03.0006", driver: "cex4queue")
        queue("03.000b", driver: "cex4queue")
        queue("05.0006", driver: "vfio_ap")
        queue("05.000b", driver: nil)
        let t = "devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough"
        file(t + "/name", "VFIO AP Passthrough Device")
        file(t + "/available_instances", "65535")
        let m = "devices/vfio_ap/matrix/" + staticUUID
        file(m + "/matrix", "05.0006\n05.000b")
        file(m + "/guest_matrix", "05.0006")
        file(m + "/control_domains", "000b")
        file(m + "/uevent", "MDEV_TYPE=vfio_ap-passthrough")
        link(m + "/iommu_group", "../../../../kernel/iommu_groups/0")
        link(t + "/devices/" + staticUUID, "../../../" + staticUUID)
        file("devices/vfio_ap/matrix/uevent", "")
        mkdirs("devices/vfio_ap/matrix/power")
    }

    func remove() { _ = sh("rm -rf \(q(root))") }

    func mkdirs(_ rel: String) { _ = sh("mkdir -p \(q(root + "/" + rel))") }

    func file(_ rel: String, _ text: String) {
        mkdirs(String(rel.split(separator: "/").dropLast().joined(separator: "/")))
        _ = FileManager.default.createFile(atPath: root + "/" + rel, contents: Data((text + (text.isEmpty ? "" : "\n")).utf8))
    }

    func link(_ rel: String, _ target: String) {
        mkdirs(String(rel.split(separator: "/").dropLast().joined(separator: "/")))
        symlink(target, root + "/" + rel)
    }

    func card(_ id: String, type: String, hwtype: Int) {
        let c = "devices/ap/card" + id
        file(c + "/type", type)
        file(c + "/hwtype", "\(hwtype)")
        file(c + "/raw_hwtype", "\(hwtype)")
        file(c + "/config", "1")
        file(c + "/online", "1")
        file(c + "/uevent", "DEV_TYPE=\(hwtype)")
        mkdirs(c + "/power")
        link(c + "/driver", "../../../bus/ap/drivers/cex4card")
        link(c + "/subsystem", "../../../bus/ap")
        link("bus/ap/devices/card" + id, "../../../" + c)
        link("bus/ap/drivers/cex4card/card" + id, "../../../../" + c)
    }

    func queue(_ name: String, driver: String?) {
        let qd = "devices/ap/card" + name.prefix(2) + "/" + name
        file(qd + "/config", "1")
        file(qd + "/interrupt", "Interrupts enabled.")
        link(qd + "/subsystem", "../../../../bus/ap")
        if let driver {
            link(qd + "/driver", "../../../../bus/ap/drivers/" + driver)
            link("bus/ap/drivers/\(driver)/\(name)", "../../../../" + qd)
        }
        if driver == "cex4queue" { file(qd + "/online", "1") }
        link("bus/ap/devices/" + name, "../../../" + qd)
    }
}

extension MountTests {
    @Suite struct ToolsOnAStaticTree {
        @Test func snapshotReadsEveryFileOfARealLayout() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            let s = try Snapshot.read(SysfsDirectory(t.root))
            #expect(s.apmask.contains(3) && !s.apmask.contains(5))
            #expect(s.maxAdapter == 255 && s.maxDomain == 255 && s.apxa && s.apDomain == 6)
            #expect(s.hostConfiguration == Matrix(apm: Bitmap256([3, 5]), aqm: Bitmap256([6, 11]), adm: Bitmap256([6, 11, 12])))
            #expect(s.cards.keys.sorted() == [3, 5])
            let c5 = try #require(s.cards[5])
            #expect(c5.type == "CEX8P" && c5.hwtype == 14 && c5.config == true && c5.online == true && c5.driver == "cex4card")
            #expect(s.queues.keys.sorted().map(\.description) == ["03.0006", "03.000b", "05.0006", "05.000b"])
            #expect(s.queues[APQN(5, 11)]?.driver == nil && s.queues[APQN(5, 6)]?.driver == "vfio_ap")
            #expect(s.mdevs.map(\.uuid.description) == [staticUUID])
            #expect(s.mdevs[0].matrix == Matrix(apm: Bitmap256([5]), aqm: Bitmap256([6, 11]), adm: Bitmap256([11])))
            #expect(s.mdevs[0].guest == .matrix(Matrix(apm: Bitmap256([5]), aqm: Bitmap256([6]))))
            #expect(s.mdevs[0].iommuGroup == 0)
            #expect(s.availableInstances == 65535 && s.notes.isEmpty)
        }

        /// A tree whose matrix device lists `ap_config` in `features` is a
        /// Linux 6.x host: the tools say so and explain by its rule (APIDs
        /// only, no APQI fallback).
        @Test func upstreamTreeIsDetectedAndExplainedByItsRule() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            #expect(try Snapshot.read(SysfsDirectory(t.root)).profile == .seed)
            t.file("devices/vfio_ap/matrix/features", "guest_matrix hotplug ap_config\n")
            let s = try Snapshot.read(SysfsDirectory(t.root))
            #expect(s.profile == .upstream)
            #expect(LsReport(s).text.hasPrefix("AP devices of \(t.root) (upstream profile)\n"))
            let m = try #require(s.mdev(mdevUUID(staticUUID)))
            #expect(try PlanHost(s).host.filterTrace(m.matrix).shadow.apm.isEmpty, "upstream drops adapter 5 for its unbound 05.000b and has no fallback")
            #expect(try ExplainReport(s, mdev: m).text.hasPrefix(
                "mdev a1b2c3d4-0000-4000-8000-000000000001: 2 APQNs assigned, 1 in its guest (upstream profile rules)\n"))
        }

        @Test func lsGolden() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            let s = try Snapshot.read(SysfsDirectory(t.root))
            #expect(LsReport(s).text == """
                AP devices of \(t.root) (seed profile)
                DEVICE   TYPE   HWTYPE  CONFIG  ONLINE  DRIVER     MDEV                                  GUEST
                card03   CEX7C  13      1       1       cex4card   -                                     -
                03.0006  CEX7C  13      1       1       cex4queue  -                                     no
                03.000b  CEX7C  13      1       1       cex4queue  -                                     no
                card05   CEX8P  14      1       1       cex4card   -                                     -
                05.0006  CEX8P  14      1       -       vfio_ap    a1b2c3d4-0000-4000-8000-000000000001  yes
                05.000b  CEX8P  14      1       -       -          a1b2c3d4-0000-4000-8000-000000000001  no

                """)
            #expect(LsReport(s, filter: .init(domain: 11)).text == """
                AP devices of \(t.root) (seed profile)
                DEVICE   TYPE   HWTYPE  CONFIG  ONLINE  DRIVER     MDEV                                  GUEST
                03.000b  CEX7C  13      1       1       cex4queue  -                                     no
                05.000b  CEX8P  14      1       -       -          a1b2c3d4-0000-4000-8000-000000000001  no

                """)
            #expect(LsReport(s, filter: .init(adapter: 3)).text.split(separator: "\n").map { String($0.prefix(8)) }
                    == ["AP devic", "DEVICE  ", "card03  ", "03.0006 ", "03.000b "])
            #expect(LsReport(s, filter: .init(mdev: mdevUUID(staticUUID.uppercased()))).queues.map(\.apqn.description) == ["05.0006", "05.000b"])
        }

        @Test func lsJSONSchema() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            let s = try Snapshot.read(SysfsDirectory(t.root))
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(LsReport(s).json.utf8)) as? [String: Any])
            #expect(Set(obj.keys) == ["schema", "sysfs", "profile", "cards", "queues"])
            #expect(obj["profile"] as? String == "seed")
            #expect(obj["schema"] as? String == "apmatrix.ls/1")
            let cards = try #require(obj["cards"] as? [[String: Any]])
            #expect(Set(cards[0].keys) == ["apid", "name", "type", "hwtype", "config", "online", "driver"])
            #expect(cards[1]["name"] as? String == "card05" && cards[1]["hwtype"] as? Int == 14)
            let queues = try #require(obj["queues"] as? [[String: Any]])
            #expect(Set(queues[0].keys) == ["apqn", "apid", "apqi", "type", "hwtype", "config", "online", "driver",
                                            "driverOverride", "reserved", "mdev", "inGuest"])
            #expect(queues[0]["driverOverride"] is NSNull, "a kernel without driver_override")
            let q3 = queues[3]
            #expect(q3["apqn"] as? String == "05.000b" && q3["apqi"] as? Int == 11)
            #expect(q3["driver"] is NSNull && q3["online"] is NSNull && q3["reserved"] as? Bool == false)
            #expect(q3["mdev"] as? String == staticUUID && q3["inGuest"] as? Bool == false)
            #expect(queues[0]["reserved"] as? Bool == true && queues[0]["mdev"] is NSNull)
        }

        @Test func matrixGolden() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            let s = try Snapshot.read(SysfsDirectory(t.root))
            #expect(try MatrixPicture(s).text == """
                AP matrix of \(t.root) (seed profile)
                adapters across, usage domains down (hex)
                           03  05
                0006       H   A
                000b       H   a!

                H  reserved for the host (bound to cex4queue by apmask/aqmask)
                A  in the guest of mdev a
                a! assigned to mdev a, filtered out of its guest (apmatrix explain)

                a  a1b2c3d4-0000-4000-8000-000000000001  guest has 1 of 2 APQNs, control domains 11

                """)
            let coloured = try MatrixPicture(s, colour: true).text
            #expect(coloured.contains("\u{1B}[31ma!\u{1B}[0m") && coloured.contains("\u{1B}[2mH \u{1B}[0m"))
        }

        @Test func matrixJSONSchema() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            let s = try Snapshot.read(SysfsDirectory(t.root))
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(try MatrixPicture(s).json.utf8)) as? [String: Any])
            #expect(Set(obj.keys) == ["schema", "sysfs", "profile", "adapters", "domains", "cells", "mdevs"])
            #expect(obj["schema"] as? String == "apmatrix.matrix/1" && obj["profile"] as? String == "seed")
            #expect(obj["adapters"] as? [Int] == [3, 5] && obj["domains"] as? [Int] == [6, 11])
            let cells = try #require(obj["cells"] as? [[String: Any]])
            #expect(cells.map { $0["apqn"] as? String } == ["03.0006", "05.0006", "03.000b", "05.000b"])
            #expect(cells.map { $0["state"] as? String } == ["host", "in-guest", "host", "filtered"])
            #expect(cells[1]["mdev"] as? String == staticUUID && cells[0]["mdev"] is NSNull)
            let mdevs = try #require(obj["mdevs"] as? [[String: Any]])
            #expect(Set(mdevs[0].keys) == ["uuid", "letter", "guest", "controlDomains"])
            #expect(mdevs[0]["letter"] as? String == "a" && mdevs[0]["controlDomains"] as? [Int] == [11])
        }

        @Test func explainGolden() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            let s = try Snapshot.read(SysfsDirectory(t.root))
            let m = try #require(s.mdev(mdevUUID(staticUUID)))
            #expect(try ExplainReport(s, mdev: m).text == """
                mdev a1b2c3d4-0000-4000-8000-000000000001: 2 APQNs assigned, 1 in its guest (seed profile rules)

                05.000b
                  why:  no adapter had all its queues bound to vfio_ap, so the APQI fallback chose domains instead; domain 000b is dropped because queue 05.000b is bound to no driver (it was unbound)
                  rule: SPEC §3 Filtering step 3 (APQI fallback)
                  do:   echo 05.000b > bus/ap/drivers/vfio_ap/bind

                """)
            #expect(try ExplainReport(s, mdev: m, apqn: APQN(5, 6)).text == """
                mdev a1b2c3d4-0000-4000-8000-000000000001: 2 APQNs assigned, 1 in its guest (seed profile rules)
                05.0006 is in the guest

                """)
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(try ExplainReport(s, mdev: m).json.utf8)) as? [String: Any])
            #expect(Set(obj.keys) == ["schema", "mdev", "guest", "assigned", "inGuest", "missing"])
            #expect(obj["schema"] as? String == "apmatrix.explain/1" && obj["guest"] as? Bool == true)
            #expect(obj["assigned"] as? [String] == ["05.0006", "05.000b"] && obj["inGuest"] as? [String] == ["05.0006"])
            let missing = try #require(obj["missing"] as? [[String: String]])
            #expect(missing.count == 1 && missing[0]["apqn"] == "05.000b" && missing[0]["reason"] == "domain-filtered")
            #expect(Set(missing[0].keys) == ["apqn", "reason", "why", "rule", "action"])
        }

        @Test func missingOptionalFilesAreDerivedAndNoted() throws {
            let t = try StaticSysfs()
            defer { t.remove() }
            for f in ["ap_adapter_mask", "ap_usage_domain_mask", "ap_control_domain_mask", "ap_domain"] { unlink(t.root + "/bus/ap/" + f) }
            unlink(t.root + "/devices/vfio_ap/matrix/\(staticUUID)/guest_matrix")
            let s = try Snapshot.read(SysfsDirectory(t.root))
            #expect(s.hostConfiguration == Matrix(apm: Bitmap256([3, 5]), aqm: Bitmap256([6, 11]), adm: Bitmap256([6, 11])))
            #expect(s.apDomain == nil && s.notes.count == 1)
            #expect(s.mdevs[0].guest == .unknown)
            #expect(try ExplainReport(s, mdev: s.mdevs[0]).missing.map(\.explanation.reason) == ["guest-unknown", "guest-unknown"])
        }

        @Test func notASysfsTreeIsOneClearError() throws {
            let dir = try makeTempDir("apmatrix-static")
            defer { rmdir(dir) }
            #expect(throws: SnapshotError.self) { try Snapshot.read(SysfsDirectory(dir)) }
            do { _ = try Snapshot.read(SysfsDirectory(dir)) } catch {
                #expect(error.description.contains("bus/ap/apmask: ENOENT"), "\(error)")
            }
        }
    }
}
