import APMatrixRuntime
import APMatrixSysfs
import CFuse
import Glibc
import Synchronization

/// Why a mount could not be made.
public struct MountError: Error, CustomStringConvertible {
    public let description: String
}

/// A FUSE mount of one of the runtime's sysfs trees (libfuse's low-level
/// API). The loop runs on the calling thread (`run`) or on a dedicated
/// pthread (`start`), never in a Swift Task: the cooperative pool would
/// starve (swift-fuse-notes §1).
///
/// The host's tree lets the kernel cache its entries and their attributes:
/// after every operation that removed entries or changed their kind, the
/// runtime names them (`Runtime.cacheTree`) and the mount makes the kernel
/// forget each one it holds (`fuse_lowlevel_notify_inval_entry`) before the
/// operation returns, so a lookup costs nothing and no client ever sees a
/// stale entry. Attribute contents are never cached: each open renders them.
public final class FuseMount: @unchecked Sendable {
    public let mountpoint: String
    private let session: OpaquePointer
    private let treeRef: Unmanaged<ServedTree>
    private var thread: pthread_t?
    private let stopped = Atomic<Bool>(false)
    private let notifier: Notifier
    private var cache: Subscription?

    /// Mounts `endpoint`'s tree at `mountpoint` (which must exist).
    /// `subtype` names the mount in /proc/mounts (`fuse.apmatrix`) so
    /// cleanups find their own.
    public init(_ endpoint: SysfsEndpoint, mountpoint: String, subtype: String = "apmatrix") throws(MountError) {
        self.mountpoint = mountpoint
        let tree = ServedTree(endpoint, cached: endpoint.isHostTree)
        let ref = Unmanaged.passRetained(tree)
        treeRef = ref
        var options = "fsname=apmatrix,subtype=\(subtype)"
        // As root, let every user read the tree. The mode bits are enforced in
        // `open` (only root writes, as on sysfs), not with default_permissions,
        // which makes the kernel ask for attributes again at every permission
        // check and costs about a third of every sysfs write (BENCHMARKS.md).
        if geteuid() == 0 { options += ",allow_other" }
        let argv = ["apmatrix", "-o", options]
        var cStrings: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var ops = sysfsOperations()
        let se: OpaquePointer? = cStrings.withUnsafeMutableBufferPointer { bp in
            var args = fuse_args(argc: Int32(argv.count), argv: bp.baseAddress, allocated: 0)
            defer { fuse_opt_free_args(&args) }
            return fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, ref.toOpaque())
        }
        guard let se else {
            ref.release()
            throw MountError(description: "fuse_session_new failed (is libfuse3 installed?)")
        }
        guard fuse_session_mount(se, mountpoint) == 0 else {
            fuse_session_destroy(se)
            ref.release()
            throw MountError(description: "cannot mount on \(mountpoint) (is /dev/fuse available, and are you root?)")
        }
        session = se
        let notifier = Notifier(se)
        self.notifier = notifier
        if tree.timeout > 0 {
            cache = endpoint.runtime.cacheTree { names in notifier.forget(tree.inodes.entries(named: names)) }
        }
    }

    /// Runs the multithreaded loop on the calling thread until the mount goes
    /// away or a handled signal arrives.
    @discardableResult
    public func run() -> Int32 {
        let cfg = fuse_loop_cfg_create()
        defer { fuse_loop_cfg_destroy(cfg) }
        fuse_loop_cfg_set_clone_fd(cfg, 0)
        // Room for requests that arrive while others wait for an invalidation.
        fuse_loop_cfg_set_max_threads(cfg, 32)
        return fuse_session_loop_mt(session, cfg)
    }

    /// Runs the loop on a dedicated pthread. `onEnd` is called on that
    /// thread if the session ends without `stop()`: someone unmounted the
    /// tree from outside (`umount`, `fusermount -u`).
    public func start(onEnd: @escaping @Sendable (_ status: Int32) -> Void = { _ in }) {
        let ctx = Unmanaged.passRetained(Loop(mount: self, onEnd: onEnd)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let loop = Unmanaged<Loop>.fromOpaque(arg!).takeRetainedValue()
            let status = loop.mount.run()
            if !loop.mount.stopped.load(ordering: .acquiring) { loop.onEnd(status) }
            return nil
        }, ctx)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
    }

    /// What the loop thread needs.
    private final class Loop {
        let mount: FuseMount
        let onEnd: @Sendable (Int32) -> Void
        init(mount: FuseMount, onEnd: @escaping @Sendable (Int32) -> Void) {
            self.mount = mount
            self.onEnd = onEnd
        }
    }

    /// Unmounts and frees. With a loop thread: detach the mount so the kernel
    /// aborts the connection, then join it. Every fd on the mount must be
    /// closed first, or the detach waits for it.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        cache?.cancel()
        notifier.close()
        if let t = thread {
            if umount2(mountpoint, Int32(MNT_DETACH)) != 0 { fuse_session_exit(session) }
            pthread_join(t, nil)
            thread = nil
        }
        fuse_session_unmount(session)
        fuse_session_destroy(session)
        treeRef.release()
    }
}

