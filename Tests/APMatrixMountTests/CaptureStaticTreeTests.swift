// `apmatrix capture` on a hand-made tree shaped like a real 6.x LPAR's /sys
// (docs/upstream-ap-bus.md §1, §5, §7): the bus attributes and the card and
// queue attributes of the kernel, driver-core files and links, no vfio_ap
// module loaded and nothing of apmatrix's. No mount is read.

import APMatrixTesting
import Foundation
import Glibc
import Testing

/// Adapters 03 (CEX8C, domains 6, 11, 0x20), 05 (CEX7P, only domain 6:
/// restricted), 06 (CEX8A, deconfigured: out of QCI, as SPEC §1's firmware
/// has it) and 09 (in QCI, no card: pre-CEX4);
/// control domains 6, 11, 0x20, 0x21; adapter interruptions in use.
struct LPARSysfs {
    let tree: StaticSysfs

    init() throws {
        tree = try StaticSysfs(empty: ())
        let zeros = { (n: Int) in String(repeating: "0", count: n) }
        let bus: [String: String] = [
            "apmask": "0x" + String(repeating: "f", count: 64), "aqmask": "0x" + String(repeating: "f", count: 64),
            "ap_adapter_mask": "0x1440" + zeros(60), "ap_usage_domain_mask": "0x0210" + zeros(4) + "80" + zeros(54),
            "ap_control_domain_mask": "0x0210" + zeros(4) + "c0" + zeros(54), "ap_domain": "6", "ap_interrupts": "1",
            "ap_max_adapter_id": "255", "ap_max_domain_id": "255", "features": "APSC APXA QACT RC8A",
            "config_time": "30", "poll_thread": "0", "poll_timeout": "250000", "scans": "3",
            "bindings": "4/4 (complete)", "drivers_autoprobe": "1", "drivers_probe": "", "uevent": "",
        ]
        for (name, text) in bus { tree.file("bus/ap/" + name, text) }
        for d in ["cex4card", "cex4queue", "vfio_ap"] {
            for f in ["bind", "unbind", "uevent"] { tree.file("bus/ap/drivers/\(d)/\(f)", "") }
        }
        tree.file("devices/ap/uevent", "")
        lparCard("03", type: "CEX8C", hwtype: 14, modalias: "ap:t0E", functions: "0x92000000", queues: ["0006", "000b", "0020"])
        lparCard("05", type: "CEX7P", hwtype: 13, modalias: "ap:t0D", functions: "0x06000000", queues: ["0006"])
        lparCard("06", type: "CEX8A", hwtype: 14, modalias: "ap:t0E", functions: "0x68000000", queues: [], config: 0)
    }

    func lparCard(_ id: String, type: String, hwtype: Int, modalias: String, functions: String, queues: [String], config: Int = 1) {
        let c = "devices/ap/card" + id
        let attrs: [String: String] = [
            "ap_functions": functions, "chkstop": "0", "config": "\(config)", "depth": "8", "hwtype": "\(hwtype)",
            "max_msg_size": "12288", "modalias": modalias,
            "pendingq_count": "0", "raw_hwtype": "\(hwtype)", "request_count": "0", "requestq_count": "0",
            "uevent": "DEV_TYPE=\(hwtype)\nDRIVER=cex4card\nMODALIAS=\(modalias)", "type": type, "online": "\(config)", "load": "0",
        ]
        device(c, name: "card" + id, driver: "cex4card", attrs)
        for q in queues {
            let name = id + "." + q
            device(c + "/" + name, name: name, driver: "cex4queue", [
                "ap_functions": functions, "chkstop": "0", "config": "1", "driver_override": "",
                "interrupt": "Interrupts enabled.", "pendingq_count": "0", "request_count": "0", "requestq_count": "0",
                "reset": "No Reset Timer set.", "uevent": "DEV_TYPE=\(hwtype)\nDRIVER=cex4queue", "online": "1", "load": "0",
            ])
        }
    }

