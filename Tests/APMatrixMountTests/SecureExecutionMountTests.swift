// A Secure Execution guest through a real `apmatrix serve` and its guest
// mount, with bash (docs/secure-execution.md; README "Secure Execution
// guests"): queues start unbound, CCA illicit; bind, associate (pending, then
// associated), every errno of se_bind/se_associate; hot unplug of a bound
// queue, gone after the guest's next scan, unbound when plugged back; a guest
// that is not secure has none of it; a secure guest cannot migrate.

import APMatrixTesting
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct SecureExecution {
        static let u1 = "62177883-f1bb-47f0-914d-32a22e3a8804"
        static let u2 = "cef03c3c-903d-4ecc-9a83-40694cb8aee4"

        /// `w VALUE FILE`: one write; prints `ok` or the errno text bash reports.
        static let writeFunction = #"w() { local e; if e=$( { echo "$1" > "$2"; } 2>&1 ); then echo ok; else echo "${e##*: }"; fi; }"#

        /// Runs `script` in `dir` with `w` defined; stops at the first failing command of the setup only.
        func shell(_ dir: String, _ script: String) -> ShellResult {
            sh("cd \(q(dir)) && \(Self.writeFunction)\n" + script, timeout: 30)
        }

        @Test func bindAssociateLoseAndBindAgainWithTheShell() throws {
            // The embedded host: CEX8P adapters 2-3, CEX8A 4-5, CEX7C 6-7, usage domains 0-84.
            let s = try ServeProcess()
            let g = s.base + "/se", p = s.base + "/plain"
            defer { s.finish(guestDirs: [g, p]) }
            let M = s.sys + "/devices/vfio_ap/matrix"
            let setup = sh("""
                set -e; cd \(q(s.sys)); echo 0x0 > bus/ap/apmask
                for u in \(Self.u1) \(Self.u2); do echo $u > \(q(M))/mdev_supported_types/vfio_ap-passthrough/create; done
                for a in 2 4 6; do echo $a > \(q(M))/\(Self.u1)/assign_adapter; done
                echo 3 > \(q(M))/\(Self.u2)/assign_adapter
                echo 5 > \(q(M))/\(Self.u1)/assign_domain; echo 5 > \(q(M))/\(Self.u2)/assign_domain
                """)
            #expect(setup.status == 0, "\(setup)")
            let start = try s.cli("guest start se --object s390-pv-guest,id=pv0 --machine confidential-guest-support=pv0"
                                  + " --device vfio-ap,sysfsdev=\(M)/\(Self.u1),id=hostdev0 --sysfs-mount \(q(g))")
            #expect(start.status == 0, "\(start)")
            #expect(start.stdout.hasPrefix("se  -cpu host,ap=on,apqci=on,apft=on,apqi=on,appv=on,appvi=on  Secure Execution  hostdev0 -> mdev "),
                    "\(start)")
            let plain = try s.cli("guest start plain --device vfio-ap,sysfsdev=\(M)/\(Self.u2),id=hostdev0 --sysfs-mount \(q(p))")
            #expect(plain.status == 0, "\(plain)")

            // What the secure guest sees at boot.
            let boot = shell(g, """
                q=devices/ap/card02/02.0005
                cat bus/ap/features
                ls $q | grep '^se_'
                ls devices/ap/card04/04.0005 | grep '^se_'
                ls devices/ap/card06/06.0005 | grep -c '^se_'
                cat $q/ap_functions devices/ap/card04/04.0005/ap_functions devices/ap/card06/06.0005/ap_functions
                cat $q/se_bind $q/se_associate devices/ap/card04/04.0005/se_associate
                """)
            #expect(boot.stdout == """
                APSC APXA QACT RC8A APSB
                se_associate
                se_bind
                se_associate
                se_bind
                0
                0x06008000
                0x6A008000
                0x7200C000
                unbound
                unassociated
                -

                """, "\(boot)")

            // Bind, associate, and every errno of the two attributes.
            let work = shell(g, """
                q=devices/ap/card02/02.0005; a=devices/ap/card04/04.0005
                sleep 0.1
                w 1 $q/se_bind; cat $q/se_bind $q/ap_functions
                w 1 $q/se_bind
                w maybe $q/se_bind
                w 1 $a/se_bind; cat $a/se_bind $a/ap_functions
                w 7 $a/se_associate
                w 65536 $q/se_associate
                w 4294967296 $q/se_associate
                w 0 $a/se_bind; w 0 $a/se_bind; cat $a/se_bind
                w 7 $q/se_associate; cat $q/se_associate
                w 8 $q/se_associate
                for i in $(seq 100); do [ "$(cat $q/se_associate)" = "associated 7" ] && break; sleep 0.1; done
                cat $q/se_associate $q/ap_functions
                w 8 $q/se_associate
                """)
            #expect(work.stdout == """
                ok
                bound
                0x06004000
                Invalid argument
                Invalid argument
                ok
                bound
                0x6A000000
                Invalid argument
                Invalid argument
                Numerical result out of range
                ok
                ok
                unbound
                ok
                association pending
                Device or resource busy
                associated 7
                0x06000000
                Invalid argument

                """, "\(work)")

            // The guest clock logs the completion within a second (it ticks once a second).
            let completed = "] guest se: queue 02.0005 SE associated with index 7 (the firmware completed the association)\n"
            let logged = sh("for i in $(seq 50); do APMATRIX_SERVER=\(q(s.server)) \(q(try apmatrixExecutable())) dmesg | grep -qF \(q(completed)) && exit 0; sleep 0.1; done; exit 1")
            #expect(logged.status == 0, "\(logged)")

            // The host hot unplugs adapter 2: the binding is lost at once, the device goes at the next scan.
            #expect(writeAttr(M + "/" + Self.u1 + "/unassign_adapter", "2") == .ok)
            let unplugged = shell(g, """
                q=devices/ap/card02/02.0005
                cat $q/ap_functions $q/se_bind $q/se_associate
                w 1 $q/se_bind
                echo 1 > bus/ap/scans; ls devices/ap
                """)
            #expect(unplugged.stdout == "0x00000000\nbound\nassociated 7\nInput/output error\ncard04\ncard06\n", "\(unplugged)")
            #expect(writeAttr(M + "/" + Self.u1 + "/assign_adapter", "2") == .ok)
            let again = shell(g, """
                q=devices/ap/card02/02.0005
                echo 1 > bus/ap/scans; ls devices/ap
                cat $q/se_bind $q/se_associate $q/ap_functions
                sleep 0.1; w 1 $q/se_bind; cat $q/se_bind
                """)
            #expect(again.stdout == "card02\ncard04\ncard06\nunbound\nunassociated\n0x06008000\nok\nbound\n", "\(again)")

            // The host's views: guest show, the event log, the migration refusal.
            let show = try s.cli("guest show se")
            #expect(show.stdout.contains("""
                Secure Execution state of the queues in the CRYCB (lszcrypt -V SESTAT in the guest):
                APQN     TYPE   SESTAT   ASSOCIATION
                02.0005  CEX8P  bound    -
                04.0005  CEX8A  unbound  -
                06.0005  CEX7C  illicit  -
                """), "\(show)")
            let log = try s.cli("dmesg")
            for line in ["guest se: queue 02.0005 SE bound (se_bind 1)",
                         "guest se: queue 02.0005 SE association with index 7 requested (se_associate 7)",
                         "guest se: queue 04.0005 SE unbound (se_bind 0)",
                         "guest se: queue 02.0005 SE binding and association 7 lost (queue reset: left the shadow: adapter 02 unassigned)"] {
                #expect(log.stdout.contains("] " + line + "\n"), "\(line) not in \(log.stdout)")
            }
            let migrate = try s.cli("guest migrate se --to http://127.0.0.1:1")
            #expect(migrate.status != 0)
            #expect(migrate.stderr == "Error: ENOTSUP: guest se is a Secure Execution guest: protected VMs are currently not migratable.\n",
                    "\(migrate)")

            // A guest that is not secure has none of it.
            let other = shell(p, "cat bus/ap/features; ls devices/ap/card03/03.0005 | grep -c '^se_'; cat devices/ap/card03/03.0005/ap_functions")
            #expect(other.stdout == "APSC APXA QACT RC8A\n0\n0x06000000\n", "\(other)")
        }

        @Test func theCommandLineRefusesHalfAConfidentialGuestAndAHostWithoutPV() throws {
            let dir = try makeTempDir()
            defer { _ = sh("rm -rf \(q(dir))") }
            let hostFile = dir + "/host.json"
            try #"{"domains": "0-3", "facilities": {"pv": false}, "adapters": [{"id": 2, "type": "CEX8P"}]}"#
                .write(toFile: hostFile, atomically: true, encoding: .utf8)
            let s = try ServeProcess(host: hostFile)
            defer { s.finish(guestDirs: []) }
            let half = try s.cli("guest start se --object s390-pv-guest,id=pv0")
            #expect(half.status != 0)
            #expect(half.stderr.contains("-object s390-pv-guest,id=pv0 is not used: add -machine confidential-guest-support=pv0 (or use --secure)"),
                    "\(half)")
            let noPV = try s.cli("guest start se --secure")
            #expect(noPV.status != 0)
            #expect(noPV.stderr == "Error: EINVAL: CPU model does not support Protected Virtualization: the host lacks facility pv (the Ultravisor and a host kernel with prot_virt=1), so it cannot run a Secure Execution guest\n",
                    "\(noPV)")
            let appv = try s.cli("guest start g --cpu host,appv=on")
            #expect(appv.stderr == "Error: EINVAL: CPU feature appv is not available: the host lacks facility pv (protected virtualization)\n", "\(appv)")
        }
    }
}
