import APMatrixModel
import APMatrixServer
import ArgumentParser

struct GuestUnmount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Unmount the guest's own /sys (mounted by guest mount or guest start --sysfs-mount).")

    @OptionGroup var guest: GuestTarget

    func run() async throws {
        _ = try await reporting { () async throws(APError) in try await guest.server.client.unmountGuestTree(guest.name) }
    }
}
