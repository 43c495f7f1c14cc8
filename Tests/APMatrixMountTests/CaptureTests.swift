// `apmatrix capture` on the emulator's own mount, then `apmatrix serve` on
// what it wrote: the served tree equals the captured one file by file
// (content, mode, symlink target), except what sysfs cannot know, which each
// test lists. Hosts: the seed example, the embedded default, one with a
// deconfigured, a CEX3 and a restricted adapter, and one after mask changes
// with mdevs, bindings and a guest (with --state).

import APMatrixModel
import APMatrixRuntime
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// What `capture` wrote for one tree, in a fresh directory.
struct CaptureRun {
    let dir: String
    let result: ShellResult
    var hostFile: String { dir + "/host.json" }
    var stateFile: String { dir + "/state.db" }
    var hostText: String { (try? String(contentsOfFile: hostFile, encoding: .utf8)) ?? "" }

    /// `apmatrix capture --sysfs TREE -o DIR/host.json [--state DIR/state.db] [EXTRA]`.
    init(_ tree: String, state: Bool = false, extra: String = "") throws {
        dir = try makeTempDir("apmatrix-mt-capture")
        result = sh("\(q(try apmatrixExecutable())) capture --sysfs \(q(tree)) -o \(q(dir))/host.json"
                    + (state ? " --state \(q(dir))/state.db" : "") + " " + extra, timeout: 60)
    }

    /// Serves what was captured at a fresh mount and returns the differences
    /// between `original` and the served tree; `body` sees the daemon.
    func serveAndCompare(_ original: String, arguments: [String] = [], _ body: (ServeProcess) throws -> Void = { _ in }) throws -> (differences: [String], entries: Int) {
        let s = try ServeProcess(host: hostFile, arguments: (access(stateFile, F_OK) == 0 ? ["--state", stateFile] : []) + arguments)
        defer { s.finish(guestDirs: []) }
        let a = walkTree(original), b = walkTree(s.sys)
        try body(s)
        return (treeDifferences(a, b), a.count)
    }

    func remove() { _ = sh("rm -rf \(q(dir))") }
}

extension MountTests {
    @Suite struct Capture {
        /// The seed example and the embedded default, as they boot (entries: every
        /// node of the tree, the `uevent` files of `/devices/vfio_ap` and the matrix device among them).
        @Test(arguments: zip([HostDescription.seedExample, .embeddedDefault], [1196, 9724]))
        func freshHostRoundTrip(host: HostDescription, expectedEntries: Int) throws {
            try withMount(host) { m in
                let c = try CaptureRun(m.root)
                defer { c.remove() }
                #expect(c.result.status == 0, "\(c.result)")
                let (diff, entries) = try c.serveAndCompare(m.root)
                #expect(diff == [], "\(diff.prefix(20))")
                #expect(entries == expectedEntries, "entries compared")
            }
        }

        /// A CEX3A (no card: read back as a CEX3C, which sysfs cannot tell
        /// apart), a deconfigured CEX8C, a CEX7P restricted to domains 0-3,
        /// no adapter interruptions, domains 0-3 reserved at boot.
        static let odd = HostDescription(
            facilities: Facilities(apqi: false, aiv: false), usageDomains: Bitmap256(0...7), controlDomains: Bitmap256(0...15),
            aqmask: Bitmap256(0...3), maxMdevs: 8,
            adapters: [AdapterDescription(id: 1, type: AdapterType("CEX3A")!),
                       AdapterDescription(id: 2, type: AdapterType("CEX8C")!, configured: false),
                       AdapterDescription(id: 3, type: AdapterType("CEX7P")!, domains: Bitmap256(0...3)),
                       AdapterDescription(id: 4, type: AdapterType("CEX8A")!)])

