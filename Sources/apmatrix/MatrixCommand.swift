import APMatrixModel
import APMatrixTools
import ArgumentParser
import Glibc

struct MatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Draw the AP matrix: adapters across, usage domains down, what each APQN is used for.",
        discussion: """
            Reads sysfs only. Cropped to the adapters and domains in use (with UUID: to those the
            mdev has assigned); consecutive domains with identical rows share a line. Colour when
            stdout is a terminal and NO_COLOR is not set. Each mdev gets a letter (legend below it).
            """)

    @OptionGroup var sysfs: SysfsOptions
    @Argument(help: "Only the adapters and domains of this mdev.", transform: MdevUUID.argument) var uuid: MdevUUID?
    @Flag(help: "Print JSON (schema apmatrix.matrix/1, see README).") var json = false

    func run() throws {
        let s = try sysfs.snapshot()
        let only = try uuid.map { try mdev($0, in: s) }
        let colour = isatty(1) == 1 && getenv("NO_COLOR") == nil
        let p = try planning { () throws(PlanError) in try MatrixPicture(s, only: only, colour: colour) }
        print(json ? p.json : p.text, terminator: "")
    }
}
