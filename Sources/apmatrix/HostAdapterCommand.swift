import ArgumentParser

struct HostAdapterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapter",
        abstract: "Add an adapter to the LPAR or remove one.", subcommands: [HostAdapterAdd.self, HostAdapterRemove.self])
}
