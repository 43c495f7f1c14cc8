import ArgumentParser

@main
struct APMatrix: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apmatrix",
        abstract: "An emulated s390 AP crypto pass-through host (AP bus, vfio_ap, KVM guests) served as sysfs over FUSE.",
        discussion: """
            Start a host with `apmatrix serve --mount DIR`, then use DIR as you would /sys on an
            IBM Z host: echo into bus/ap/apmask, create mdevs under devices/vfio_ap/matrix, run mdevctl.
            Guests, firmware changes and the event log go through the daemon's API (--server).
            """,
        subcommands: [Serve.self, GuestCommand.self, HostCommand.self, Dmesg.self, CheckState.self,
                      Ls.self, MatrixCommand.self, Explain.self, Plan.self, MdevctlCalloutCommand.self,
                      Exec.self, Capture.self, ExecNamespace.self])
}
