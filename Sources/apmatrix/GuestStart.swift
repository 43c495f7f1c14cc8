import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start a guest, optionally with a vfio-ap device and a QMP monitor.",
        discussion: """
            Like qemu-system-s390x -cpu MODEL -device vfio-ap,sysfsdev=PATH,id=ID -qmp unix:SOCKET.
            The guest opens the mdev at start: its CRYCB is filtered from the mdev's assignment.
            Example: apmatrix guest start guest1 --cpu host,apqi=off \\
                       --device vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/$uuid1,id=hostdev0 --qmp /tmp/guest1.qmp
            A Secure Execution guest (booted from an SE image): --secure, or QEMU's spelling
            --object s390-pv-guest,id=pv0 --machine confidential-guest-support=pv0.
            A migration destination, as QEMU's -incoming: --incoming tcp:HOST:PORT (port 0 picks one; guest show
            and QMP query-migrate name it) with the source's --device; it waits in inmigrate for QMP migrate on the source.
            --incoming defer, as libvirt starts destinations: it listens once QMP migrate-incoming names the address.
            """)

    @OptionGroup var server: ServerOptions

    @Argument(help: "A name for the guest.")
    var name: String

    @Option(help: ArgumentHelp("The QEMU CPU model: host (every AP feature the host allows) or NAME, with ap|apqci|apft|apqi|appv|appvi=on|off.",
                               valueName: "MODEL"))
    var cpu = "host"

    @Option(help: ArgumentHelp(
        "A vfio-ap device: vfio-ap,sysfsdev=PATH,id=ID[,enable-migration=on|off|auto][,migration-events=on|off] (the last two with --preview vfio-ap-migration).",
        valueName: "DEVICE"))
    var device: String?

    @Option(help: ArgumentHelp("Serve the guest's QMP monitor on this unix socket.", valueName: "SOCKET"))
    var qmp: String?

    @Option(help: ArgumentHelp("Mount the guest's own /sys (its AP bus as it sees it) at DIR; unmounted when the guest stops.",
                               valueName: "DIR"))
    var sysfsMount: String?

    @Flag(help: "A Secure Execution guest: its queues are bound (and EP11 ones associated) inside it.")
    var secure = false

    @Option(help: ArgumentHelp("A QEMU object: s390-pv-guest,id=ID (with --machine, the same as --secure).", valueName: "OBJECT"))
    var object: String?

    @Option(help: ArgumentHelp("QEMU machine properties: [s390-ccw-virtio,]confidential-guest-support=ID.", valueName: "MACHINE"))
    var machine: String?

    @Option(help: ArgumentHelp("Wait for an incoming migration on tcp:HOST:PORT, or (defer) on the address QMP migrate-incoming gives (QEMU's -incoming).", valueName: "URI"))
    var incoming: String?

    func validate() throws {
        if let device, !device.hasPrefix("vfio-ap,") {
            throw ValidationError("--device \(device): only vfio-ap devices exist here: vfio-ap,sysfsdev=PATH,id=ID")
        }
        do throws(APError) {
            _ = try ConfidentialGuestSupport.isSecure(secure: secure, object: object, machine: machine)
            _ = try incoming.map { u throws(APError) in try IncomingOption(parsing: u) }
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        let g = try await reporting { () async throws(APError) in
            try await server.client.startGuest(StartGuestRequest(name: name, cpu: cpu, device: device, qmp: qmp,
                                                                 sysfsMount: sysfsMount.map(absolutePath),
                                                                 secure: secure ? true : nil, object: object, machine: machine,
                                                                 incoming: incoming))
        }
        print(GuestReport.summary(g))
    }
}
