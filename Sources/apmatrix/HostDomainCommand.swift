import ArgumentParser

struct HostDomainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domain",
        abstract: "Add a usage domain to the LPAR or remove one.",
        subcommands: [HostDomainAdd<UsageDomains>.self, HostDomainRemove<UsageDomains>.self])
}

/// The two kinds of domain the LPAR has: usage domains (queues) and control domains.
protocol DomainKind {
    /// The API path below /host.
    static var path: String { get }
    static var noun: String { get }
}

enum UsageDomains: DomainKind {
    static var path: String { "domains" }
    static var noun: String { "usage domain" }
}
