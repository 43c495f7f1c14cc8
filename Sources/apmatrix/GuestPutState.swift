import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestPutState: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put-state",
        abstract: "Act as the guest: put state (a request, a key) into one of the queues it sees.",
        discussion: """
            The state stays in the queue while the guest has it; every path that takes the queue
            away (unassign, unplug, stop, remove, unbind, mask change, firmware removal) resets
            the queue and drops it. `guest show` lists what each of its queues holds.
            """)

    @OptionGroup var guest: GuestTarget

    @Argument(help: ArgumentHelp("A queue in the guest's view, such as 05.0004.", valueName: "APQN"), transform: APQN.argument)
    var apqn: APQN

    @Argument(help: ArgumentHelp("1-256 printable ASCII characters.", valueName: "STATE"))
    var state: String

    func run() async throws {
        _ = try await reporting { () async throws(APError) in
            try await guest.server.client.putHeldState(guest.name, HeldStateRequest(apqn: apqn.description, state: state))
        }
    }
}
