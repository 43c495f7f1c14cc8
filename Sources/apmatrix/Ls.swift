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
    @Option(help: ArgumentHelp("Only this adapter (decimal or 0x hex).", valueName: "ID")) var adapter: String?
    @Option(help: ArgumentHelp("Only queues of this usage domain (decimal or 0x hex).", valueName: "ID")) var domain: String?
    @Option(help: ArgumentHelp("Only queues assigned to this mdev.", valueName: "UUID")) var mdev: String?
    @Flag(help: "Print JSON (schema apmatrix.ls/1, see README).") var json = false

    func validate() throws {
        if let adapter { _ = try parseID(adapter, "--adapter") }
        if let domain { _ = try parseID(domain, "--domain") }
    }

    func run() throws {
        let s = try sysfs.snapshot()
        let r = LsReport(s, filter: .init(adapter: try adapter.map { try parseID($0, "--adapter") },
                                          domain: try domain.map { try parseID($0, "--domain") }, mdev: mdev))
        print(json ? r.json : r.text, terminator: "")
    }
}
