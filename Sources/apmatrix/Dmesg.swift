import APMatrixModel
import APMatrixServer
import ArgumentParser
import Glibc

struct Dmesg: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the host's event log like dmesg: seconds since the host started, then the line.",
        discussion: "Lines the kernel itself would log (such as 'Userspace may not re-assign queue …') appear word for word.")

    @OptionGroup var server: ServerOptions

    @Flag(name: [.short, .customLong("follow")], help: "Wait for new events and print them as they come (like dmesg -w).")
    var follow = false

    @Flag(help: "Only the lines the real kernel would print.")
    var kernel = false

    func run() async throws {
        var last = 0
        repeat {
            let events = try await reporting { () async throws(APError) in try await server.client.events(after: last) }
            for e in events where !kernel || e.kind == "kernel" { print(e.dmesg) }
            if let l = events.last { last = l.sequence }
            if follow {
                fflush(nil)
                try await Task.sleep(for: .milliseconds(250))
            }
        } while follow
    }
}
