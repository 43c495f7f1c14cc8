import APMatrixModel
import APMatrixServer
import ArgumentParser
import Foundation

/// A directory from the command line as an absolute path: the daemon has its own working directory.
func absolutePath(_ dir: String) -> String {
    dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir
}

struct GuestMount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount the guest's own /sys at DIR: its AP bus as the guest kernel sees it.",
        discussion: """
            The tree shows what the guest's AP bus found at its last scan, not the CRYCB itself:
            after a hot plug or unplug, `echo 1 > DIR/bus/ap/scans` rescans (with apqci=on the bus
            also rescans every config_time seconds). The daemon owns the mount: it goes away on
            `guest stop`, `guest umount` and when serve exits. Run lszcrypt-like tools against DIR.
            Example: apmatrix guest mount guest1 /tmp/guest1/sys && ls /tmp/guest1/sys/bus/ap/devices
            """)

    @OptionGroup var guest: GuestTarget

    @Argument(help: ArgumentHelp("Where to mount the guest's /sys (created if missing).", valueName: "DIR"))
    var dir: String

    func run() async throws {
        let g = try await reporting { () async throws(APError) in
            try await guest.server.client.mountGuestTree(guest.name, dir: absolutePath(dir))
        }
        print("\(g.name): guest tree mounted at \(g.sysfsMount ?? dir)")
    }
}
