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
            With --udev, libudev (udevadm, libvirt, pyudev) sees the emulated host's devices too:
            COMMAND also gets a private network namespace, in which the host's uevents arrive as
            udevd's monitor messages, and a private /run; statfs under /sys answers sysfs's magic
            (a preload library). The daemon's TCP address is not reachable from there.
            Examples:
              apmatrix exec -- mdevctl types
              apmatrix exec -- lszcrypt -V
              apmatrix exec --guest guest1 -- lszcrypt
              apmatrix exec -- bash                  (a shell on the emulated host)
              apmatrix exec --print-paths            (what is bound where)
              apmatrix exec --udev -- bash           (libudev sees the host: libvirtd and virsh in it, see the README)
            """)

    @OptionGroup var server: ServerOptions

    @Option(help: ArgumentHelp("Run in this guest's /sys instead of the host's.", valueName: "NAME"))
    var guest: String?

    @Flag(help: "Print what would be bound over /sys, /etc/mdevctl.d, /etc/udev/rules.d and /run/lock, and run nothing.")
    var printPaths = false

    @Flag(help: "Let libudev see the host: uevents as udevd's messages in a private network namespace, a private /run, statfs with sysfs's magic under /sys.")
    var udev = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after --.", valueName: "COMMAND"))
    var command: [String] = []

    func validate() throws {
        if printPaths && !command.isEmpty { throw ValidationError("--print-paths runs nothing: drop the command, or drop --print-paths") }
        if !printPaths && command.isEmpty { throw ValidationError("give the command after --, such as: apmatrix exec -- mdevctl list") }
        if udev && guest != nil { throw ValidationError("--udev shows the host's devices and uevents to libudev; a guest's tree has none: drop --guest or --udev") }
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
            print(Self.describe(tree: mountFor == nil ? tree : "(\(guest!)'s tree, mounted for the duration of COMMAND)", root, udev: udev))
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
        var plan = NamespacePlan(binds: Self.binds(tree: tree, root), unset: NamespacePlan.relocations,
                                 set: ["APMATRIX_SERVER": client.server], command: command)
        var forwarder: Task<Void, Never>?
        if udev {
            let (udevPlan, udevForwarder) = try await Self.udevForwarding(client)
            plan.udev = udevPlan
            forwarder = Task { await udevForwarder.run() }
        }
        let argv = ["/proc/self/exe", "exec-namespace", String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)]
        // Waited for on a thread of its own: the forwarder needs the cooperative pool meanwhile.
        let result = await onThread { Result { () throws(ChildProcess.SpawnError) in try ChildProcess.run(argv) } }
        // The helper's end of the channel: closed here, so that the forwarder hears of a helper that never sent the socket.
        if let channel = plan.udev?.channel { close(channel) }
        forwarder?.cancel()
        await Self.unmount(mountFor, temporary, client)
        switch result {
        case .success(let status): throw ExitCode(ChildProcess.endLike(status))
        case .failure(let error): throw Failure("\(error)")
        }
    }

    /// For `--udev`: the preload library beside this executable, a channel
    /// for the netlink socket the helper makes in the new network
    /// namespace, and the forwarder that sends on it every uevent logged
    /// from now on.
    static func udevForwarding(_ client: APIClient) async throws -> (NamespacePlan.Udev, UdevForwarder) {
        let preload = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent(preloadLibrary).path
        guard access(preload, R_OK) == 0 else {
            throw Failure("--udev needs \(preloadLibrary) beside apmatrix (\(preload)): build it with `swift build --product apmatrix-sysfs-magic` (with -c release for a release build)")
        }
        let last = try await reporting { () async throws(APError) in try await client.events().last?.sequence ?? 0 }
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &pair) == 0 else {
            throw Failure("cannot make a socket pair for the uevent socket: \(errnoText(errno))")
        }
        _ = fcntl(pair[0], F_SETFD, FD_CLOEXEC)
        return (NamespacePlan.Udev(preload: preload, channel: pair[1]), UdevForwarder(client: client, after: last, channel: pair[0]))
    }

    /// The preload library's file name (the `apmatrix-sysfs-magic` product).
    static let preloadLibrary = "libapmatrix-sysfs-magic.so"

    /// `/sys` first, then the host's own directories over those the machine has
    /// (a directory the machine lacks is not created outside the namespace).
    static func binds(tree: String, _ root: PrivateRoot) -> [NamespacePlan.Bind] {
        [NamespacePlan.Bind(source: tree, target: "/sys")]
            + root.bindings.filter { isDirectory($0.target) }.map { NamespacePlan.Bind(source: $0.source, target: $0.target) }
    }

    static func describe(tree: String, _ root: PrivateRoot, udev: Bool = false) -> String {
        var lines = ["/sys               \(tree)"]
        if udev { lines.append("/run               a private tmpfs with udev/control (--udev), its own network namespace") }
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
