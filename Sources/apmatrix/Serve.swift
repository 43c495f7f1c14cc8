import APMatrixEmulator
import APMatrixFUSE
import APMatrixModel
import ArgumentParser
import Glibc
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one emulated host in the foreground, its sysfs tree mounted at DIR.",
        discussion: """
            Prints `ready` on stdout once the mount answers, logs what the host does to stderr,
            and unmounts and exits 0 on SIGINT or SIGTERM. A dead mount left at DIR by a crashed
            daemon is recovered. Without --host the embedded default LPAR is used: adapters
            0x00-0x07 (CEX8C/8P/8A/7C), usage and control domains 0-84, masks all ones.
            """)

    @Option(help: ArgumentHelp("Where to mount the tree (it stands for /sys); created if missing.", valueName: "DIR"))
    var mount: String

    @Option(help: ArgumentHelp("A host file (JSON, SPEC §1); default: the embedded LPAR.", valueName: "FILE"))
    var host: String?

    @Option(help: ArgumentHelp("Kernel behaviour to emulate: seed (the v10 design).", valueName: "seed"))
    var profile: String = Profile.seed.rawValue

    func validate() throws {
        guard Profile(rawValue: profile) != nil else {
            throw ValidationError("--profile \(profile): this version emulates the seed profile only (upstream is planned)")
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
        do { model = try APHost(description, profile: Profile(rawValue: profile)!) } catch {
            throw Failure("host file \(host ?? "(embedded)"): \(error)")
        }

        // Signals are taken by sigwait on this thread; block them before any thread starts.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "apmatrix")
        logger.logLevel = .info
        let emulator = Emulator(host: model, logger: logger)

        let dir: String
        let fuse: FuseMount
        do {
            dir = try MountPoint.prepare(mount)
            fuse = try FuseMount(emulator: emulator, mountpoint: dir)
        } catch {
            throw Failure("\(error)")
        }
        fuse.start()
        guard MountPoint.waitUntilServed(dir) else {
            fuse.stop()
            throw Failure("the mount at \(dir) did not answer")
        }
        writeLine(STDOUT_FILENO, "ready")
        logger.info("serving \(dir) (profile \(profile)); try from another terminal: cat \(dir)/bus/ap/apmask; ls \(dir)/devices/ap")

        var received: Int32 = 0
        sigwait(&signals, &received)
        logger.info("signal \(received): unmounting \(dir)")
        fuse.stop()
    }
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