/// Sends the kernel invalidations for one session, until it is closed.
final class Notifier: Sendable {
    private struct Session: @unchecked Sendable { let pointer: OpaquePointer }
    private let session: Mutex<Session?>

    init(_ se: OpaquePointer) { session = Mutex(Session(pointer: se)) }

    /// Makes the kernel forget these entries (and all below them); each
    /// waits for a lookup of that name under way to finish.
    func forget(_ entries: [InodeTable.Entry]) {
        session.withLock { s in
            guard let se = s?.pointer else { return }
            for e in entries { _ = fuse_lowlevel_notify_inval_entry(se, fuse_ino_t(e.parent), e.name, e.name.utf8.count) }
        }
    }

    func close() { session.withLock { $0 = nil } }
}

/// Mount-point hygiene for a daemon that may have crashed before.
public enum MountPoint {
    /// The mount points under `dir` exactly, from /proc/self/mountinfo, with their fs types.
    static func mounts(at dir: String) -> [String] {
        guard let f = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(f) }
        var types: [String] = []
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let fields = String(cString: line!).split(separator: " ")
            guard fields.count > 4, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            if unescape(String(fields[4])) == dir { types.append(String(fields[dash + 1])) }
        }
        return types
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo`.
    static func unescape(_ s: String) -> String {
        var out: [UInt8] = []
        var bytes = s.utf8[...]
        while let c = bytes.first {
            let octal = bytes.dropFirst().prefix(3)
            if c == UInt8(ascii: "\\"), octal.count == 3, octal.allSatisfy({ $0 >= 48 && $0 <= 55 }) {
                out.append(octal.reduce(0) { $0 &* 8 &+ ($1 - 48) })
                bytes = bytes.dropFirst(4)
            } else {
                out.append(c)
                bytes = bytes.dropFirst()
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Creates `dir` if missing, and lazily unmounts a dead FUSE mount left
    /// there by a crashed daemon (its stat fails with ENOTCONN). A live
    /// mount is refused: another daemon serves it.
    public static func prepare(_ dir: String) throws(MountError) -> String {
        var st = stat()
        if stat(dir, &st) != 0 {
            let err = errno
            if err == ENOTCONN {
                guard umount2(dir, Int32(MNT_DETACH)) == 0 else {
                    throw MountError(description: "\(dir) holds a dead FUSE mount that cannot be unmounted: \(String(cString: strerror(errno)))")
                }
            } else if err == ENOENT {
                if mkdir(dir, 0o755) != 0 {
                    throw MountError(description: "cannot create \(dir): \(String(cString: strerror(errno)))")
                }
            } else {
                throw MountError(description: "\(dir): \(String(cString: strerror(err)))")
            }
        }
        guard let real = realpath(dir, nil) else {
            throw MountError(description: "\(dir): \(String(cString: strerror(errno)))")
        }
        defer { free(real) }
        let canonical = String(cString: real)
        if mounts(at: canonical).contains(where: { $0.hasPrefix("fuse") }) {
            throw MountError(description: "\(canonical) is already a live FUSE mount (another apmatrix serve?); choose another directory or stop that daemon")
        }
        var dirStat = stat()
        guard stat(canonical, &dirStat) == 0, (dirStat.st_mode & S_IFMT) == S_IFDIR else {
            throw MountError(description: "\(canonical) is not a directory")
        }
        return canonical
    }
}

extension MountPoint {
    /// Waits (up to `seconds`) until `dir/probe` answers through the mount.
    public static func waitUntilServed(_ dir: String, probe: String = "bus/ap/apmask", seconds: Double = 10) -> Bool {
        let deadline = Int((seconds * 100).rounded())
        for _ in 0..<deadline {
            var st = stat()
            if stat(dir + "/" + probe, &st) == 0 { return true }
            usleep(10_000)
        }
        return false
    }
}

extension FuseMount: GuestAttachment {
    public var location: String { mountpoint }
    public func close() { stop() }

    /// Mounts `view` of `runtime` at `directory` (created if missing) and
    /// waits until it answers; a dead mount left there is recovered.
    public static func serve(_ runtime: Runtime, view: any SysfsView, at directory: String,
                             probe: String) throws(MountError) -> FuseMount {
        let canonical = try MountPoint.prepare(directory)
        let fuse = try FuseMount(SysfsEndpoint(runtime, view: view), mountpoint: canonical)
        fuse.start()
        guard MountPoint.waitUntilServed(canonical, probe: probe) else {
            fuse.stop()
            throw MountError(description: "the tree at \(canonical) did not answer")
        }
        return fuse
    }
}
