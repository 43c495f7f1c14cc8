// The seed example's walk-through through a real mount, with bash as the
// client: masks (kernel-reference V4), queue binding, three mdevs, the
// sharing and reservation checks (SPEC §3), the mask-change refusal.

import APMatrixRuntime
import APMatrixModel
import APMatrixTesting
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct SeedWalkThrough {
        @Test func walkThrough() throws {
            try withMount(.seedExample) { m in
                let root = m.root
                // 1. secure adapters 5, 6 and domains 4, 0x47, 0xab, 0xff for vfio_ap (V4)
                let masks = sh("""
                    cd \(q(root)) || exit 9
                    echo -5,-6 > bus/ap/apmask || exit 1
                    echo -4,-0x47,-0xab,-0xff > bus/ap/aqmask || exit 2
                    cat bus/ap/apmask bus/ap/aqmask
                    """)
                #expect(masks.status == 0, "\(masks)")
                #expect(masks.stdout == v4Apmask + v4Aqmask, "\(masks)")

                // 2. the queues bound to vfio_ap: reserved = apmask bit AND aqmask bit
                let lpar = Array(0...15) + [0x47, 0xab, 0xff]
                var expected = Set<String>()
                for a in 4...7 {
                    for d in lpar where [5, 6].contains(a) || [4, 0x47, 0xab, 0xff].contains(d) {
                        expected.insert(String(format: "%02x.%04x", a, d))
                    }
                }
                let vfio = Set((listDir(m.path("bus/ap/drivers/vfio_ap")) ?? []).filter { $0.contains(".") })
                for apqn in ["05.0004", "05.0047", "05.00ab", "05.00ff", "06.0004", "06.0047", "06.00ab", "06.00ff"] {
                    #expect(vfio.contains(apqn), "\(apqn) is not bound to vfio_ap")
                }
                #expect(vfio == expected, "vfio_ap queues: extra \(vfio.subtracting(expected).sorted()), missing \(expected.subtracting(vfio).sorted())")
                let host = Set((listDir(m.path("bus/ap/drivers/cex4queue")) ?? []).filter { $0.contains(".") })
                #expect(host.count == 4 * lpar.count - expected.count)
                #expect(host.isDisjoint(with: vfio))
                #expect(host.contains("04.0000") && host.contains("07.000f"))

                // 3. three mdevs, created and assigned with bash
                let setup = sh("""
                    cd \(q(m.matrixDir)) || exit 9
                    T=mdev_supported_types/vfio_ap-passthrough
                    for u in \(uuidA) \(uuidB) \(uuid3); do echo $u > $T/create || exit 1; done
                    cd \(uuidA) && echo 5 > assign_adapter && echo 6 > assign_adapter && echo 4 > assign_domain \
                      && echo 0x47 > assign_domain && echo 4 > assign_control_domain && cd .. || exit 2
                    cd \(uuidB) && echo 5 > assign_adapter && echo 6 > assign_adapter && echo 7 > assign_adapter \
                      && echo 0xab > assign_domain && echo 0xab > assign_control_domain && cd .. || exit 3
                    cd \(uuid3) && echo 4 > assign_adapter && echo 7 > assign_adapter && echo 0x47 > assign_domain \
                      && echo 0xff > assign_domain && echo 4 > assign_control_domain && cd .. || exit 4
                    cat $T/available_instances
                    """)
                #expect(setup.status == 0, "\(setup)")
                #expect(setup.stdout == "65533\n")
                #expect(cat(m.mdev(uuidA) + "/matrix") == "05.0004\n05.0047\n06.0004\n06.0047\n")
                #expect(cat(m.mdev(uuidB) + "/matrix") == "05.00ab\n06.00ab\n07.00ab\n")
                #expect(cat(m.mdev(uuid3) + "/matrix") == "04.0047\n04.00ff\n07.0047\n07.00ff\n")
                #expect(cat(m.mdev(uuidA) + "/control_domains") == "0004\n")
                #expect(cat(m.mdev(uuidB) + "/control_domains") == "00ab\n")
                // control domains may be shared
                #expect(cat(m.mdev(uuid3) + "/control_domains") == "0004\n")

                // 4. sharing conflict: mdev 2 asks for domain 0x47: mdev 1 holds 05/06.0047, mdev 3 holds 07.0047
                var seq = lastSequence(m)
                let share = sh("echo 0x47 > \(q(m.mdev(uuidB) + "/assign_domain"))")
                #expect(share.status != 0 && share.stderr.contains("write error: Address already in use"), "\(share)")
                #expect(cat(m.mdev(uuidB) + "/matrix") == "05.00ab\n06.00ab\n07.00ab\n")
                let shareLog = logLines(m, after: seq).filter { $0.hasPrefix("Userspace may not") }
                #expect(shareLog == [
                    "Userspace may not re-assign queue 05.0047 already assigned to \(uuidA)",
                    "Userspace may not re-assign queue 06.0047 already assigned to \(uuidA)",
                    "Userspace may not re-assign queue 07.0047 already assigned to \(uuid3)",
                ], "log: \(logLines(m, after: seq))")
                // the same through an adapter: mdev 1 asks for adapter 7 (07.0047 is mdev 3's)
                let share2 = sh("/bin/echo 7 > \(q(m.mdev(uuidA) + "/assign_adapter"))")
                #expect(share2.status != 0 && share2.stderr.contains("Address already in use"), "\(share2)")
                #expect(cat(m.mdev(uuidA) + "/matrix") == "05.0004\n05.0047\n06.0004\n06.0047\n")

                // 5. host reservation: mdev 3 asks for domain 0 (04.0000 is the host's)
                let res = sh("echo 0 > \(q(m.mdev(uuid3) + "/assign_domain"))")
                #expect(res.status != 0 && res.stderr.contains("write error: Cannot assign requested address"), "\(res)")
                #expect(cat(m.mdev(uuid3) + "/matrix") == "04.0047\n04.00ff\n07.0047\n07.00ff\n")

                // 6. taking 0x47 back for the host: 04.0047 and 07.0047 (mdev 3) would become reserved
                seq = lastSequence(m)
                let back = sh("echo +0x47 > \(q(m.path("bus/ap/aqmask")))")
                #expect(back.status != 0 && back.stderr.contains("write error: Address already in use"), "\(back)")
                #expect(cat(m.path("bus/ap/aqmask")) == v4Aqmask)
                #expect(cat(m.path("bus/ap/apmask")) == v4Apmask)
                #expect(logLines(m, after: seq).filter { $0.hasPrefix("Userspace may not") } == [
                    "Userspace may not re-assign queue 04.0047 already assigned to \(uuid3)",
                    "Userspace may not re-assign queue 07.0047 already assigned to \(uuid3)",
                ], "log: \(logLines(m, after: seq))")
                #expect((listDir(m.path("bus/ap/drivers/vfio_ap")) ?? []).contains("04.0047"))

                // 7. a refused change that hits two mdevs logs both, in creation order, APQNs ascending
                seq = lastSequence(m)
                let two = sh("echo +0x47,+0xab > \(q(m.path("bus/ap/aqmask")))")
                #expect(two.status != 0 && two.stderr.contains("Address already in use"), "\(two)")
                #expect(cat(m.path("bus/ap/aqmask")) == v4Aqmask)
                #expect(logLines(m, after: seq).filter { $0.hasPrefix("Userspace may not") } == [
                    "Userspace may not re-assign queue 07.00ab already assigned to \(uuidB)",
                    "Userspace may not re-assign queue 04.0047 already assigned to \(uuid3)",
                    "Userspace may not re-assign queue 07.0047 already assigned to \(uuid3)",
                ], "log: \(logLines(m, after: seq))")

                // 8. an absolute write of the same refused mask (66 chars, no newline) is refused too
                let abs = "0xf7" + String(repeating: "f", count: 61) + "e"   // 0x47 and 0xab set again
                #expect(writeAttr(m.path("bus/ap/aqmask"), abs) == .writeFailed(EADDRINUSE))
                #expect(cat(m.path("bus/ap/aqmask")) == v4Aqmask)

                // 9. a change that touches no assigned APQN is stored and rebinds
                let ok = sh("echo +0 > \(q(m.path("bus/ap/apmask"))) ; echo $?; cat \(q(m.path("bus/ap/apmask")))")
                #expect(ok.stdout == "0\n" + v4Apmask, "apmask bit 0 has no card on this LPAR: \(ok)")
                let free = sh("echo -4 > \(q(m.path("bus/ap/apmask"))) && ls \(q(m.path("bus/ap/drivers/vfio_ap"))) | grep -c '^04\\.'")
                #expect(free.status == 0 && free.stdout == "\(lpar.count)\n", "\(free)")
                let afterMinus4 = "0x" + "f1" + String(repeating: "f", count: 62) + "\n"
                #expect(cat(m.path("bus/ap/apmask")) == afterMinus4)
                // 04.0000 is free now: mdev 3 (without adapter 7) can take domain 0
                let take = sh("cd \(q(m.mdev(uuid3))) && echo 7 > unassign_adapter && echo 0 > assign_domain && cat matrix")
                #expect(take.status == 0 && take.stdout == "04.0000\n04.0047\n04.00ff\n", "\(take)")
                // giving adapter 4 back to the host would reserve 04.0000, which mdev 3 holds
                seq = lastSequence(m)
                let again = sh("echo +4 > \(q(m.path("bus/ap/apmask")))")
                #expect(again.status != 0 && again.stderr.contains("write error: Address already in use"), "\(again)")
                #expect(cat(m.path("bus/ap/apmask")) == afterMinus4)
                #expect(logLines(m, after: seq).filter { $0.hasPrefix("Userspace may not") } == [
                    "Userspace may not re-assign queue 04.0000 already assigned to \(uuid3)",
                ], "log: \(logLines(m, after: seq))")
                // once mdev 3 lets go of domain 0 the change goes through and 04.0000 returns to the host
                let done = sh("echo 0 > \(q(m.mdev(uuid3) + "/unassign_domain")) && echo +4 > \(q(m.path("bus/ap/apmask"))) && cat \(q(m.path("bus/ap/apmask")))")
                #expect(done.status == 0 && done.stdout == v4Apmask, "\(done)")
                #expect(linkTarget(m.path("devices/ap/card04/04.0000/driver")) == "../../../../bus/ap/drivers/cex4queue")
                #expect(linkTarget(m.path("devices/ap/card04/04.0047/driver")) == "../../../../bus/ap/drivers/vfio_ap")
            }
        }
    }
}
