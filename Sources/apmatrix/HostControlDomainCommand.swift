import ArgumentParser

struct HostControlDomainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control-domain",
        abstract: "Add a control domain to the LPAR or remove one.",
        subcommands: [HostDomainAdd<ControlDomains>.self, HostDomainRemove<ControlDomains>.self])
}

enum ControlDomains: DomainKind {
    static var path: String { "control-domains" }
    static var noun: String { "control domain" }
}
