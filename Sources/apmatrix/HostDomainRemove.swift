import APMatrixModel
import APMatrixServer
import ArgumentParser

struct HostDomainRemove<Kind: DomainKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "remove", abstract: "Remove a \(Kind.noun) from the LPAR. ENOENT if it lacks it.")
    }

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APQI: decimal or 0x hex.", transform: APQI.argument) var id: APQI

    func run() async throws {
        _ = try await reporting { () async throws(APError) in
            try await server.client.send(.DELETE, "\(ControlAPI.prefix)/host/\(Kind.path)/\(id.value)")
        }
    }
}
