import APMatrixModel
import APMatrixServer
import ArgumentParser

struct HostAdapterAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add an adapter (it arrives configured). EEXIST if the LPAR has it.")

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APID: decimal or 0x hex.", transform: APID.argument) var id: APID

    @Option(help: ArgumentHelp("The type: CEX4A … CEX8P (CEX3A/CEX3C get no devices).", valueName: "TYPE"))
    var type: String

    @Option(help: ArgumentHelp("Restrict its queues to these usage domains of the LPAR: 0-15,0x47.", valueName: "LIST"))
    var domains: String?

    func validate() throws {
        guard AdapterType(type) != nil else {
            throw ValidationError("--type \(type): one of \(AdapterType.supportedNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        try await reporting { () async throws(APError) in
            try await server.client.addAdapter(AdapterRequest(id: id.value, type: type, domains: domains))
        }
    }
}
