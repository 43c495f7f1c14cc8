import APMatrixModel
import APMatrixTools
import ArgumentParser
import Glibc

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict what a list of sysfs writes would do, without writing; --apply performs it.",
        discussion: """
            FILE holds one write per line, PATH VALUE (PATH relative to the sysfs root, # comments),
            written as `echo VALUE > PATH` would. With --mdevctl-uuid, FILE is an mdevctl device config
            (JSON) and the writes are those of `mdevctl start`: create, then each attribute in order.
            The current state is read from sysfs into a private copy of the model; each write's errno
            and the resulting matrix and guest_matrix are printed. A failed write changes nothing and
            the next is predicted as a shell would run it. Running guests are assumed to have opened
            their mdev now (see the 'assumes:' lines). --apply performs the writes through sysfs and
            stops at the first failure.
            """)

    @OptionGroup var sysfs: SysfsOptions
    @Argument(help: "The plan file (- for stdin).") var file: String
    @Option(help: ArgumentHelp("FILE is an mdevctl config for the device with this UUID.", valueName: "UUID"),
            transform: MdevUUID.argument)
    var mdevctlUUID: MdevUUID?
    @Flag(help: "Perform the writes through sysfs, stop at the first failure, report what was applied.") var apply = false
    @Flag(help: "Print JSON (schema apmatrix.plan/1, see README).") var json = false

    func run() throws {
        let text: String
        if file == "-" {
            var all: [UInt8] = []
            while let line = readLine(strippingNewline: false) { all.append(contentsOf: line.utf8) }
            text = String(decoding: all, as: UTF8.self)
        } else {
            guard case .success(let t) = SysfsDirectory("/").read(file) else { throw Failure("cannot read \(file)") }
            text = t
        }
        let writes = try planning { () throws(PlanError) in
            if let uuid = mdevctlUUID { return try MdevctlConfig.parse(text).writes(uuid: uuid) }
            return try PlannedWrite.parse(text)
        }
        let snapshot = try sysfs.snapshot()
        var report = try planning { () throws(PlanError) in try PlanReport(snapshot, writes) }
        let ok = apply ? report.apply(sysfs.directory) : true
        print(json ? report.json : report.text, terminator: "")
        if !ok { throw ExitCode(1) }
    }
}

/// Turns a refused plan input into the CLI's one-line error.
func planning<T>(_ body: () throws(PlanError) -> T) throws -> T {
    do throws(PlanError) { return try body() } catch { throw Failure(error.description) }
}
