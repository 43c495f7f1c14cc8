import APMatrixModel
import APMatrixTools
import ArgumentParser
import Foundation

struct MdevctlCalloutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mdevctl-callout",
        abstract: "An mdevctl call-out for vfio_ap-passthrough: refuses configs that would fail or take another device's queues.",
        discussion: """
            Install it as an executable in /etc/mdevctl.d/scripts.d/callouts, e.g. a script
            `#!/bin/sh` + `exec apmatrix mdevctl-callout "$@"`. mdevctl passes -t TYPE -e EVENT -a ACTION
            -s STATE -u UUID -p PARENT and the device's JSON config on stdin. Other types exit 2.
            On pre start, pre define and pre modify it plays the config on a private copy of the host
            (with every active device and every start=auto defined device) and exits 1 with the
            reasons on stderr if a write would fail: an APQN shared with another device, an APQN
            reserved for the host by apmask/aqmask, an id above the maximum; pre start also needs a
            usage domain. get attributes prints the active device's assignment. The name is the
            subcommand's because apmatrix has other commands; the callout directory takes any name.
            """)

    @OptionGroup var sysfs: SysfsOptions
    @Option(name: .customShort("t"), help: "Device type.") var type: String
    @Option(name: .customShort("e"), help: "Event: pre, post or get.") var event: String
    @Option(name: .customShort("a"), help: "Action: define, start, modify, … (attributes for get).") var action: String
    @Option(name: .customShort("s"), help: "State: none, success, failure.") var state: String = "none"
    @Option(name: .customShort("u"), help: "The device's UUID.", transform: MdevUUID.argument) var uuid: MdevUUID
    @Option(name: .customShort("p"), help: "The parent (matrix).") var parent: String = "matrix"
    @Option(help: ArgumentHelp("mdevctl's configuration directory.", valueName: "DIR")) var mdevctlEtc = "/etc/mdevctl.d"

    func run() throws {
        guard type == MdevctlCallout.type else { throw ExitCode(MdevctlCallout.notOurType) }
        switch (event, action) {
        case ("get", "attributes"):
            let s = try sysfs.snapshot()
            var attrs: [[String: String]] = []
            if let m = s.mdev(uuid) {
                func attr(_ name: String, _ ids: [Int]) { for id in ids { attrs.append([name: String(format: "0x%02x", id)]) } }
                attr("assign_adapter", m.matrix.apm.map(\.value))
                attr("assign_domain", m.matrix.aqm.map(\.value))
                attr("assign_control_domain", m.matrix.adm.map(\.value))
            }
            let data = try JSONSerialization.data(withJSONObject: attrs, options: [.prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        case ("pre", "start"), ("pre", "define"), ("pre", "modify"):
            let input = FileHandle.standardInput.readDataToEndOfFile()
            let snapshot = try sysfs.snapshot()
            let problems = try planning { () throws(PlanError) in
                try MdevctlCallout.problems(
                    action: action, uuid: uuid, config: try MdevctlConfig.parse(String(decoding: input, as: UTF8.self)),
                    snapshot: snapshot, defined: MdevctlCallout.definedConfigs(etc: mdevctlEtc), etc: mdevctlEtc)
            }
            guard problems.isEmpty else {
                var out = "apmatrix: refusing to \(action) mdev \(uuid):\n"
                for p in problems { out += "  " + p + "\n" }
                FileHandle.standardError.write(Data(out.utf8))
                throw ExitCode(1)
            }
        default:
            return
        }
    }
}
