import APMatrixModel
import APMatrixServer
import ArgumentParser

struct HostDomainRemove<Kind: DomainCommandKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "remove", abstract: "Remove a \(Kind.noun) from the LPAR. ENOENT if it lacks it.")
    }

    @OptionGroup var target: DomainTarget

    func run() async throws {
        try await reporting { () async throws(APError) in try await target.server.client.removeDomain(Kind.kind, target.id) }
    }
}