    /// A device directory: its attributes, `power/`, the driver core's links
    /// and its links in `bus/ap/devices` and its driver's directory.
    func device(_ dir: String, name: String, driver: String, _ attrs: [String: String]) {
        let up = String(repeating: "../", count: dir.split(separator: "/").count)
        for (f, text) in attrs { tree.file(dir + "/" + f, text) }
        tree.mkdirs(dir + "/power")
        tree.link(dir + "/driver", up + "bus/ap/drivers/" + driver)
        tree.link(dir + "/subsystem", up + "bus/ap")
        tree.link("bus/ap/devices/" + name, "../../../" + dir)
        tree.link("bus/ap/drivers/\(driver)/" + name, "../../../../" + dir)
    }
}

extension StaticSysfs {
    /// An empty tree to build on.
    init(empty: ()) throws { root = try makeTempDir("apmatrix-static") }
}

extension MountTests {
    @Suite struct CaptureStaticTree {
        @Test func aRealLPARsTreeBecomesAHostFile() throws {
            let lpar = try LPARSysfs()
            defer { lpar.tree.remove() }
            let c = try CaptureRun(lpar.tree.root)
            defer { c.remove() }
            #expect(c.result.status == 0, "\(c.result)")
            #expect(c.hostText == """
                {
                  "notes": [
                    "adapter 09 is in the LPAR without a card device: taken as a CEX3C (a CEX3A looks the same in sysfs)",
                    "facility apft leaves no trace in sysfs: taken as present",
                    "apmask and aqmask are the masks at capture time, written as boot values (ap.apmask= and ap.aqmask= on the kernel command line are not in sysfs)",
                    "only a state file (--state) keeps: driver bindings, online states, ap_domain, the bus's scan count or uninitiated queues that differ from a fresh boot"
                  ],
                  "apxa": true,
                  "maxAdapter": 255,
                  "maxDomain": 255,
                  "facilities": { "qci": true, "apft": true, "apqi": true, "aiv": true },
                  "domains": "6,11,32",
                  "controlDomains": "6,11,32,33",
                  "apmask": "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                  "aqmask": "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                  "maxMdevs": 65536,
                  "adapters": [
                    { "id": 3, "type": "CEX8C", "configured": true },
                    { "id": 5, "type": "CEX7P", "configured": true, "domains": "6" },
                    { "id": 6, "type": "CEX8A", "configured": false },
                    { "id": 9, "type": "CEX3C", "configured": true }
                  ]
                }

                """, "\(c.hostText)")

            // Served, the files a host file decides read as on the LPAR.
            let s = try ServeProcess(host: c.hostFile)
            defer { s.finish(guestDirs: []) }
            let files = ["bus/ap/apmask", "bus/ap/aqmask", "bus/ap/ap_adapter_mask", "bus/ap/ap_usage_domain_mask",
                         "bus/ap/ap_control_domain_mask", "bus/ap/ap_max_adapter_id", "bus/ap/ap_max_domain_id", "bus/ap/ap_domain",
                         "devices/ap/card03/type", "devices/ap/card05/type", "devices/ap/card06/type", "devices/ap/card06/config",
                         "devices/ap/card03/hwtype", "devices/ap/card05/hwtype", "devices/ap/card03/03.0020/interrupt"]
            for f in files { #expect(cat(s.sys + "/" + f) == cat(lpar.tree.root + "/" + f), "\(f)") }
            #expect(listDir(s.sys + "/bus/ap/devices") == listDir(lpar.tree.root + "/bus/ap/devices"))
            #expect(listDir(s.sys + "/bus/ap/devices")?.count == 7)
            for q in ["03.0006", "03.000b", "03.0020", "05.0006"] {
                #expect(linkTarget(s.sys + "/bus/ap/devices/\(q)/driver") == linkTarget(lpar.tree.root + "/bus/ap/devices/\(q)/driver"), "\(q)")
            }
        }
    }
}
