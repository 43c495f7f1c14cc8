import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestMigrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move a guest to another emulated host (another apmatrix serve).",
        discussion: """
            Refused while a vfio-ap device is attached, as on a real host: hot unplug it first
            (QMP device_del, or guest detach-device), migrate, then plug an mdev of the target host.
            The guest keeps its CPU model; the target checks it against its own facilities.
            """)

    @OptionGroup var guest: GuestTarget

    @Option(help: ArgumentHelp("The target daemon's API: http://HOST:PORT or unix:PATH.", valueName: "URL"))
    var to: String

    @Option(help: ArgumentHelp("Serve the guest's QMP monitor on this socket on the target.", valueName: "SOCKET"))
    var qmp: String?

    @Option(help: ArgumentHelp(
        "The target daemon's write token, when it runs on another machine (on this one the daemon finds it).",
        valueName: "TOKEN"))
    var toToken: String?

    func run() async throws {
        try await reporting { () async throws(APError) in
            try await guest.server.client.migrate(guest.name, MigrateRequest(to: to, qmp: qmp, token: toToken))
        }
        print("guest \(guest.name) migrated to \(to)")
    }
}
