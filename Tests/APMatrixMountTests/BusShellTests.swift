// The AP bus's own attributes, uevent files and driver_override through a
// real mount with bash (docs/upstream-ap-bus.md §1–§3), and config-change
// notification seen from a guest's tree through `apmatrix serve` (§4).

import APMatrixModel
import APMatrixRuntime
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// Bash functions for the scripts: `w VALUE FILE` echoes VALUE into FILE and
/// prints `ok` or the errno text bash reports; `r FILE` prints FILE or the error.
let shellHelpers = """
    w() { local out; out=$( { echo "$1" > "$2"; } 2>&1 ) && echo ok || echo "${out##*write error: }"; }
    r() { local out; out=$(cat "$1" 2>&1) && printf '%s\\n' "$out" || echo "${out##*: }"; }

    """

extension MountTests {
    @Suite struct BusShell {
        /// Every read and write of the new `bus/ap` attributes, each profile's parsers.
        @Test(arguments: Profile.allCases) func busAttributes(_ p: Profile) throws {
            try withMount(profile: p) { m in
                let out = sh(shellHelpers + """
                    cd \(q(m.path("bus/ap")))
                    for f in ap_interrupts config_time poll_thread poll_timeout bindings bindings_complete_count features; do r $f; done
                    w 4 config_time; w 121 config_time; w abc config_time; w +60 config_time; r config_time
                    w 120000000001 poll_timeout; w 0 poll_timeout; w 0x10 poll_timeout; w 1500000 poll_timeout; r poll_timeout
                    w 2 poll_thread; w yes poll_thread; w 1 poll_thread; r poll_thread
                    a=$(cat scans); w 1 scans; b=$(cat scans); echo "scans +$((b - a))"
                    w 05.0004 drivers/cex4queue/unbind; r bindings
                    w 05.0004 drivers/cex4queue/bind; r bindings
                    w 05.0004 drivers/cex4queue/bind
                    """)
                let upstream = p == .upstream
                #expect(out.stdout == """
                    1
                    30
                    0
                    250000
                    76/76 (complete)
                    \(upstream ? "1" : "No such file or directory")
                    APSC APXA QACT RC8A
                    Invalid argument
                    Invalid argument
                    Invalid argument
                    ok
                    60
                    Invalid argument
                    \(upstream ? "ok" : "Invalid argument")
                    \(upstream ? "ok" : "Invalid argument")
                    ok
                    1500000
                    \(upstream ? "Invalid argument" : "ok")
                    \(upstream ? "ok" : "Invalid argument")
                    ok
                    0
                    ok
                    scans +1
                    ok
                    75/76
                    ok
                    76/76 (complete)
                    \(upstream ? "Device or resource busy" : "No such device")

                    """, "\(out)")
            }
        }

        /// The uevent files of cards, queues and the bus's root device, and
        /// the events writes to them send, as the log (dmesg) shows them.
        @Test(arguments: Profile.allCases) func ueventFiles(_ p: Profile) throws {
            try withMount(profile: p) { m in
                let out = sh(shellHelpers + """
                    cd \(q(m.path("devices/ap")))
                    r card05/uevent; r card06/06.0004/uevent; wc -c < uevent
                    stat -c '%a' card05/uevent card05/05.0004/uevent uevent
                    w change card05/uevent; w 'add 12345678-90ab-cdef-1234-567890abcdef KEY=v1' card06/06.0004/uevent
                    w explode card05/uevent; w 'change notauuid' card05/uevent
                    """)
                let upstream = p == .upstream
                #expect(out.stdout == """
                    DEVTYPE=ap_card
                    DRIVER=cex4card
                    DEV_TYPE=000E
                    MODALIAS=ap:t0E
                    \(upstream ? "MODE=cca\nDEVTYPE=ap_queue\nDRIVER=cex4queue\nMODE=ep11" : "DEVTYPE=ap_queue\nDRIVER=cex4queue\nDEV_TYPE=000E\nMODALIAS=ap:t0E")
                    0
                    644
                    644
                    644
                    ok
                    ok
                    Invalid argument
                    Invalid argument

                    """, "\(out)")
                let lines = m.runtime.log().map(\.event.line)
                #expect(lines == [
                    upstream ? "uevent change /devices/ap/card05 (ap): SYNTH_UUID=0 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E MODE=cca"
                             : "uevent change /devices/ap/card05 (ap): SYNTH_UUID=0 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E",
                    upstream ? "uevent add /devices/ap/card06/06.0004 (ap): SYNTH_UUID=12345678-90ab-cdef-1234-567890abcdef SYNTH_ARG_KEY=v1 DEVTYPE=ap_queue DRIVER=cex4queue MODE=ep11"
                             : "uevent add /devices/ap/card06/06.0004 (ap): SYNTH_UUID=12345678-90ab-cdef-1234-567890abcdef SYNTH_ARG_KEY=v1 DEVTYPE=ap_queue DRIVER=cex4queue DEV_TYPE=000E MODALIAS=ap:t0E",
                    "synth uevent: /devices/ap/card05: unknown uevent action string",
                    "cex4card card05: uevent: failed to send synthetic uevent: -22",
                    "synth uevent: /devices/ap/card05: incorrect uevent action arguments",
                    "cex4card card05: uevent: failed to send synthetic uevent: -22",
                ])
            }
        }

        /// zcrypt's `online` and the firmware's `config` (docs/upstream-ap-bus.md
        /// §2.3): a card's online write forces the queues it drives (both
        /// eras); 6.x announces each write with `ONLINE=`/`CONFIG=` change
        /// events (the card's even when unchanged, its queues' only when
        /// changed), the seed era with none.
        @Test(arguments: Profile.allCases) func onlineAndConfigChangeEvents(_ p: Profile) throws {
            try withMount(profile: p) { m in
                let out = sh(shellHelpers + """
                    cd \(q(m.path("devices/ap")))
                    w 0 card05/05.0004/online; w 0 card05/online
                    r card05/05.0000/online; r card05/05.0004/online; r card05/05.00ff/online; r card04/04.0000/online
                    w 1 card05/05.0003/online; w 1 card05/online; r card05/05.0000/online
                    w 1 card06/config; w 0 card06/config; r card06/config
                    """)
                #expect(out.stdout == "ok\nok\n0\n0\n0\n1\nok\nok\n1\nok\nok\n0\n", "\(out)")
                let uevents = m.runtime.log().map(\.event.line).filter { $0.hasPrefix("uevent change /devices/ap/card0") }
                guard p == .upstream else {
                    #expect(uevents.isEmpty, "\(uevents)")
                    return
                }
                // 05.0004's write; the card's; the 18 other queues of card05 (0-15, 0x47, 0xab, 0xff); 05.0003's;
                // the card's; the 18 queues but 05.0003; card06's CONFIG=1 (unchanged) and CONFIG=0.
                #expect(uevents.count == 1 + 1 + 18 + 1 + 1 + 18 + 2)
                #expect(Array(uevents.prefix(3)) == [
                    "uevent change /devices/ap/card05/05.0004 (ap): ONLINE=0 DEVTYPE=ap_queue DRIVER=cex4queue MODE=cca",
                    "uevent change /devices/ap/card05 (ap): ONLINE=0 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E MODE=cca",
                    "uevent change /devices/ap/card05/05.0000 (ap): ONLINE=0 DEVTYPE=ap_queue DRIVER=cex4queue MODE=cca",
                ])
                #expect(uevents[20] == "uevent change /devices/ap/card05/05.0003 (ap): ONLINE=1 DEVTYPE=ap_queue DRIVER=cex4queue MODE=cca")
                #expect(Array(uevents.suffix(2)) == [
                    "uevent change /devices/ap/card06 (ap): CONFIG=1 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E MODE=ep11",
                    "uevent change /devices/ap/card06 (ap): CONFIG=0 DEVTYPE=ap_card DRIVER=cex4card DEV_TYPE=000E MODALIAS=ap:t0E MODE=ep11",
                ])
            }
        }

        /// driver_override (6.19): only with both masks all ones; masks locked
        /// while one is set; it decides the queue's next probe only.
        @Test func driverOverride() throws {
            try withMount(profile: .upstream) { m in
                let out = sh(shellHelpers + """
                    cd \(q(m.root))
                    q=devices/ap/card05/05.0004
                    stat -c '%a' $q/driver_override; wc -c < $q/driver_override
                    w vfio_ap $q/driver_override; r $q/driver_override; readlink $q/driver
                    w -5 bus/ap/apmask; w 0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff bus/ap/aqmask
                    w 05.0004 bus/ap/drivers/cex4queue/unbind; w 05.0004 bus/ap/drivers/cex4queue/bind
                    w 05.0004 bus/ap/drivers/vfio_ap/bind; readlink $q/driver; r bus/ap/bindings
                    w '' $q/driver_override; wc -c < $q/driver_override
                    w -5 bus/ap/apmask; w vfio_ap devices/ap/card05/05.0047/driver_override
                    """)
                #expect(out.stdout == """
                    644
                    1
                    ok
                    vfio_ap
                    ../../../../bus/ap/drivers/cex4queue
                    Invalid argument
                    Invalid argument
                    ok
                    No such device
                    ok
                    ../../../../bus/ap/drivers/vfio_ap
                    76/76 (complete)
                    ok
                    1
                    ok
                    Invalid argument

                    """, "\(out)")
                #expect(statErrno(m.path("devices/ap/card05/driver_override")) == ENOENT)
            }
        }

        @Test func noDriverOverrideInTheSeedProfile() throws {
            try withMount(profile: .seed) { m in
                #expect(statErrno(m.path("devices/ap/card05/05.0004/driver_override")) == ENOENT)
                #expect(statErrno(m.path("bus/ap/bindings_complete_count")) == ENOENT)
            }
        }

        /// Config-change notification: with the guest's `config_time` at 120
        /// and no write to `scans`, a hot plug reaches the guest's tree within
        /// one scan upstream; the seed's guest does not see it.
        @Test(arguments: ["upstream", "seed"]) func hotPlugReachesTheGuestTree(_ profile: String) throws {
            let s = try ServeProcess(profile: profile)
            let g = s.base + "/g1"
            defer { s.finish(guestDirs: [g]) }
            let u = "11111111-1111-4111-8111-111111111111"
            let M = s.sys + "/devices/vfio_ap/matrix"
            let setup = sh("""
                set -e; cd \(q(s.sys)); echo 120 > bus/ap/config_time; echo 0x0 > bus/ap/apmask
                echo \(u) > \(q(M))/mdev_supported_types/vfio_ap-passthrough/create
                echo 1 > \(q(M))/\(u)/assign_adapter; echo 3 > \(q(M))/\(u)/assign_domain
                """)
            #expect(setup.status == 0, "\(setup)")
            let start = try s.cli("guest start g1 --device vfio-ap,sysfsdev=\(M)/\(u),id=hostdev0 --sysfs-mount \(q(g))")
            #expect(start.status == 0, "\(start)")
            let out = sh(shellHelpers + """
                cd \(q(g))/bus/ap; w 120 config_time; r scans; r poll_thread; r poll_timeout
                w 0 poll_timeout; w 1 poll_thread; r poll_thread
                echo 2 > \(q(M))/\(u)/assign_adapter
                ls \(q(g))/devices/ap | tr '\\n' ' '; echo; r scans
                """)
            let upstream = profile == "upstream"
            #expect(out.stdout == """
                ok
                1
                0
                250000
                \(upstream ? "ok" : "Invalid argument")
                ok
                0
                \(upstream ? "card01 card02 " : "card01 ")
                \(upstream ? "2" : "1")

                """, "\(out)")
            let show = try s.cli("guest show g1")
            #expect(show.stdout.contains("  irqs     0 request (wired), 1 config change (\(upstream ? "wired" : "not available"))\n"), "\(show)")
            #expect(show.stdout.contains("AP bus scan 2 (AP configuration change event): added 02.0003 card02; removed -") == upstream, "\(show)")
            // The host bus's own events in the log: the mask change, then bindings complete at the next scan.
            #expect(sh("echo 1 > \(q(s.sys))/bus/ap/scans").status == 0)
            let dmesg = try s.cli("dmesg")
            let uevents = dmesg.stdout.split(separator: "\n").filter { $0.contains("] uevent ") && $0.contains(" /devices/ap (ap)") }
                .map { $0.split(separator: "]", maxSplits: 1)[1] }
            #expect(uevents == (upstream ? [
                " uevent change /devices/ap (ap): APMASK=0x0000000000000000000000000000000000000000000000000000000000000000\\n",
                " uevent change /devices/ap (ap): BINDINGS=complete COMPLETECOUNT=2",
            ] : [" uevent change /devices/ap (ap): BINDINGS=complete"]), "\(dmesg)")
        }
    }
}
