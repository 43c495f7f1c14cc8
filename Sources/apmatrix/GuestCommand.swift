import APMatrixServer
import ArgumentParser

struct GuestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Start, inspect, plug and migrate emulated KVM guests (QEMU-like).",
        subcommands: [GuestStart.self, GuestStop.self, GuestList.self, GuestShow.self,
                      GuestAttachDevice.self, GuestDetachDevice.self, GuestMigrate.self, GuestMount.self, GuestUnmount.self,
                      GuestPutState.self])
}

/// The daemon, and the guest a `guest` subcommand names.
struct GuestTarget: ParsableArguments {
    @OptionGroup var server: ServerOptions
    @Argument(help: "The guest's name.") var name: String
}
