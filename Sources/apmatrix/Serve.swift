import APMatrixFUSE
import APMatrixMigration
import APMatrixModel
import APMatrixQMP
import APMatrixRuntime
import APMatrixServer
import APMatrixSysfs
import ArgumentParser
import Dispatch
import Glibc
import Logging
import Synchronization

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one emulated host in the foreground, its sysfs tree mounted at DIR.",
        discussion: """
            Prints `ready ADDRESS` on stdout once the mount answers and the control API listens,
            logs what the host does to stderr, and unmounts and exits 0 on SIGINT or SIGTERM.
            A dead mount left at DIR by a crashed daemon is recovered. Without --host the embedded
            default LPAR is used: adapters 0x00-0x07 (CEX8C/8P/8A/7C), usage and control domains
            0-84, masks all ones. The API listens on loopback by default. Anyone may read through it;
            a change, as a sysfs write, is for root and the user running serve: over TCP it needs the
            daemon's token (a file of mode 0600 the CLI finds by itself, see the README; the page's
            URL with the token is logged at start), on unix:PATH the kernel names the peer.
            """)

    @Option(help: ArgumentHelp("Where to mount the tree (it stands for /sys); created if missing.", valueName: "DIR"))
    var mount: String

    @Option(help: ArgumentHelp("A host file (JSON, SPEC §1); default: the embedded LPAR.", valueName: "FILE"))
    var host: String?

    @Option(help: ArgumentHelp(
        "Keep the whole host in FILE, an SQLite database: resumed at start, every change saved durably before it is acknowledged. --host applies only when FILE is new.",
        valueName: "FILE"))
    var state: String?

    @Flag(help: "With --state: ignore what FILE holds and start fresh (FILE is replaced at start).")
    var reset = false

    @Option(help: ArgumentHelp(
        "With --state: make FILE from a version-1 JSON state file (apmatrix before SQLite) and resume from it; FILE must not exist yet (or add --reset).",
        valueName: "JSON"))
    var importState: String?

    @Option(help: ArgumentHelp("The control API and web UI: HOST:PORT (port 0 picks a free one) or unix:PATH.",
                               valueName: "ADDR"))
    var listen = "127.0.0.1:7807"

    @Option(help: ArgumentHelp(
        "Kernel behaviour: seed (the v10 dynamic-configuration design) or upstream (Linux 6.16+ as merged).",
        valueName: "seed|upstream"))
    var profile: Profile = .seed

    @Option(help: ArgumentHelp(
        "Run a posted, unmerged series on top of the upstream profile: vfio-ap-migration (live migration with the vfio-ap device, v4 of 2026-07-07).",
        valueName: "NAME"))
    var preview: [Preview] = []

    func validate() throws {
        if let p = preview.first(where: { $0.profile != profile }) {
            throw ValidationError("--preview \(p.rawValue) is a preview of the \(p.profile.rawValue) profile: add --profile \(p.profile.rawValue) (the \(profile.rawValue) profile's kernel has no such series)")
        }
        if reset && state == nil { throw ValidationError("--reset needs --state FILE: it replaces what FILE holds") }
        if importState != nil && state == nil {
            throw ValidationError("--import-state needs --state FILE: the database to make from the JSON state file")
        }
    }

    func run() throws {
        let description: HostDescription
        do {
            description = try host.map { path throws(HostDescription.Invalid) in try HostFile.load(path: path) } ?? .embeddedDefault
        } catch {
            throw Failure("host file \(host ?? ""): \(error)")
        }
        let model: APHost
        do { model = try APHost(description, profile: profile, previews: Set(preview)) } catch {
            throw Failure("host file \(host ?? "(embedded)"): \(error)")
        }

        // Threads exist already (the async main's pool): route the signals to
        // a dispatch source instead of whichever thread the kernel picks.
        let stopRequested = DispatchSemaphore(value: 0)
        let received = Mutex<Int32>(0)
        let sources = [SIGINT, SIGTERM, SIGHUP].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                received.withLock { $0 = sig }
                stopRequested.signal()
            }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "apmatrix")
        logger.logLevel = .info
        var store: StateStore?, saved: StateDocument?
        if let state {
            do {
                let imported = try importState.map { path throws(StateDocument.Refused) in
                    try StateDocument.load(version1: path, profile: model.profile)
                }
                (store, saved) = try StateStore.open(path: state, profile: model.profile, fresh: model, reset: reset,
                                                     importing: imported)
            } catch {
                throw Failure(error.description)
            }
            if let saved, saved.host.previews != model.previews {
                store?.close()
                func list(_ p: Set<Preview>) -> String { p.isEmpty ? "no --preview" : p.map { "--preview \($0.rawValue)" }.sorted().joined(separator: " ") }
                throw Failure("state file \(state) holds a host booted with \(list(saved.host.previews)); start it with the same (this start has \(list(model.previews)))")
            }
            logger.info("state file \(state): \(saved == nil ? "new host" : importState.map { "imported from \($0)" } ?? "host resumed")")
        }
        defer { store?.close() }
        let metrics = ServerMetrics()
        let runtime = Runtime(host: model, logger: logger, store: store, resuming: saved,
                              instrumentation: metrics.instrumentation, edges: ServeEdges())

        // The end of the FUSE session without a stop request means someone
        // unmounted the tree: a daemon without its tree is only half alive.
        let sessionEnded = Mutex<Int32?>(nil)
        let dir: String
        let fuse: FuseMount
        do {
            dir = try MountPoint.prepare(mount)
            fuse = try FuseMount(SysfsEndpoint(runtime), mountpoint: dir)
        } catch {
            throw Failure("\(error)")
        }
        fuse.start { status in
            sessionEnded.withLock { $0 = status }
            stopRequested.signal()
        }
        runtime.start()
        for failure in runtime.reopenMonitors() { logger.warning("QMP monitor not reopened: \(failure)") }
        for failure in runtime.resumeMigrations() { logger.warning("not resumed: \(failure)") }
        var apiLogger = logger
        apiLogger.logLevel = .warning
        let server: ControlServer
        // The host's own /etc/mdevctl.d, /etc/udev/rules.d and /run/lock (for `apmatrix exec`).
        let privateRoot = state.map { PrivateRoot.beside(stateFile: absolutePath($0)) } ?? PrivateRoot.forMount(dir)
        let service = APIService(runtime: runtime, metrics: metrics, sysfsMount: dir, privateRoot: privateRoot)
        do { server = try ControlServer(service: service, listen: listen, logger: apiLogger) } catch {
            runtime.shutdown()
            fuse.stop()
            throw Failure(error.description)
        }
        let failure = Mutex<String?>(nil)
        let serverDone = DispatchSemaphore(value: 0)
        Task.detached {
            do { try await server.run() } catch { failure.withLock { $0 = "\(error)" } }
            serverDone.signal()
        }
        let address = blockingAwait { () async -> String? in
            for await a in server.address { return a }
            return nil
        }
        guard let address, MountPoint.waitUntilServed(dir) else {
            blockingAwait { await server.shutdown() }
            runtime.shutdown()
            fuse.stop()
            let why = server.startFailure?.description ?? failure.withLock { $0 } ?? "the mount at \(dir) did not answer"
            throw Failure("cannot serve: \(why) (--listen \(listen))")
        }
        if let page = server.pageURL { logger.info("the web page, with the token that lets it change the host: \(page)") }
        writeLine(STDOUT_FILENO, "ready \(address)")
        logger.info("""
            serving \(dir) (profile \(profile.rawValue)\(preview.map { ", preview \($0.rawValue)" }.joined())), API \(address). Try from another terminal:
              cat \(dir)/bus/ap/apmask; ls \(dir)/devices/ap
              echo -5,-6 > \(dir)/bus/ap/apmask
              echo $(uuidgen) > \(dir)/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create
              apmatrix dmesg --server \(address)
            """)

        stopRequested.wait()
        let ended = sessionEnded.withLock { $0 }
        if let ended {
            logger.error("the tree at \(dir) was unmounted from outside (FUSE session ended, status \(ended)); shutting down")
        } else {
            logger.info("signal \(received.withLock { $0 }): shutting down, unmounting \(dir)")
        }
        blockingAwait { await server.shutdown() }
        serverDone.wait()
        runtime.shutdown()
        fuse.stop()
        if ended != nil { throw Failure("the tree at \(dir) was unmounted from outside; exiting") }
    }
}

