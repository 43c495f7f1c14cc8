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
        subcommands: [HostAdapterCommand.self, HostDomainCommand.self, HostControlDomainCommand.self])
}
