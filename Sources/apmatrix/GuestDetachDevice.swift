import APMatrixModel
import APMatrixServer
import ArgumentParser

/// `virsh detach-device` for the emulated guests.
struct GuestDetachDevice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detach-device",
        abstract: "Hot unplug the mdev described by libvirt hostdev XML (virsh detach-device).")

    @OptionGroup var guest: GuestTarget
    @Argument(help: "The hostdev XML file.") var xmlFile: String

    func run() async throws {
        let g = try await HostdevCommand.send(guest, xmlFile, detach: true)
        print(GuestReport.summary(g))
    }
}
