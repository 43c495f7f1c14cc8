import APMatrixModel
import APMatrixRuntime
import APMatrixServer
import ArgumentParser
import Foundation
import Glibc

struct Exec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command as if on the emulated host: its tree is /sys, its own /etc/mdevctl.d, /etc/udev/rules.d and /run/lock.",
        discussion: """
            COMMAND runs in a private mount namespace (root only), where /sys is the daemon's tree (with
            --guest, that guest's tree, mounted for the duration if it is not) and /etc/mdevctl.d,
            /etc/udev/rules.d and /run/lock are directories of that host that outlive the command, so
            mdevctl definitions stay from one exec to the next. Nothing changes outside the namespace:
            the machine's /sys and /etc are never written. SYSFS_ROOT, MDEVCTL_ENV_ROOT and
            APMATRIX_SYSFS are unset (every tool's default is then the emulated host) and
            APMATRIX_SERVER names the daemon. The exit status is COMMAND's (125: the namespace could
            not be made, 126/127: COMMAND could not be run); signals sent to exec reach COMMAND.
            Examples:
              apmatrix exec -- mdevctl types
              apmatrix exec -- lszcrypt -V
              apmatrix exec --guest guest1 -- lszcrypt
              apmatrix exec -- bash                  (a shell on the emulated host)
              apmatrix exec --print-paths            (what is bound where)
            """)

    @OptionGroup var server: ServerOptions

    @Option(help: ArgumentHelp("Run in this guest's /sys instead of the host's.", valueName: "NAME"))
    var guest: String?

    @Flag(help: "Print what would be bound over /sys, /etc/mdevctl.d, /etc/udev/rules.d and /run/lock, and run nothing.")
    var printPaths = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after --.", valueName: "COMMAND"))
    var command: [String] = []

    func validate() throws {
        if printPaths && !command.isEmpty { throw ValidationError("--print-paths runs nothing: drop the command, or drop --print-paths") }
        if !printPaths && command.isEmpty { throw ValidationError("give the command after --, such as: apmatrix exec -- mdevctl list") }
    }

    func run() async throws {
        let client = server.client
        let host = try await reporting { () async throws(APError) in try await client.host() }
        guard let hostTree = host.sysfsMount, let hostRoot = host.privateRoot.map(PrivateRoot.init(path:)) else {
            throw Failure("the daemon at \(client.server) does not say where its tree is mounted (an apmatrix serve older than exec?)")
        }
        let root = guest.map { hostRoot.guest($0) } ?? hostRoot
        var tree = hostTree
        /// The guest whose tree `exec` mounts for the duration.
        var mountFor: String?
        if let guest {
            let g = try await reporting { () async throws(APError) in try await client.guest(guest) }
            guard g.bus != nil else { throw Failure("guest \(guest) runs with ap=off: it has no AP bus to show as /sys") }
            if let mounted = g.sysfsMount { tree = mounted } else { mountFor = guest }
        }
        if printPaths {
            print(Self.describe(tree: mountFor == nil ? tree : "(\(guest!)'s tree, mounted for the duration of COMMAND)", root))
            return
        }
        guard geteuid() == 0 else {
            throw Failure("EPERM: apmatrix exec needs root to make a private mount namespace (try sudo); nothing was run, the machine's /sys is untouched")
        }
        do { try root.prepare() } catch { throw Failure("cannot create the host's directories under \(root.path): \(error)") }

        // A guest tree that is not mounted is mounted for the duration.
        var temporary: String?
        if let name = mountFor {
            let base = try Self.temporaryDirectory()
            temporary = base
            do {
                let g = try await reporting { () async throws(APError) in
                    try await client.mountGuestTree(name, dir: base + "/sys")
                }
                tree = g.sysfsMount ?? base + "/sys"
            } catch {
                rmdir(base)
                throw error
            }
        }
        let plan = NamespacePlan(binds: Self.binds(tree: tree, root), unset: NamespacePlan.relocations,
                                 set: ["APMATRIX_SERVER": client.server], command: command)
        let status: Int32
        do {
            status = try ChildProcess.run(["/proc/self/exe", "exec-namespace", String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)])
        } catch {
            await Self.unmount(mountFor, temporary, client)
            throw Failure("\(error)")
        }
        await Self.unmount(mountFor, temporary, client)
        throw ExitCode(ChildProcess.endLike(status))
    }

    /// `/sys` first, then the host's own directories over those the machine has
    /// (a directory the machine lacks is not created outside the namespace).
    static func binds(tree: String, _ root: PrivateRoot) -> [NamespacePlan.Bind] {
        [NamespacePlan.Bind(source: tree, target: "/sys")]
            + root.bindings.filter { isDirectory($0.target) }.map { NamespacePlan.Bind(source: $0.source, target: $0.target) }
    }

    static func describe(tree: String, _ root: PrivateRoot) -> String {
        var lines = ["/sys               \(tree)"]
        for b in root.bindings {
            let padded = b.target + String(repeating: " ", count: max(1, 19 - b.target.count))
            lines.append(padded + b.source + (isDirectory(b.target) ? "" : "   (not bound: this machine has no \(b.target))"))
        }
        return lines.joined(separator: "\n")
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func temporaryDirectory() throws -> String {
        var template = Array("/tmp/apmatrix-exec.XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw Failure("cannot create a directory for the guest's tree: \(errnoText(errno))") }
        return String(cString: p)
    }

    /// Unmounts a guest tree `exec` mounted; a guest that stopped meanwhile took its tree along.
    static func unmount(_ guest: String?, _ temporary: String?, _ client: APIClient) async {
        guard let guest, let temporary else { return }
        _ = try? await client.unmountGuestTree(guest)
        rmdir(temporary + "/sys")
        rmdir(temporary)
    }
}
