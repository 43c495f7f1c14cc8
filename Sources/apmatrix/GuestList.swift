import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the running guests with their CPU model, vfio-ap device and CRYCB.")

    @OptionGroup var server: ServerOptions

    @Flag(help: "Print JSON (the API's GuestDTO list).")
    var json = false

    func run() async throws {
        let guests = try await reporting { () async throws(APError) in try await server.client.guests() }
        if json {
            print(try JSONText.encode(guests))
            return
        }
        for g in guests { print(GuestReport.summary(g)) }
    }
}
