import APMatrixModel
import APMatrixServer
import ArgumentParser

struct HostDomainAdd<Kind: DomainKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "add", abstract: "Add a \(Kind.noun) to the LPAR. EEXIST if it has it.")
    }

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APQI: decimal or 0x hex.", transform: APQI.argument) var id: APQI

    func run() async throws {
        let _: Empty = try await reporting { () async throws(APError) in
            try await server.client.post("\(ControlAPI.prefix)/host/\(Kind.path)", DomainRequest(id: id))
        }
    }
}
