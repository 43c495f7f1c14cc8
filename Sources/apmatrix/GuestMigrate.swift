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
            With --live (serve --preview vfio-ap-migration on both hosts) the guest moves with its
            vfio-ap device, as QEMU migrates it: the target starts it with -incoming and the same
            device (the same mdev UUID must exist there), this host's QEMU migrates it over TCP with
            return-path on, and the command waits for completed (the source stays postmigrate, its
            queues reset) or prints the failure (the target's apmatrix dmesg says why).
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

    @Flag(help: "Migrate with the vfio-ap device attached, over QEMU's migration stream (--preview vfio-ap-migration).")
    var live = false

    func run() async throws {
        try await reporting { () async throws(APError) in
            try await guest.server.client.migrate(guest.name, MigrateRequest(to: to, qmp: qmp, token: toToken, live: live ? true : nil))
        }
        print("guest \(guest.name) migrated to \(to)")
    }
}