/// What a guest of `serve` can own: a QMP monitor and a mounted tree of its own `/sys`.
struct ServeEdges: GuestEdges {
    func openMonitor(_ runtime: Runtime, guest: String, path: String) throws(APError) -> any GuestAttachment {
        try QMPMonitor.open(runtime, guest: guest, path: path)
    }

    func mountTree(_ runtime: Runtime, guest: String, directory: String) throws(APError) -> any GuestAttachment {
        do {
            return try FuseMount.serve(runtime, view: GuestSysfsTree(guest: guest), at: directory, probe: "bus")
        } catch {
            throw APError(.invalidArgument, "sysfs mount \(directory): \(error)")
        }
    }

    func listenIncoming(_ runtime: Runtime, guest: String, on uri: MigrationURI) throws(APError) -> any GuestAttachment {
        try MigrationChannel.listen(runtime, guest: guest, on: uri)
    }

    func startOutgoing(_ runtime: Runtime, guest: String, to uri: MigrationURI) {
        MigrationChannel.migrate(runtime, guest: guest, to: uri)
    }
}

/// Runs async work to completion from synchronous code (serve's main thread
/// stays synchronous: it owns the mount's lifetime).
func blockingAwait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<T?>(nil)
    Task.detached {
        let value = await body()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}

/// A failure that ends the command with one clear line on stderr and exit status 1.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes one line straight to a file descriptor (stdout is block-buffered under a pipe).
func writeLine(_ fd: Int32, _ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

extension Profile: ExpressibleByArgument {}
extension Preview: ExpressibleByArgument {}
