// The tools on a real mount: explain's reasons on states the emulator
// reaches, plan's predictions against what the mount returns for the same
// writes over seeded random sequences, and the commands end to end.

import APMatrixRuntime
import APMatrixModel
import APMatrixTools
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// SplitMix64: the same sequence for the same seed on every machine.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Starts a guest on `uuid` through the model (no QMP needed for sysfs tests).
func startGuest(_ m: Mounted, _ name: String, _ uuid: String, sysfsdev: String? = nil) throws {
    let now = m.runtime.clock.now()
    try m.runtime.perform("test") { (h: inout APHost) throws(APError) in
        try h.startGuest(name, cpu: try CPUModel(parsing: "host", facilities: h.firmware.facilities),
                         device: VfioAPDevice(id: "hostdev0", mdev: mdevUUID(uuid),
                                              sysfsdev: sysfsdev ?? "/sys/devices/vfio_ap/matrix/\(uuid)"), at: now)
    }
}

extension MountTests {
    @Suite struct ToolsOnAMount {
        @Test func explainReasonsOnTheSeedExample() throws {
            try withMount { m in
                try applyV4Masks(m)
                try createMdev(m, uuidA)
                for (attr, v) in [("assign_adapter", "5"), ("assign_adapter", "6"), ("assign_adapter", "0x20"),
                                  ("assign_domain", "4"), ("assign_domain", "0x47")] {
                    #expect(writeAttr(m.mdev(uuidA) + "/" + attr, v) == .ok)
                }
                let dir = SysfsDirectory(m.root)
                var s = try Snapshot.read(dir)
                #expect(try ExplainReport(s, mdev: try #require(s.mdev(mdevUUID(uuidA)))).text == """
                    mdev 62177883-f1bb-47f0-914d-32a22e3a8804: 6 APQNs assigned, no guest (seed profile rules)

                    05.0004 05.0047 06.0004 06.0047 20.0004 20.0047
                      why:  no guest uses the mdev (guest_matrix: ENODEV)
                      rule: SPEC §3 guest_matrix: a shadow CRYCB exists only while a guest has the mdev open
                      do:   start a guest with -device vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804, or hot plug it (device_add)

                    """)
                // 06.0047 unbound before the guest starts: adapter 6 is filtered out; adapter 0x20 is not in the LPAR
                #expect(writeAttr(m.path("bus/ap/drivers/vfio_ap/unbind"), "06.0047") == .ok)
                try startGuest(m, "g1", uuidA)
                s = try Snapshot.read(dir)
                #expect(cat(m.mdev(uuidA) + "/guest_matrix") == "05.0004\n05.0047\n")
                #expect(try ExplainReport(s, mdev: try #require(s.mdev(mdevUUID(uuidA)))).text == """
                    mdev 62177883-f1bb-47f0-914d-32a22e3a8804: 6 APQNs assigned, 2 in its guest (seed profile rules)

                    06.0004 06.0047
                      why:  adapter 06 is filtered out: queue 06.0047 is bound to no driver (it was unbound), and an adapter reaches the guest only if every queue it has in the mdev's domains is bound to vfio_ap
                      rule: SPEC §3 Filtering step 2 (by APID)
                      do:   echo 06.0047 > bus/ap/drivers/vfio_ap/bind

                    20.0004 20.0047
                      why:  adapter 20 is not in the LPAR's AP configuration (ap_adapter_mask): the mdev is over-provisioned
                      rule: SPEC §3 Filtering step 1: only M.apm ∩ H.apm (ap_adapter_mask) can reach a guest
                      do:   add adapter 20 to the LPAR's crypto configuration (HMC/SE; emulator: apmatrix host adapter add); vfio_ap hot plugs it when it arrives

                    """)
                // bind it back: hot plug adds adapter 6, nothing is left to explain but adapter 0x20
                #expect(writeAttr(m.path("bus/ap/drivers/vfio_ap/bind"), "06.0047") == .ok)
                s = try Snapshot.read(dir)
                #expect(try ExplainReport(s, mdev: try #require(s.mdev(mdevUUID(uuidA)))).missing.map(\.explanation.reason)
                        == ["adapter-not-in-lpar", "adapter-not-in-lpar"])
                // deconfigure card 5: it leaves the guest and the reason names its config
                #expect(writeAttr(m.path("devices/ap/card05/config"), "0") == .ok)
                s = try Snapshot.read(dir)
                let r = try ExplainReport(s, mdev: try #require(s.mdev(mdevUUID(uuidA))), apqn: APQN(5, 4))
                #expect(r.missing.map(\.explanation.reason) == ["adapter-deconfigured"])
                #expect(r.missing.first?.explanation.action == "echo 1 > devices/ap/card05/config; vfio_ap hot plugs the adapter into the running guest")
                try m.runtime.perform("test") { (h: inout APHost) throws(APError) in try h.stopGuest("g1") }
            }
        }

        @Test func matrixOfTheDefaultHostFitsEightyColumns() throws {
            try withMount(.embeddedDefault) { m in
                #expect(writeAttr(m.path("bus/ap/apmask"), "-2,-3") == .ok)
                #expect(writeAttr(m.path("bus/ap/aqmask"), "-0x10-0x1f") == .ok)
                try createMdev(m, uuidA)
                for (attr, v) in [("assign_adapter", "2"), ("assign_domain", "0x10"), ("assign_domain", "0x11")] {
                    #expect(writeAttr(m.mdev(uuidA) + "/" + attr, v) == .ok)
                }
                let text = try MatrixPicture(try Snapshot.read(SysfsDirectory(m.root))).text
                #expect(text == """
                    AP matrix of \(m.root) (seed profile)
                    adapters across, usage domains down (hex)
                               00  01  02  03  04  05  06  07
                    0000-000f  H   H   .   .   H   H   H   H
                    0010-0011  .   .   a   .   .   .   .   .
                    0012-001f  .   .   .   .   .   .   .   .
                    0020-0054  H   H   .   .   H   H   H   H

                    H  reserved for the host (bound to cex4queue by apmask/aqmask)
                    .  free for vfio_ap (bound to vfio_ap, not assigned)
                    a  assigned to mdev a

                    a  62177883-f1bb-47f0-914d-32a22e3a8804  no guest, control domains -

                    """)
                #expect(text.split(separator: "\n").allSatisfy { $0.count <= 80 })
            }
        }

        @Test func planPredictsWhatTheMountReturns() throws {
            let mdevs = [uuidA, uuidB, uuid3]
            let attrs = ["assign_adapter", "assign_domain", "assign_control_domain", "unassign_adapter", "unassign_domain",
                         "unassign_control_domain"]
            let ids = ["4", "5", "6", "7", "0x47", "0xab", "0xff", "256", "08", "abc", "0"]
            var outcomes = Set<Int32>()
            for seed in UInt64(1)...6 {
                var rng = SeededGenerator(state: seed)
                func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
                var writes: [PlannedWrite] = []
                for _ in 0..<40 {
                    let path: String, value: String
                    switch rng.next() % 10 {
                    case 0...3: (path, value) = ("devices/vfio_ap/matrix/\(pick(mdevs))/\(pick(attrs))", pick(ids))
                    case 4: (path, value) = (pick(["bus/ap/apmask", "bus/ap/aqmask"]), pick(["+5", "-5", "+6", "-7", "+0x47", "-0x47", "+0xab", "-4", "zz"]))
                    case 5: (path, value) = ("devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", pick(mdevs))
                    case 6: (path, value) = ("devices/vfio_ap/matrix/\(pick(mdevs))/remove", pick(["1", "1", "0", "x"]))
                    case 7: (path, value) = ("bus/ap/drivers/\(pick(["vfio_ap", "cex4queue"]))/\(pick(["bind", "unbind"]))",
                                             pick(["05.0004", "06.0047", "07.0004", "05.00ab", "09.0001"]))
                    case 8: (path, value) = ("devices/ap/card\(pick(["05", "06"]))/config", pick(["0", "1", "2"]))
                    default: (path, value) = (pick(["bus/ap/ap_adapter_mask", "bus/ap/nothing", "bus/ap/devices",
                                                    "class/mdev_bus/matrix/\(uuidA)/assign_domain",
                                                    "bus/mdev/devices/\(uuidB)/assign_adapter"]), pick(ids))
                    }
                    writes.append(PlannedWrite(line: writes.count + 1, path: path, value: value))
                }
                try withMount { m in
                    try applyV4Masks(m)
                    try createMdev(m, uuidA)
                    for (attr, v) in [("assign_adapter", "5"), ("assign_domain", "4"), ("assign_domain", "0xab")] {
                        #expect(writeAttr(m.mdev(uuidA) + "/" + attr, v) == .ok)
                    }
                    try createMdev(m, uuidB)
                    for (attr, v) in [("assign_adapter", "6"), ("assign_domain", "0x47")] {
                        #expect(writeAttr(m.mdev(uuidB) + "/" + attr, v) == .ok)
                    }
                    try startGuest(m, "g1", uuidA)
                    let plan = try PlanReport(try Snapshot.read(SysfsDirectory(m.root)), writes)
                    #expect(plan.assumptions.isEmpty, "\(plan.assumptions)")
                    for (i, w) in writes.enumerated() {
                        let actual: Int32
                        switch writeAttr(m.path(w.path), w.value + "\n") {
                        case .ok: actual = 0
                        case .openFailed(let e), .writeFailed(let e): actual = e
                        }
                        outcomes.insert(actual)
                        #expect(plan.steps[i].predicted?.errno.rawValue ?? 0 == actual,
                                "seed \(seed) write \(i + 1) \(w.path) \(w.value): predicted \(plan.steps[i].predicted.map(\.description) ?? "ok"), mount \(actual)")
                    }
                    #expect(cat(m.path("bus/ap/apmask")) == plan.after.bus.apmask.hexString + "\n", "seed \(seed)")
                    #expect(cat(m.path("bus/ap/aqmask")) == plan.after.bus.aqmask.hexString + "\n", "seed \(seed)")
                    #expect(Set(listDir(m.matrixDir)?.filter { $0.count == 36 } ?? []) == Set(plan.after.vfio.mdevs.keys.map(\.description)), "seed \(seed)")
                    for (uuid, md) in plan.after.vfio.mdevs {
                        #expect(cat(m.mdev(uuid) + "/matrix") == md.matrix.matrixText(), "seed \(seed) \(uuid)")
                        #expect(cat(m.mdev(uuid) + "/guest_matrix") == (md.guest == nil ? "<\(errnoText(ENODEV))>" : md.shadow.matrixText()),
                                "seed \(seed) \(uuid)")
                    }
                    #expect(plan.before.vfio.mdevs[mdevUUID(uuidA)]?.guest != nil, "seed \(seed): the rebuild has no guest on \(uuidA)")
                    if try m.runtime.perform("test", { (h: inout APHost) throws(APError) in h.guests["g1"] != nil }) {
                        try m.runtime.perform("test") { (h: inout APHost) throws(APError) in try h.stopGuest("g1") }
                    }
                }
            }
            // the sequences reach success and the errnos of every layer: open, parse, rules
            #expect(outcomes.isSuperset(of: [0, ENOENT, EISDIR, EACCES, EINVAL, ENODEV, EEXIST, EBUSY, EADDRINUSE, EADDRNOTAVAIL]), "\(outcomes.sorted())")
        }

        @Test func commandsEndToEnd() throws {
            let exe = try apmatrixExecutable()
            try withMount { m in
                try applyV4Masks(m)
                try createMdev(m, uuidA)
                let ls = sh("APMATRIX_SYSFS=\(q(m.root)) \(q(exe)) ls --json --mdev \(uuidA)")
                #expect(ls.status == 0, "\(ls)")
                let obj = try JSONSerialization.jsonObject(with: Data(ls.stdout.utf8)) as? [String: Any]
                #expect((obj?["queues"] as? [Any])?.isEmpty == true && obj?["sysfs"] as? String == m.root, "\(ls)")
                let matrix = sh("NO_COLOR=1 \(q(exe)) matrix --sysfs \(q(m.root)) \(uuidA)")
                #expect(matrix.status == 0 && matrix.stdout.contains("(no adapter or no domain to show)"), "\(matrix)")
                let bad = sh("\(q(exe)) explain --sysfs \(q(m.root)) \(uuidB)")
                #expect(bad.status != 0 && bad.stderr.contains("ENODEV: no mdev \(uuidB)"), "\(bad)")
                let notSysfs = sh("\(q(exe)) ls --sysfs /nonexistent")
                #expect(notSysfs.status != 0 && notSysfs.stderr.contains("not a sysfs tree with an AP bus"), "\(notSysfs)")

                // plan, then --apply: stops at the first failure (04.0000 is reserved for the host: EADDRNOTAVAIL)
                let planFile = try makeTempDir("apmatrix-plan") + "/plan"
                defer { _ = sh("rm -rf \(q(String(planFile.dropLast(5))))") }
                let lines = """
                    # give uuidA adapter 4 and domain 0x47, then a reserved queue
                    devices/vfio_ap/matrix/\(uuidA)/assign_adapter 4
                    /sys/devices/vfio_ap/matrix/\(uuidA)/assign_domain 0x47
                    devices/vfio_ap/matrix/\(uuidA)/assign_domain 0
                    devices/vfio_ap/matrix/\(uuidA)/assign_adapter 5
                    """
                try lines.write(toFile: planFile, atomically: true, encoding: .utf8)
                let plan = sh("\(q(exe)) plan --sysfs \(q(m.root)) \(q(planFile))")
                #expect(plan.status == 0, "\(plan)")
                #expect(plan.stdout.contains("3  devices/vfio_ap/matrix/\(uuidA)/assign_domain 0     EADDRNOTAVAIL"), "\(plan)")
                #expect(plan.stdout.contains("3: assign_domain: queue 04.0000 is reserved for the host by apmask/aqmask; clear its bit in one of them first"), "\(plan)")
                #expect(plan.stdout.contains("mdev \(uuidA) (changed): APM 4,5 AQM 71 ADM -; guest_matrix ENODEV (no guest)"), "\(plan)")
                #expect(cat(m.mdev(uuidA) + "/matrix") == "", "plan wrote something")
                let apply = sh("\(q(exe)) plan --apply --json --sysfs \(q(m.root)) \(q(planFile))")
                #expect(apply.status == 1, "\(apply)")
                let r = try JSONSerialization.jsonObject(with: Data(apply.stdout.utf8)) as? [String: Any]
                #expect(r?["schema"] as? String == "apmatrix.plan/1")
                let ws = (r?["writes"] as? [[String: Any]]) ?? []
                #expect(ws.map { $0["applied"] as? Bool } == [true, true, false, false], "\(apply)")
                #expect(ws.map { $0["line"] as? Int } == [2, 3, 4, 5])
                #expect(ws[2]["actual"] as? String == "EADDRNOTAVAIL" && ws[2]["predicted"] as? String == "EADDRNOTAVAIL")
                #expect(ws[3]["actual"] is NSNull && ws[3]["predicted"] is NSNull)
                #expect(Set(ws[0].keys) == ["line", "path", "value", "predicted", "message", "applied", "actual"])
                #expect(cat(m.mdev(uuidA) + "/matrix") == "04.0047\n")
            }
        }

        /// driver_override (6.19) in the tools: ls shows it, --json has it,
        /// plan predicts what the mount answers in override mode.
        @Test func driverOverrideInLsAndPlan() throws {
            let exe = try apmatrixExecutable()
            try withMount(profile: .upstream) { m in
                #expect(writeAttr(m.path("devices/ap/card05/05.0004/driver_override"), "vfio_ap\n") == .ok)
                #expect(writeAttr(m.path("bus/ap/drivers/cex4queue/unbind"), "05.0004") == .ok)
                #expect(writeAttr(m.path("bus/ap/drivers/vfio_ap/bind"), "05.0004") == .ok)
                try createMdev(m, uuidA)
                let ls = sh("APMATRIX_SYSFS=\(q(m.root)) \(q(exe)) ls --adapter 5 --domain 4")
                #expect(ls.stdout == """
                    AP devices of \(m.root) (upstream profile)
                    DEVICE   TYPE   HWTYPE  CONFIG  ONLINE  DRIVER   OVERRIDE  MDEV  GUEST
                    05.0004  CEX8C  14      1       -       vfio_ap  vfio_ap   -     no

                    """, "\(ls)")
                let json = sh("APMATRIX_SYSFS=\(q(m.root)) \(q(exe)) ls --json --adapter 5")
                let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                let queues = (obj?["queues"] as? [[String: Any]]) ?? []
                #expect(obj?["schema"] as? String == "apmatrix.ls/1")
                #expect(queues.count == 19)
                #expect(queues.first { $0["apqn"] as? String == "05.0004" }?["driverOverride"] as? String == "vfio_ap")
                #expect(queues.filter { $0["driverOverride"] is NSNull }.count == 18)

                let planFile = try makeTempDir("apmatrix-plan") + "/plan"
                defer { _ = sh("rm -rf \(q(String(planFile.dropLast(5))))") }
                try """
                    devices/vfio_ap/matrix/\(uuidA)/assign_adapter 5
                    devices/vfio_ap/matrix/\(uuidA)/assign_domain 4
                    devices/vfio_ap/matrix/\(uuidA)/assign_domain 7
                    bus/ap/apmask -5
                    devices/ap/card05/05.0007/driver_override vfio_ap
                    bus/ap/drivers/vfio_ap/bind 05.0004
                    """.write(toFile: planFile, atomically: true, encoding: .utf8)
                let apply = sh("\(q(exe)) plan --apply --json --sysfs \(q(m.root)) \(q(planFile))")
                let r = try JSONSerialization.jsonObject(with: Data(apply.stdout.utf8)) as? [String: Any]
                let ws = (r?["writes"] as? [[String: Any]]) ?? []
                #expect(ws.map { $0["predicted"] as? String ?? "ok" } == ["ok", "ok", "EADDRNOTAVAIL", "EINVAL", "ok", "EBUSY"], "\(apply)")
                #expect(ws.prefix(2).allSatisfy { $0["actual"] is NSNull }, "\(apply)")
                #expect(ws[2]["actual"] as? String == "EADDRNOTAVAIL", "\(apply)")
                #expect(cat(m.mdev(uuidA) + "/matrix") == "05.0004\n")
            }
        }
    }
}
