import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show what the guest sees (as lszcrypt inside it would), its CRYCB, host view vs guest view per APQN, and its changes.")

    @OptionGroup var guest: GuestTarget

    @Flag(help: "Print JSON (the API's GuestDTO).")
    var json = false

    func run() async throws {
        let client = guest.server.client
        let g = try await reporting { () async throws(APError) in try await client.guest(guest.name) }
        if json {
            print(try JSONText.encode(g))
            return
        }
        let events = try await reporting { () async throws(APError) in try await client.events() }
        let mdevs = try await reporting { () async throws(APError) in try await client.mdevs() }
        let assigned = mdevs.first { $0.uuid == g.device?.mdev }?.matrix
        print(GuestReport.full(g, assigned: assigned,
                               changes: events.filter { ["crycb", "bus", "se"].contains($0.kind) && $0.guest == guest.name }))
    }
}
