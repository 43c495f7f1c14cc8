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
    @Argument(help: "The mdev.", transform: MdevUUID.argument) var uuid: MdevUUID
    @Argument(help: "Only this APQN, written as in sysfs: 05.0047.", transform: APQN.argument) var apqn: APQN?
    @Flag(help: "Print JSON (schema apmatrix.explain/1, see README).") var json = false

    func run() throws {
        let s = try sysfs.snapshot()
        let m = try mdev(uuid, in: s)
        let r = try planning { () throws(PlanError) in try ExplainReport(s, mdev: m, apqn: apqn) }
        print(json ? r.json : r.text, terminator: "")
    }
}