        @Test func deconfiguredCEX3AndRestrictedAdaptersRoundTrip() throws {
            try withMount(Self.odd) { m in
                let c = try CaptureRun(m.root)
                defer { c.remove() }
                #expect(c.result.status == 0, "\(c.result)")
                #expect(c.hostText == """
                    {
                      "notes": [
                        "adapter 01 is in the LPAR without a card device: taken as a CEX3C (a CEX3A looks the same in sysfs)",
                        "facility apft leaves no trace in sysfs: taken as present",
                        "apmask and aqmask are the masks at capture time, written as boot values (ap.apmask= and ap.aqmask= on the kernel command line are not in sysfs)"
                      ],
                      "apxa": true,
                      "maxAdapter": 255,
                      "maxDomain": 255,
                      "facilities": { "qci": true, "apft": true, "apqi": false, "aiv": false },
                      "domains": "0-7",
                      "controlDomains": "0-15",
                      "apmask": "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                      "aqmask": "0xf000000000000000000000000000000000000000000000000000000000000000",
                      "maxMdevs": 8,
                      "adapters": [
                        { "id": 1, "type": "CEX3C", "configured": true },
                        { "id": 2, "type": "CEX8C", "configured": false },
                        { "id": 3, "type": "CEX7P", "configured": true, "domains": "0-3" },
                        { "id": 4, "type": "CEX8A", "configured": true }
                      ]
                    }

                    """, "\(c.hostText)")
                #expect(c.result.stderr.split(separator: "\n").count == 3, "one stderr line per note: \(c.result)")
                #expect(try HostFile.load(path: c.hostFile).adapters.count == 4)
                let (diff, entries) = try c.serveAndCompare(m.root)
                #expect(diff == [], "\(diff.prefix(20))")
                #expect(entries == 278, "entries compared")
            }
        }

        /// Upstream shows every mdev's guest_matrix; only a queue `in use` says a guest has it.
        @Test func upstreamTreeRoundTripWithState() throws {
            let used = "cef03c3c-903d-4ecc-9a83-40694cb8aee4", idle = "49f9c6d3-6a8c-4d27-bd57-fa4d7ae7a3e6"
            try withMount(.seedExample, profile: .upstream) { m in
                try applyV4Masks(m)
                for u in [used, idle] { try createMdev(m, u) }
                for (u, attr, value) in [(used, "assign_adapter", "5"), (used, "assign_domain", "0xab"),
                                         (idle, "assign_adapter", "6"), (idle, "assign_domain", "0xff")] {
                    #expect(writeAttr(m.mdev(u) + "/" + attr, value) == .ok, "\(u) \(attr)")
                }
                let device = try VfioAPDevice(qemuDevice: "vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/\(used),id=hostdev0")
                try m.runtime.startGuest(GuestStart(name: "vm1", device: device))
                #expect(cat(m.path("devices/ap/card05/05.00ab/status")) == "in use\n")
                #expect(cat(m.path("devices/ap/card06/06.00ff/status")) == "assigned\n")

                let c = try CaptureRun(m.root, state: true)
                defer { c.remove() }
                #expect(c.result.status == 0, "\(c.result)")
                #expect(c.hostText.contains("the tree is a Linux 6.x kernel's (matrix/features lists ap_config): serve it with --profile upstream"))
                #expect(!c.hostText.contains("mdev \(idle) is used by a guest"))
                let (diff, entries) = try c.serveAndCompare(m.root, arguments: ["--profile", "upstream"]) { s in
                    let guests = try s.cli("guest list")
                    #expect(guests.stdout.split(separator: "\n").count == 1 && guests.stdout.hasPrefix("guest-of-\(used)"), "\(guests)")
                }
                #expect(diff == [], "\(diff.prefix(20))")
                #expect(entries == 1320, "entries compared")
            }
        }

        @Test func masksBindingsMdevsAndAGuestRoundTripWithState() throws {
            let u1 = "62177883-f1bb-47f0-914d-32a22e3a8804", u2 = "cef03c3c-903d-4ecc-9a83-40694cb8aee4"
            let u3 = "49f9c6d3-6a8c-4d27-bd57-fa4d7ae7a3e6"
            let etc = try MdevctlEtc()
            defer { etc.remove() }
            let definition = #"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"assign_adapter":"5"},{"assign_adapter":"6"},{"assign_domain":"0xab"}]}"#
            #expect(sh("mkdir -p \(q(etc.dir))/matrix && printf '%s' \(q(definition)) > \(q(etc.config(u2)))").status == 0)
            try withMount(.seedExample) { m in
                try applyV4Masks(m)
                // Created u2, u1, u3 (iommu groups 0, 1, 2), then u1 removed: group 1 stays free.
                for u in [u2, u1, u3] { try createMdev(m, u) }
                for (u, attr, value) in [(u2, "assign_adapter", "5"), (u2, "assign_adapter", "6"), (u2, "assign_domain", "0xab"),
                                         (u3, "assign_adapter", "5"), (u3, "assign_adapter", "6"), (u3, "assign_domain", "0xff"),
                                         (u3, "assign_control_domain", "4"), (u1, "remove", "1")] {
                    #expect(writeAttr(m.mdev(u) + "/" + attr, value) == .ok, "\(u) \(attr)")
                }
                #expect(writeAttr(m.path("bus/ap/drivers/vfio_ap/unbind"), "06.0004") == .ok)
                #expect(writeAttr(m.path("devices/ap/card07/config"), "0") == .ok)
                #expect(writeAttr(m.path("devices/ap/card04/online"), "0") == .ok)
                #expect(writeAttr(m.path("bus/ap/ap_domain"), "5") == .ok)
                let device = try VfioAPDevice(qemuDevice: "vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/\(u2),id=hostdev0")
                try m.runtime.startGuest(GuestStart(name: "vm1", device: device))
                #expect(cat(m.mdev(u2) + "/guest_matrix") == "05.00ab\n06.00ab\n")

                let c = try CaptureRun(m.root, state: true, extra: "--mdevctl-etc \(q(etc.dir))")
                defer { c.remove() }
                #expect(c.result.status == 0, "\(c.result)")
                for note in ["mdevs are created in the order of their iommu groups: sysfs does not show the creation order, which orders log lines",
                             "mdev \(u2) is used by a guest: it runs as guest-of-\(u2) with -cpu host (sysfs shows neither its name nor its CPU model)",
                             "only a state file (--state) keeps: 2 mdev(s); driver bindings, online states, ap_domain, the bus's scan count or uninitiated queues that differ from a fresh boot"] {
                    #expect(c.hostText.contains(note), "\(note)\n\(c.hostText)")
                }
                // What sysfs cannot know is not in the tree: the creation order
                // (u2 before u3 either way), the guest's name and CPU model.
                let (diff, entries) = try c.serveAndCompare(m.root) { s in
                    let guests = try s.cli("guest list")
                    #expect(guests.stdout.contains("guest-of-\(u2)") && guests.stdout.contains("-cpu host"), "\(guests)")
                    // mdevctl's definition came along, beside the state.
                    let list = try s.cli("exec -- mdevctl list -d")
                    #expect(trimmed(list.stdout) == "\(u2) matrix vfio_ap-passthrough manual (active)", "\(list)")
                }
                // Nothing in the tree is what sysfs cannot know: the creation
                // order, the guest's name and CPU model leave no file.
                let sysfsCannotKnow: [String] = []
                #expect(diff == sysfsCannotKnow, "\(diff.prefix(20))")
                #expect(entries == 930, "entries compared")
                // The comparison sees what the host file alone leaves out.
                let hostOnly = try CaptureRun(m.root)
                defer { hostOnly.remove() }
                let (missing, _) = try hostOnly.serveAndCompare(m.root)
                #expect(missing.contains("bus/ap/ap_domain: file 644 \"5\\n\" | file 644 \"0\\n\""), "\(missing.prefix(10))")
                #expect(missing.contains("devices/vfio_ap/matrix/\(u2): directory 755 | missing"), "\(missing.prefix(10))")
                #expect((try? String(contentsOfFile: c.stateFile + ".root/etc/mdevctl.d/matrix/\(u2)", encoding: .utf8)) == definition)
                // A second capture does not replace the state.
                let again = sh("\(q(try apmatrixExecutable())) capture --sysfs \(q(m.root)) --state \(q(c.stateFile))")
                #expect(again.status == 64 && again.stderr.contains("exists: capture writes a new state"), "\(again)")
            }
        }
    }
}
