import APMatrixServer
import ArgumentParser

struct HostDomainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domain",
        abstract: "Add a usage domain to the LPAR or remove one.",
        subcommands: [HostDomainAdd<UsageDomains>.self, HostDomainRemove<UsageDomains>.self])
}

/// The two kinds of domain the LPAR has, as command types: usage domains (queues) and control domains.
protocol DomainCommandKind {
    static var kind: DomainKind { get }
    static var noun: String { get }
}

enum UsageDomains: DomainCommandKind {
    static var kind: DomainKind { .usage }
    static var noun: String { "usage domain" }
}
