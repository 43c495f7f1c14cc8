import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestStop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop a guest: its vfio-ap device is released and every queue it had is reset.")

    @OptionGroup var guest: GuestTarget

    func run() async throws {
        try await reporting { () async throws(APError) in try await guest.server.client.stopGuest(guest.name) }
    }
}
