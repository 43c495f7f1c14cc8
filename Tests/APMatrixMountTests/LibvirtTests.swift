// libvirt 9.0's node-device driver against the emulated host: libvirtd
// inside `apmatrix exec --udev` (Tests/udev/libvirt_nodedev.sh), listing,
// dumping, defining, starting (libvirt → mdevctl → the mount), destroying,
// and a conflicting definition refused with the kernel's errno.

import APMatrixTesting
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct Libvirt {
        static let newXML = """
            <device>
              <parent>ap_matrix</parent>
              <capability type='mdev'>
                <type id='vfio_ap-passthrough'/>
                <uuid>783e6dbb-ea0e-411f-94e2-717eaad438bf</uuid>
                <attr name='assign_adapter' value='6'/>
                <attr name='assign_domain' value='0x0004'/>
                <attr name='assign_control_domain' value='0x0004'/>
              </capability>
            </device>
            """
        /// 05.0004 belongs to mdev 62177883-… already.
        static let conflictingXML = """
            <device>
              <parent>ap_matrix</parent>
              <capability type='mdev'>
                <type id='vfio_ap-passthrough'/>
                <uuid>9a1c5e2f-3b4d-4e6f-8a7b-0c1d2e3f4a5b</uuid>
                <attr name='assign_adapter' value='5'/>
                <attr name='assign_domain' value='0x0004'/>
              </capability>
            </device>
            """

        /// The sections of the script's output: `== NAME` heads each, `rc=N` ends it.
        static func sections(_ text: String) -> [String: String] {
            var out: [String: String] = [:]
            for block in text.components(separatedBy: "== ").dropFirst() {
                let head = block.prefix { $0 != "\n" }
                out[String(head)] = String(block.dropFirst(head.count + 1))
            }
            return out
        }

        static let mdev1 = "mdev_62177883_f1bb_47f0_914d_32a22e3a8804_matrix"
        static let new = "mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix"

        @Test(.timeLimit(.minutes(3))) func nodedevListDumpDefineStartDestroy() throws {
            guard access("/usr/sbin/libvirtd", X_OK) == 0, access("/usr/bin/virsh", X_OK) == 0 else {
                throw TestFailure("libvirtd and virsh are missing: run scripts/setup (it installs libvirt-daemon and libvirt-clients)")
            }
            let s = try udevHost()
            defer { s.finish(guestDirs: []) }
            #expect(sh("cd \(q(s.sys))/devices/vfio_ap/matrix/\(uuidA) && echo 5 > assign_adapter && echo 4 > assign_domain").status == 0)
            let work = s.base + "/libvirt"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            try Self.newXML.write(toFile: work + "/new.xml", atomically: true, encoding: .utf8)
            try Self.conflictingXML.write(toFile: work + "/conflicting.xml", atomically: true, encoding: .utf8)

            let r = sh("APMATRIX_SERVER=\(q(s.server)) APMATRIX_RUN_DIR=\(q(s.runDirectory)) \(q(try apmatrixExecutable())) exec --udev -- \(q(packageRoot() + "/Tests/udev/libvirt_nodedev.sh")) \(q(work))", timeout: 150)
            #expect(r.status == 0, "\(r)")
            let out = Self.sections(r.stdout)
            #expect(out.count == 19, "\(r.stdout)")

            #expect(out["list ap_card"] == "ap_card04\nap_card05\nap_card06\nap_card07\n\nrc=0\n")
            let queues = [4, 5, 6, 7].flatMap { a in (Array(0...15) + [0x47, 0xab, 0xff]).map { String(format: "ap_%02x_%04x", a, $0) } }
            #expect(out["list ap_queue"] == queues.joined(separator: "\n") + "\n\nrc=0\n")
            #expect(out["list ap_matrix"] == "ap_matrix\n\nrc=0\n")
            #expect(out["list mdev"] == "\(Self.mdev1)\n\nrc=0\n")
            #expect(out["dumpxml ap_card05"] == """
                <device>
                  <name>ap_card05</name>
                  <path>/sys/devices/ap/card05</path>
                  <parent>computer</parent>
                  <driver>
                    <name>cex4card</name>
                  </driver>
                  <capability type='ap_card'>
                    <ap-adapter>0x05</ap-adapter>
                  </capability>
                </device>

                rc=0

                """)
            #expect(out["dumpxml ap_05_0004"] == """
                <device>
                  <name>ap_05_0004</name>
                  <path>/sys/devices/ap/card05/05.0004</path>
                  <parent>ap_card05</parent>
                  <driver>
                    <name>vfio_ap</name>
                  </driver>
                  <capability type='ap_queue'>
                    <ap-adapter>0x05</ap-adapter>
                    <ap-domain>0x0004</ap-domain>
                  </capability>
                </device>

                rc=0

                """)
            #expect(out["dumpxml ap_matrix"] == """
                <device>
                  <name>ap_matrix</name>
                  <path>/sys/devices/vfio_ap/matrix</path>
                  <parent>computer</parent>
                  <driver>
                    <name>vfio_ap</name>
                  </driver>
                  <capability type='ap_matrix'>
                    <capability type='mdev_types'>
                      <type id='vfio_ap-passthrough'>
                        <name>VFIO AP Passthrough Device</name>
                        <deviceAPI>vfio-ap</deviceAPI>
                        <availableInstances>65535</availableInstances>
                      </type>
                    </capability>
                  </capability>
                </device>

                rc=0

                """)
            #expect(out["dumpxml \(Self.mdev1)"] == """
                <device>
                  <name>mdev_62177883_f1bb_47f0_914d_32a22e3a8804_matrix</name>
                  <path>/sys/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804</path>
                  <parent>ap_matrix</parent>
                  <driver>
                    <name>vfio_ap_mdev</name>
                  </driver>
                  <capability type='mdev'>
                    <type id='vfio_ap-passthrough'/>
                    <uuid>62177883-f1bb-47f0-914d-32a22e3a8804</uuid>
                    <parent_addr>matrix</parent_addr>
                    <iommuGroup number='0'/>
                  </capability>
                </device>

                rc=0

                """)

            #expect(out["define"] == "Node device '\(Self.new)' defined from '\(work)/new.xml'\n\nrc=0\n")
            #expect(out["start"] == "Device \(Self.new) started\n\nrc=0\n")
            #expect(out["list after start"] == "\(Self.mdev1)\n\(Self.new)\n\nrc=0\n")
            #expect(out["dumpxml started"] == """
                <device>
                  <name>mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix</name>
                  <path>/sys/devices/vfio_ap/matrix/783e6dbb-ea0e-411f-94e2-717eaad438bf</path>
                  <parent>ap_matrix</parent>
                  <driver>
                    <name>vfio_ap_mdev</name>
                  </driver>
                  <capability type='mdev'>
                    <type id='vfio_ap-passthrough'/>
                    <uuid>783e6dbb-ea0e-411f-94e2-717eaad438bf</uuid>
                    <parent_addr>matrix</parent_addr>
                    <iommuGroup number='1'/>
                    <attr name='assign_adapter' value='6'/>
                    <attr name='assign_domain' value='0x0004'/>
                    <attr name='assign_control_domain' value='0x0004'/>
                  </capability>
                </device>

                rc=0

                """)
            #expect(out["matrix"] == "06.0004\nrc=0\n")
            #expect(out["destroy"] == "Destroyed node device '\(Self.new)'\n\nrc=0\n")
            #expect(out["list after destroy"] == "\(Self.mdev1)\n\nrc=0\n")
            #expect(out["inactive"] == "\(Self.new)\n\nrc=0\n")
            #expect(listDir(s.sys + "/devices/vfio_ap/matrix")?.contains("783e6dbb-ea0e-411f-94e2-717eaad438bf") == false)

            // The kernel's EADDRINUSE, through mdevctl, in libvirt's error.
            #expect(out["define conflicting"]?.hasSuffix("\nrc=0\n") == true, "\(out["define conflicting"] ?? "")")
            #expect(out["start conflicting"] == """
                error: Failed to start device mdev_9a1c5e2f_3b4d_4e6f_8a7b_0c1d2e3f4a5b_matrix
                error: internal error: Unable to create mediated device: Error: Failed to write 0x0004 to attribute assign_domain

                Caused by:
                    Address already in use (os error 98)


                rc=1

                """)
            #expect(out["undefine"]?.hasSuffix("rc=0\n") == true, "\(out["undefine"] ?? "")")
            #expect(listDir(s.sys + "/devices/vfio_ap/matrix")?.contains("9a1c5e2f-3b4d-4e6f-8a7b-0c1d2e3f4a5b") == false)
        }
    }
}
