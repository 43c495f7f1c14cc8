import APMatrixModel
import APMatrixServer
import ArgumentParser

struct HostAdapterRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove an adapter from the LPAR. ENOENT if it lacks it.")

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APID: decimal or 0x hex.", transform: APID.argument) var id: APID

    func run() async throws {
        try await reporting { () async throws(APError) in try await server.client.removeAdapter(id) }
    }
}
