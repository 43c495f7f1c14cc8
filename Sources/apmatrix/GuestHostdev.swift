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

    @OptionGroup var server: ServerOptions
    @Argument(help: "The guest's name.") var name: String
    @Argument(help: "The hostdev XML file.") var xmlFile: String

    func run() async throws {
        let g = try await HostdevCommand.send(server, name, xmlFile, detach: false)
        print(GuestReport.summary(g))
    }
}

/// `virsh detach-device` for the emulated guests.
struct GuestDetachDevice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detach-device",
        abstract: "Hot unplug the mdev described by libvirt hostdev XML (virsh detach-device).")

    @OptionGroup var server: ServerOptions
    @Argument(help: "The guest's name.") var name: String
    @Argument(help: "The hostdev XML file.") var xmlFile: String

    func run() async throws {
        let g = try await HostdevCommand.send(server, name, xmlFile, detach: true)
        print(GuestReport.summary(g))
    }
}

enum HostdevCommand {
    static func send(_ server: ServerOptions, _ name: String, _ file: String, detach: Bool) async throws -> GuestDTO {
        let xml: [UInt8]
        switch Files.read(file) {
        case .success(let b): xml = b
        case .failure(let f): throw Failure("\(file): \(f)")
        }
        return try await reporting { () async throws(APError) in try await server.client.hostdev(name, xml: xml, detach: detach) }
    }
}
