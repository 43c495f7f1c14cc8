import APMatrixModel
import APMatrixServer
import ArgumentParser
import Glibc

struct CheckState: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-state",
        abstract: "Check the daemon's host against the security and bookkeeping invariants.",
        discussion: """
            No APQN in two mdevs, none assigned and reserved for the host, every CRYCB within its
            mdev's assignment and bound to vfio_ap, bindings that fit the masks, devices that fit
            the firmware, and no queue holding the state of anyone but its current owner. With a
            state file (serve --state), also SQLite's PRAGMA integrity_check of it.
            Exit status 0 when all hold; 1 with one line per broken invariant otherwise.
            """)

    @OptionGroup var server: ServerOptions

    func run() async throws {
        let c = try await reporting { () async throws(APError) in try await server.client.check() }
        let damage = c.stateIntegrity.map { $0 == ["ok"] ? [] : $0 } ?? []
        guard c.violations.isEmpty, damage.isEmpty else {
            for v in c.violations { writeLine(STDERR_FILENO, v) }
            for d in damage { writeLine(STDERR_FILENO, "state file \(c.stateFile ?? ""): integrity_check: \(d)") }
            throw Failure(c.violations.isEmpty ? "the state file is damaged (PRAGMA integrity_check)"
                                               : "\(c.violations.count) invariant(s) broken")
        }
        print("ok: \(c.mdevs) mdev(s), \(c.guests) guest(s), \(c.queues) queue device(s); every invariant holds"
              + (c.stateFile.map { " (state file \($0): integrity_check ok)" } ?? ""))
    }
}
