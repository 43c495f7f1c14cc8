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

    func run() async throws {
        let _: Empty = try await reporting { () async throws(APError) in
            try await guest.server.client.post(guest.path + "/migrate", MigrateRequest(to: to, qmp: qmp))
        }
        print("guest \(guest.name) migrated to \(to)")
    }
}
