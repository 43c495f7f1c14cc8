import APMatrixModel
import APMatrixTools
import ArgumentParser

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say why APQNs assigned to an mdev are not in its guest, which rule decided it, and what to do.",
        discussion: """
            Reads sysfs only and applies vfio_ap's filtering rule (SPEC §3) to what it shows: not in
            the LPAR's configuration, an adapter filtered because one of its queues is not bound to
            vfio_ap, the APQI fallback, no guest using the mdev, or hot-plug history.
            """)

    @OptionGroup var sysfs: SysfsOptions
    @Argument(help: "The mdev.") var uuid: String
    @Argument(help: "Only this APQN, written as in sysfs: 05.0047.") var apqn: String?
    @Flag(help: "Print JSON (schema apmatrix.explain/1, see README).") var json = false

    func validate() throws {
        if let apqn, APQN(sysfsName: apqn) == nil { throw ValidationError("APQN '\(apqn)': write it as in sysfs, e.g. 05.0047") }
    }

    func run() throws {
        let s = try sysfs.snapshot()
        let r = ExplainReport(s, mdev: try mdev(uuid, in: s), apqn: apqn.flatMap { APQN(sysfsName: $0) })
        print(json ? r.json : r.text, terminator: "")
    }
}
