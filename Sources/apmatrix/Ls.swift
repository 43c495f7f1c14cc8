import APMatrixModel
import APMatrixTools
import ArgumentParser

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every card and queue: type, hwtype, config/online, driver, the mdev that has it, whether a guest has it.",
        discussion: """
            Reads sysfs only. ONLINE and TYPE are shown only while the device is bound to the host's
            zcrypt driver, as the kernel shows them. GUEST is yes when the queue is in its mdev's
            guest_matrix now. --domain or --mdev list queues only.
            """)

    @OptionGroup var sysfs: SysfsOptions
    @Option(help: ArgumentHelp("Only this adapter (decimal or 0x hex).", valueName: "ID"), transform: APID.argument)
    var adapter: APID?
    @Option(help: ArgumentHelp("Only queues of this usage domain (decimal or 0x hex).", valueName: "ID"), transform: APQI.argument)
    var domain: APQI?
    @Option(help: ArgumentHelp("Only queues assigned to this mdev.", valueName: "UUID"), transform: MdevUUID.argument)
    var mdev: MdevUUID?
    @Flag(help: "Print JSON (schema apmatrix.ls/1, see README).") var json = false

    func run() throws {
        let s = try sysfs.snapshot()
        let r = LsReport(s, filter: .init(adapter: adapter, domain: domain, mdev: mdev))
        print(json ? r.json : r.text, terminator: "")
    }
}
