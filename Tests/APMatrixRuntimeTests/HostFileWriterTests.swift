import APMatrixModel
import APMatrixRuntime
import APMatrixTesting
import Testing

/// The host file `apmatrix capture` writes reads back as the host it
/// describes; the host's private root is named after its state file or mount.
@Suite struct HostFileWriterTests {
    @Test func renderedFilesReadBackAsTheSameHost() throws {
        let restricted = HostDescription(
            apxa: false, facilities: Facilities(apft: false, apqi: false, aiv: true), usageDomains: Bitmap256([0, 1, 2, 9]),
            controlDomains: Bitmap256([3]), apmask: Bitmap256([1]), aqmask: Bitmap256<APQI>(), maxMdevs: 2,
            adapters: [AdapterDescription(id: 7, type: AdapterType("CEX4A")!, domains: Bitmap256<APQI>()),
                       AdapterDescription(id: 2, type: AdapterType("CEX3A")!, configured: false)])
        let hosts: [HostDescription] = [.embeddedDefault, .seedExample, restricted]
        for d in hosts {
            let text = HostFile.render(d, notes: ["a \"quoted\" note\nover two lines"])
            var back = try HostFile.parse(Array(text.utf8))
            back.adapters.sort { $0.id < $1.id }
            var sorted = d
            sorted.adapters.sort { $0.id < $1.id }
            #expect(back == sorted, "\(text)")
        }
        #expect(hosts.count == 3)
        #expect(HostFile.render(restricted) == """
            {
              "apxa": false,
              "maxAdapter": 63,
              "maxDomain": 15,
              "facilities": { "qci": true, "apft": false, "apqi": false, "aiv": true },
              "domains": "0-2,9",
              "controlDomains": "3",
              "apmask": "0x4000000000000000000000000000000000000000000000000000000000000000",
              "aqmask": "0x0000000000000000000000000000000000000000000000000000000000000000",
              "maxMdevs": 2,
              "adapters": [
                { "id": 2, "type": "CEX3A", "configured": false },
                { "id": 7, "type": "CEX4A", "configured": true, "domains": "" }
              ]
            }

            """)
    }

    @Test func notesMustBeStrings() {
        #expect(throws: HostDescription.Invalid("notes", "must be an array of strings")) {
            try HostFile.parse(Array(#"{"notes": [1], "domains": "0", "adapters": []}"#.utf8))
        }
        #expect(throws: HostDescription.Invalid("notes", "must be an array of strings")) {
            try HostFile.parse(Array(#"{"notes": "one", "domains": "0", "adapters": []}"#.utf8))
        }
    }

    @Test func privateRootsAreNamedAfterTheStateFileOrTheMount() {
        #expect(PrivateRoot.beside(stateFile: "/var/lib/ap/state.db").path == "/var/lib/ap/state.db.root")
        #expect(PrivateRoot.beside(stateFile: "/s").mdevctlDirectory == "/s.root/etc/mdevctl.d")
        #expect(PrivateRoot(path: "/r").guest("g 1").path == "/r/guests/g\\x201")
        #expect(PrivateRoot(path: "/r").bindings.map(\.source) == ["/r/etc/mdevctl.d", "/r/etc/udev/rules.d", "/r/run/lock"])
        let base = PrivateRoot.forMount("/").path
        #expect(base.hasSuffix("/hosts/-"), "\(base)")
        let run = String(base.dropLast("/hosts/-".count))
        #expect(PrivateRoot.forMount("/tmp/ap/sys").path == run + "/hosts/tmp-ap-sys")
        #expect(PrivateRoot.forMount("/tmp/a-b/.x/").path == run + "/hosts/tmp-a\\x2db-.x")
        #expect(PrivateRoot.forMount(".hidden/sys").path == run + "/hosts/\\x2ehidden-sys")
    }
}
