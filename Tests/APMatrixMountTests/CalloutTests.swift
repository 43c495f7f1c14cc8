// `apmatrix mdevctl-callout` installed in a temp /etc/mdevctl.d and run by
// the real mdevctl in a private mount namespace (the recipe of MdevctlTests).

import APMatrixModel
import APMatrixTesting
import Foundation
import Glibc
import Testing

let uuid4 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
let uuid5 = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

extension MdevctlEtc {
    /// Installs the callout: a shell wrapper that execs the built binary.
    func installCallout() throws {
        let path = dir + "/scripts.d/callouts/apmatrix"
        try "#!/bin/sh\nexec \(q(try apmatrixExecutable())) mdevctl-callout \"$@\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard chmod(path, 0o755) == 0 else { throw TestFailure("chmod \(path): \(errnoText(errno))") }
    }

    /// Writes a device config for `mdevctl define --jsonfile`.
    func jsonFile(_ name: String, start: String, _ attrs: [(String, String)]) throws -> String {
        let path = dir + "/" + name + ".json"
        let list = attrs.map { "{\"\($0.0)\":\"\($0.1)\"}" }.joined(separator: ",")
        try "{\"mdev_type\":\"vfio_ap-passthrough\",\"start\":\"\(start)\",\"attrs\":[\(list)]}"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

extension MountTests {
    @Suite struct Callout {
        @Test func refusesConflictsAndPassesAGoodConfig() throws {
            let etc = try MdevctlEtc()
            defer { etc.remove() }
            try etc.installCallout()
            try withMount { m in
                try applyV4Masks(m)
                // an active device holds 05.0004
                try createMdev(m, uuidA)
                #expect(writeAttr(m.mdev(uuidA) + "/assign_adapter", "5") == .ok)
                #expect(writeAttr(m.mdev(uuidA) + "/assign_domain", "4") == .ok)

                // define --auto sharing 05.0004 with the active device: refused, nothing defined
                let share = try etc.jsonFile("share", start: "auto", [("assign_adapter", "5"), ("assign_domain", "4")])
                let r1 = mdevctl(m, etc, "define -u \(uuidB) -p matrix --jsonfile \(q(share))")
                #expect(r1.status != 0, "\(r1)")
                #expect(r1.stderr.contains("refusing to define mdev \(uuidB)"), "\(r1)")
                #expect(r1.stderr.contains("assign_domain 4: EADDRINUSE: assign_domain: queue 05.0004 is already assigned to mdev \(uuidA)"), "\(r1)")
                #expect(access(etc.config(uuidB), F_OK) != 0, "the refused config was written")

                // a good autostart device passes
                let good = try etc.jsonFile("good", start: "auto", [("assign_adapter", "6"), ("assign_domain", "0x47")])
                let r2 = mdevctl(m, etc, "define -u \(uuid3) -p matrix --jsonfile \(q(good))")
                #expect(r2.status == 0, "\(r2)")
                #expect(access(etc.config(uuid3), F_OK) == 0)

                // a manual device sharing 06.0047 with that (inactive) autostart device: refused, and said why
                let r3 = mdevctl(m, etc, "define -u \(uuid4) -p matrix --jsonfile \(q(good))")
                #expect(r3.status != 0, "\(r3)")
                #expect(r3.stderr.contains("queue 06.0047 is already assigned to mdev \(uuid3)"), "\(r3)")
                #expect(r3.stderr.contains("defined with start=auto"), "\(r3)")

                // host-reserved APQN (04.0000) and an id above the maximum
                let reserved = try etc.jsonFile("reserved", start: "manual", [("assign_adapter", "4"), ("assign_domain", "0"),
                                                                               ("assign_control_domain", "256")])
                let r4 = mdevctl(m, etc, "define -u \(uuid4) -p matrix --jsonfile \(q(reserved))")
                #expect(r4.status != 0, "\(r4)")
                #expect(r4.stderr.contains("EADDRNOTAVAIL: assign_domain: queue 04.0000 is reserved for the host"), "\(r4)")
                #expect(r4.stderr.contains("assign_control_domain 256: ENODEV"), "\(r4)")

                // start: a defined manual device without a usage domain is refused, a good one starts
                let noDomain = try etc.jsonFile("nodomain", start: "manual", [("assign_adapter", "6")])
                #expect(mdevctl(m, etc, "define -u \(uuid5) -p matrix --jsonfile \(q(noDomain))").status == 0)
                let r5 = mdevctl(m, etc, "start -u \(uuid5)")
                #expect(r5.status != 0 && r5.stderr.contains("assigns no usage domain"), "\(r5)")
                #expect(statErrno(m.mdev(uuid5)) == ENOENT)
                #expect(mdevctl(m, etc, "modify -u \(uuid5) --addattr assign_domain --value 0xab").status == 0)
                let r6 = mdevctl(m, etc, "start -u \(uuid5)")
                #expect(r6.status == 0, "\(r6)")
                #expect(cat(m.mdev(uuid5) + "/matrix") == "06.00ab\n")

                // starting the autostart device now conflicts with nothing: it starts too
                let r7 = mdevctl(m, etc, "start -u \(uuid3)")
                #expect(r7.status == 0, "\(r7)")
                #expect(cat(m.mdev(uuid3) + "/matrix") == "06.0047\n")
            }
        }

        @Test func otherTypesExitTwoAndGetAttributesReportsTheActiveDevice() throws {
            let exe = try apmatrixExecutable()
            try withMount { m in
                let other = sh("echo '{}' | \(q(exe)) mdevctl-callout -t i915-GVTg_V5_4 -e pre -a start -s none -u \(uuidA) -p 0000:00:02.0")
                #expect(other.status == 2, "\(other)")
                try applyV4Masks(m)
                try createMdev(m, uuidA)
                #expect(writeAttr(m.mdev(uuidA) + "/assign_adapter", "5") == .ok)
                #expect(writeAttr(m.mdev(uuidA) + "/assign_domain", "0x47") == .ok)
                let get = sh("\(q(exe)) mdevctl-callout --sysfs \(q(m.root)) -t vfio_ap-passthrough -e get -a attributes -s none -u \(uuidA) -p matrix")
                #expect(get.status == 0, "\(get)")
                let attrs = try JSONSerialization.jsonObject(with: Data(get.stdout.utf8)) as? [[String: String]]
                #expect(attrs == [["assign_adapter": "0x05"], ["assign_domain": "0x47"]], "\(get)")
            }
        }
    }
}
