import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show what the guest sees (as lszcrypt inside it would), its CRYCB, and its CRYCB changes.")

    @OptionGroup var server: ServerOptions

    @Argument(help: "The guest's name.")
    var name: String

    @Flag(help: "Print JSON (the API's GuestDTO).")
    var json = false

    func run() async throws {
        let client = server.client
        let g: GuestDTO = try await reporting { () async throws(APError) in
            try await client.get("\(ControlAPI.prefix)/guests/\(name.urlPathEscaped)")
        }
        if json {
            print(try JSONText.encode(g))
            return
        }
        let events: [EventDTO] = try await reporting { () async throws(APError) in
            try await client.get("\(ControlAPI.prefix)/events")
        }
        print(GuestReport.full(g, changes: events.filter { $0.kind == "crycb" && $0.guest == name }))
    }
}
