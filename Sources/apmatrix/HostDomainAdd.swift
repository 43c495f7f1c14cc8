import APMatrixModel
import APMatrixServer
import ArgumentParser

struct HostDomainAdd<Kind: DomainCommandKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "add", abstract: "Add a \(Kind.noun) to the LPAR. EEXIST if it has it.")
    }

    @OptionGroup var target: DomainTarget

    func run() async throws {
        try await reporting { () async throws(APError) in try await target.server.client.addDomain(Kind.kind, target.id) }
    }
}

/// The daemon, and the domain a `host domain|control-domain` subcommand names.
struct DomainTarget: ParsableArguments {
    @OptionGroup var server: ServerOptions
    @Argument(help: "The APQI: decimal or 0x hex.", transform: APQI.argument) var id: APQI
}
