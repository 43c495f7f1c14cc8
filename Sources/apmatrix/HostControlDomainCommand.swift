import APMatrixServer
import ArgumentParser

struct HostControlDomainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control-domain",
        abstract: "Add a control domain to the LPAR or remove one.",
        subcommands: [HostDomainAdd<ControlDomains>.self, HostDomainRemove<ControlDomains>.self])
}

enum ControlDomains: DomainCommandKind {
    static var kind: DomainKind { .control }
    static var noun: String { "control domain" }
}
