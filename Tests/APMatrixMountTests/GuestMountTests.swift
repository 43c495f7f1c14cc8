// Guest trees (`apmatrix guest mount`, `guest start --sysfs-mount`) through a
// real `apmatrix serve`: what tools inside each guest see of its AP bus, hot
// plug and unplug after a write to `scans`, CPU model variants, several
// guests at once, and every guest mount gone on guest stop and serve exit.

import APMatrixTesting
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct GuestMounts {
        static let u1 = "62177883-f1bb-47f0-914d-32a22e3a8804"
        static let u2 = "cef03c3c-903d-4ecc-9a83-40694cb8aee4"
        static let u3 = "49f9c6d3-6a8c-4d27-bd57-fa4d7ae7a3e6"

        /// The README walk-through's setup: V4 masks, three mdevs on adapters 5 and 6.
        func seedSetup(_ s: ServeProcess) {
            let M = s.sys + "/devices/vfio_ap/matrix"
            let r = sh("""
                set -e; cd \(q(s.sys))
                echo -5,-6 > bus/ap/apmask; echo -4,-0x47,-0xab,-0xff > bus/ap/aqmask
                for u in \(Self.u1) \(Self.u2) \(Self.u3); do echo $u > \(q(M))/mdev_supported_types/vfio_ap-passthrough/create; done
                for u in \(Self.u1) \(Self.u2) \(Self.u3); do echo 5 > \(q(M))/$u/assign_adapter; echo 6 > \(q(M))/$u/assign_adapter; done
                echo 4 > \(q(M))/\(Self.u1)/assign_domain; echo 0x47 > \(q(M))/\(Self.u1)/assign_domain
                echo 4 > \(q(M))/\(Self.u1)/assign_control_domain
                echo 0xab > \(q(M))/\(Self.u2)/assign_domain; echo 0xff > \(q(M))/\(Self.u3)/assign_domain
                """)
            #expect(r.status == 0, "\(r)")
        }

        @Test func seedGuestsHotPlugUnplugAndCleanup() throws {
            let s = try ServeProcess(host: packageRoot() + "/hosts/seed-example.json")
            let g = (1...3).map { s.base + "/guest\($0)" }
            defer { s.finish(guestDirs: g) }
            seedSetup(s)
            for (i, u) in [Self.u1, Self.u2, Self.u3].enumerated() {
                let mount = i == 2 ? "" : " --sysfs-mount \(q(g[i]))"
                let r = try s.cli("guest start guest\(i + 1) --device vfio-ap,sysfsdev=\(s.sys)/devices/vfio_ap/matrix/\(u),id=hostdev0\(mount)")
                #expect(r.status == 0, "\(r)")
            }
            let m = try s.cli("guest mount guest3 \(q(g[2]))")
            #expect(m.status == 0 && m.stdout == "guest3: guest tree mounted at \(g[2])\n", "\(m)")
            #expect(try s.cli("guest mount guest3 \(q(g[2]))").stderr.contains("EBUSY"))
            #expect(try s.cli("guest mount nobody \(q(s.base))/x").stderr.contains("ENOENT"))
            for d in g { #expect(isApmatrixMount(d), "\(d) is not mounted") }

            // Each guest sees exactly its guest_matrix; control domains in its control-domain mask.
            #expect(listDir(g[0] + "/bus/ap/devices") == ["05.0004", "05.0047", "06.0004", "06.0047", "card05", "card06"])
            #expect(listDir(g[1] + "/bus/ap/devices") == ["05.00ab", "06.00ab", "card05", "card06"])
            #expect(listDir(g[2] + "/bus/ap/devices") == ["05.00ff", "06.00ff", "card05", "card06"])
            #expect(cat(g[0] + "/bus/ap/ap_control_domain_mask") == "0x08" + String(repeating: "0", count: 62) + "\n")
            #expect(cat(g[1] + "/bus/ap/ap_control_domain_mask") == "0x" + String(repeating: "0", count: 64) + "\n")
            #expect(cat(g[1] + "/bus/ap/ap_adapter_mask") == "0x06" + String(repeating: "0", count: 62) + "\n")
            #expect(cat(g[0] + "/devices/ap/card06/type") == "CEX8P\n")
            let tools = sh("cd \(q(g[1])) && cat bus/ap/bindings bus/ap/scans bus/ap/ap_domain && readlink devices/ap/card05/05.00ab/driver")
            #expect(tools.stdout == "2/2 (complete)\n1\n171\n../../../../bus/ap/drivers/cex4queue\n", "\(tools)")

            // Hot plug adapter 7 into guest2: the guest sees it after a write to scans.
            let M = s.sys + "/devices/vfio_ap/matrix/" + Self.u2
            #expect(writeAttr(M + "/assign_adapter", "7\n") == .ok)
            #expect(cat(M + "/guest_matrix") == "05.00ab\n06.00ab\n07.00ab\n")
            #expect(listDir(g[1] + "/devices/ap") == ["card05", "card06"])
            let before = try s.cli("guest show guest2")
            #expect(before.stdout.contains("07.00ab  yes       yes       -\n"), "\(before)")
            #expect(sh("echo 1 > \(q(g[1]))/bus/ap/scans").status == 0)
            #expect(listDir(g[1] + "/devices/ap") == ["card05", "card06", "card07"])
            #expect(cat(g[1] + "/devices/ap/card07/type") == "CEX7C\n")
            #expect(cat(g[1] + "/bus/ap/bindings") == "3/3 (complete)\n")
            let after = try s.cli("guest show guest2")
            #expect(after.stdout.contains("07.00ab  yes       yes       yes\n"), "\(after)")
            #expect(after.stdout.contains("guest guest2: AP bus scan 2 (write to scans): added 07.00ab card07; removed -"), "\(after)")

            // Unplug: gone after the next scan.
            #expect(writeAttr(M + "/unassign_adapter", "7\n") == .ok)
            #expect(listDir(g[1] + "/devices/ap") == ["card05", "card06", "card07"])
            #expect(writeAttr(g[1] + "/bus/ap/scans", "1") == .ok)
            #expect(listDir(g[1] + "/devices/ap") == ["card05", "card06"])
            #expect(statErrno(g[1] + "/bus/ap/devices/07.00ab") == ENOENT)

            // Guest stop unmounts its tree only; umount unmounts another.
            #expect(try s.cli("guest stop guest1").status == 0)
            #expect(!isApmatrixMount(g[0]))
            #expect(isApmatrixMount(g[1]) && isApmatrixMount(g[2]))
            #expect(try s.cli("guest umount guest3").status == 0)
            #expect(!isApmatrixMount(g[2]))
            #expect(try s.cli("guest umount guest3").stderr.contains("ENOENT"))

            // serve exit unmounts the rest.
            s.process.signal(SIGTERM)
            #expect(s.process.reap(timeout: 15) == 0, "\(s.process.stderrText)")
            #expect(!isApmatrixMount(g[1]))
            #expect(!isApmatrixMount(s.sys))
        }

        @Test func cpuModelVariantsAndConcurrentMountsAllGoOnServeExit() throws {
            let s = try ServeProcess()
            let names = ["noft", "noqci", "noqi", "noap"]
            let g = names.map { s.base + "/" + $0 }
            defer { s.finish(guestDirs: g) }
            let uuids = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
                         "33333333-3333-4333-8333-333333333333"]
            // Embedded host: adapters 0-7, domains 0-84; nothing reserved for the host.
            let M = s.sys + "/devices/vfio_ap/matrix"
            let setup = sh("""
                set -e; cd \(q(s.sys)); echo 0x0 > bus/ap/apmask
                for i in 0 1 2; do u=(\(uuids.joined(separator: " "))); echo ${u[$i]} > \(q(M))/mdev_supported_types/vfio_ap-passthrough/create
                  echo $((i+1)) > \(q(M))/${u[$i]}/assign_adapter; echo 3 > \(q(M))/${u[$i]}/assign_domain
                  echo 20 > \(q(M))/${u[$i]}/assign_domain; done
                """)
            #expect(setup.status == 0, "\(setup)")
            let cpus = ["host,apft=off", "host,apqci=off", "host,apqi=off", "host,ap=off"]
            for i in 0..<4 {
                let device = i < 3 ? " --device vfio-ap,sysfsdev=\(M)/\(uuids[i]),id=hostdev0" : ""
                let r = try s.cli("guest start \(names[i]) --cpu \(cpus[i])\(device) --sysfs-mount \(q(g[i]))")
                #expect(r.status == 0, "\(r)")
                #expect(isApmatrixMount(g[i]), "\(g[i]) is not mounted")
            }
            #expect(listDir(g[0] + "/devices/ap") == [])
            #expect(cat(g[0] + "/bus/ap/ap_usage_domain_mask") == "0x10000800" + String(repeating: "0", count: 56) + "\n")
            // apqci=off: domain 20 is above 15.
            #expect(listDir(g[1] + "/bus/ap/devices") == ["02.0003", "card02"])
            #expect(cat(g[1] + "/bus/ap/ap_max_domain_id") == "15\n")
            #expect(cat(g[1] + "/bus/ap/ap_usage_domain_mask") == "not supported\n")
            #expect(cat(g[2] + "/bus/ap/ap_interrupts") == "0\n")
            #expect(listDir(g[2] + "/bus/ap/devices") == ["03.0003", "03.0014", "card03"])
            #expect(listDir(g[3]) == ["bus", "devices"])
            #expect(listDir(g[3] + "/bus") == [])

            // Four readers at once, one per guest tree.
            let loops = g.map { "(for i in $(seq 1 30); do ls -R \(q($0)) > /dev/null || exit 1; done) &" }.joined(separator: "\n")
            let together = sh(loops + "\nfor j in $(jobs -p); do wait $j || exit 1; done", timeout: 60)
            #expect(together.status == 0, "\(together)")

            s.process.signal(SIGTERM)
            #expect(s.process.reap(timeout: 15) == 0, "\(s.process.stderrText)")
            for d in g { #expect(!isApmatrixMount(d), "\(d) is still mounted after serve exit") }
        }
    }
}
