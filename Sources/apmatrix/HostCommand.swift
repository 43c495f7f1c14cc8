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
        subcommands: [Adapter.self, Domain.self])

    struct Adapter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an adapter to the LPAR or remove one.", subcommands: [AddAdapter.self, RemoveAdapter.self])
    }

    struct Domain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a usage domain to the LPAR or remove one.", subcommands: [AddDomain.self, RemoveDomain.self])
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
        let _: Empty = try await reporting { () async throws(APError) in
            try await server.client.post("\(ControlAPI.prefix)/host/adapters",
                                         AdapterRequest(id: apid, type: type, domains: domains))
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
        _ = try await reporting { () async throws(APError) in
            try await server.client.send(.DELETE, "\(ControlAPI.prefix)/host/adapters/\(apid)")
        }
    }
}

struct AddDomain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a usage domain to the LPAR. EEXIST if it has it.")

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APQI: decimal or 0x hex.") var id: String

    func validate() throws { _ = try parseID(id, "domain") }

    func run() async throws {
        let apqi = try parseID(id, "domain")
        let _: Empty = try await reporting { () async throws(APError) in
            try await server.client.post("\(ControlAPI.prefix)/host/domains", DomainRequest(id: apqi))
        }
    }
}

struct RemoveDomain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove a usage domain from the LPAR. ENOENT if it lacks it.")

    @OptionGroup var server: ServerOptions
    @Argument(help: "The APQI: decimal or 0x hex.") var id: String

    func validate() throws { _ = try parseID(id, "domain") }

    func run() async throws {
        let apqi = try parseID(id, "domain")
        _ = try await reporting { () async throws(APError) in
            try await server.client.send(.DELETE, "\(ControlAPI.prefix)/host/domains/\(apqi)")
        }
    }
}
