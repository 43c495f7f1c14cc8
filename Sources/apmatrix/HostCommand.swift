import APMatrixModel
import APMatrixServer
import ArgumentParser

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Firmware changes of the LPAR: add or remove adapters and usage domains.",
        discussion: """
            These are what a Support Element / HMC reconfiguration does. vfio_ap reacts as the
            seed describes: assigned adapters and domains that arrive are hot plugged into running
            guests (over-provisioning), those that leave are unplugged and their queues reset.
            """,
        subcommands: [Adapter.self, Domain.self, ControlDomain.self])

    struct Adapter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an adapter to the LPAR or remove one.", subcommands: [AddAdapter.self, RemoveAdapter.self])
    }

    struct Domain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a usage domain to the LPAR or remove one.",
            subcommands: [AddDomain<UsageDomains>.self, RemoveDomain<UsageDomains>.self])
    }

    struct ControlDomain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "control-domain",
            abstract: "Add a control domain to the LPAR or remove one.",
            subcommands: [AddDomain<ControlDomains>.self, RemoveDomain<ControlDomains>.self])
    }
}

struct AddAdapter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add an adapter (it arrives configured). EEXIST if the LPAR has it.")

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APID: decimal or 0x hex.") var id: String

    @Option(help: ArgumentHelp("The type: CEX4A … CEX8P (CEX3A/CEX3C get no devices).", valueName: "TYPE"))
    var type: String

    @Option(help: ArgumentHelp("Restrict its queues to these usage domains of the LPAR: 0-15,0x47.", valueName: "LIST"))
    var domains: String?

    func validate() throws {
        _ = try parseID(id, "adapter")
        guard AdapterType(type) != nil else {
            throw ValidationError("--type \(type): one of \(AdapterType.supportedNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        let apid = try parseID(id, "adapter")
        try await reporting { () async throws(APError) in
            try await server.client.addAdapter(AdapterRequest(id: apid, type: type, domains: domains))
        }
    }
}

struct RemoveAdapter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove an adapter from the LPAR. ENOENT if it lacks it.")

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APID: decimal or 0x hex.") var id: String

    func validate() throws { _ = try parseID(id, "adapter") }

    func run() async throws {
        let apid = try parseID(id, "adapter")
        try await reporting { () async throws(APError) in try await server.client.removeAdapter(apid) }
    }
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

enum ControlDomains: DomainCommandKind {
    static var kind: DomainKind { .control }
    static var noun: String { "control domain" }
}

struct AddDomain<Kind: DomainCommandKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "add", abstract: "Add a \(Kind.noun) to the LPAR. EEXIST if it has it.")
    }

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APQI: decimal or 0x hex.") var id: String

    func validate() throws { _ = try parseID(id, Kind.noun) }

    func run() async throws {
        let apqi = try parseID(id, Kind.noun)
        try await reporting { () async throws(APError) in try await server.client.addDomain(Kind.kind, apqi) }
    }
}

struct RemoveDomain<Kind: DomainCommandKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "remove", abstract: "Remove a \(Kind.noun) from the LPAR. ENOENT if it lacks it.")
    }

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APQI: decimal or 0x hex.") var id: String

    func validate() throws { _ = try parseID(id, Kind.noun) }

    func run() async throws {
        let apqi = try parseID(id, Kind.noun)
        try await reporting { () async throws(APError) in try await server.client.removeDomain(Kind.kind, apqi) }
    }
}
