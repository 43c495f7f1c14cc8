import ArgumentParser

@main
struct APMatrix: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apmatrix",
        abstract: "An emulated s390 AP crypto pass-through host (AP bus, vfio_ap, KVM guests) served as sysfs over FUSE.",
        discussion: """
            Start a host with `apmatrix serve --mount DIR`, then use DIR as you would /sys on an
            IBM Z host: echo into bus/ap/apmask, create mdevs under devices/vfio_ap/matrix, run mdevctl.
            """,
        subcommands: [Serve.self])
}
