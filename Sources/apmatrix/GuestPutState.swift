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

    @OptionGroup var server: ServerOptions

    @Argument(help: "The guest's name.")
    var name: String

    @Argument(help: ArgumentHelp("A queue in the guest's view, such as 05.0004.", valueName: "APQN"))
    var apqn: String

    @Argument(help: ArgumentHelp("1-256 printable ASCII characters.", valueName: "STATE"))
    var state: String

    func validate() throws {
        guard APQN(sysfsName: apqn) != nil else { throw ValidationError("APQN '\(apqn)': write it as sysfs names it, such as 05.0004") }
    }

    func run() async throws {
        _ = try await reporting { () async throws(APError) in
            try await server.client.putGuestState(name, GuestStateRequest(apqn: apqn, state: state))
        }
    }
}
