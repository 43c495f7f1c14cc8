import APMatrixRuntime
import APMatrixModel
import APMatrixServer
import ArgumentParser

/// `virsh attach-device` for the emulated guests.
struct GuestAttachDevice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach-device",
        abstract: "Hot plug an mdev described by libvirt hostdev XML (virsh attach-device).",
        discussion: """
            The file holds <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-ap'>
            <source><address uuid='UUID'/></source></hostdev>, as in the seed's migration procedure.
            """)

    @OptionGroup var guest: GuestTarget
    @Argument(help: "The hostdev XML file.") var xmlFile: String

    func run() async throws {
        let g = try await HostdevCommand.send(guest, xmlFile, detach: false)
        print(GuestReport.summary(g))
    }
}

/// Both hostdev commands: the XML file posted to the guest's hostdev endpoint.
enum HostdevCommand {
    static func send(_ guest: GuestTarget, _ file: String, detach: Bool) async throws -> GuestDTO {
        let xml: [UInt8]
        switch Files.read(file) {
        case .success(let b): xml = b
        case .failure(let f): throw Failure("\(file): \(f)")
        }
        let client = guest.server.client
        return try await reporting { () async throws(APError) in try await client.hostdev(guest.name, xml: xml, detach: detach) }
    }
}
