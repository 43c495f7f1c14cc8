// A test-only filesystem that can lose power, as LazyFS does for Jepsen:
// it passes a directory through, but keeps every write and truncation in
// memory until the file is fsynced; a power cut then drops what was not
// synced, or (torn) keeps a random prefix of it with the last write torn at
// a random byte. A SIGKILL cannot lose what the page cache holds; this can.
//
// What it models: data is durable only once fsynced (fsync and fdatasync
// alike); namespace operations (create, unlink, rename, mkdir) reach the
// backing directory at once, as LazyFS does. It is served without direct_io,
// so SQLite's shared-memory file (`-shm`) can be mmapped through it: the
// state database keeps its WAL index there, as in production. The kernel's
// page cache of the mount goes with the power: the mount is made anew.

import APMatrixTesting
import CFuse
import Glibc
import Synchronization

/// One backing file and its content as readers see it now.
final class FaultFile: @unchecked Sendable {
    let fd: Int32
    /// Where it was opened, for the counts ("/host.db-wal").
    let name: String
    var content: [UInt8]
    /// Unlinked: its unsynced data can never become durable.
    var unlinked = false

    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
        var st = stat()
        fstat(fd, &st)
        content = [UInt8](repeating: 0, count: Int(st.st_size))
        _ = content.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { close(fd) }

    enum Op {
        case write(offset: Int, bytes: [UInt8])
        case truncate(Int)
    }

    /// Makes `op` durable (on the backing file), or only its first `prefix` bytes.
    func persist(_ op: Op, prefix: Int? = nil) {
        switch op {
        case .write(let offset, let bytes):
            let n = min(prefix ?? bytes.count, bytes.count)
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(offset)) }
        case .truncate(let size):
            if prefix == nil { ftruncate(fd, off_t(size)) }
        }
    }

    /// Applies `op` to what readers see.
    func apply(_ op: Op) {
        switch op {
        case .write(let offset, let bytes):
            if content.count < offset + bytes.count { content += [UInt8](repeating: 0, count: offset + bytes.count - content.count) }
            content.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        case .truncate(let size):
            if size < content.count { content.removeLast(content.count - size) } else {
                content += [UInt8](repeating: 0, count: size - content.count)
            }
        }
    }
}

struct FaultState {
    /// Open backing files by path in the mount ("/host.db").
    var files: [String: FaultFile] = [:]
    /// What is not yet durable, in the order it was written.
    var pending: [(file: FaultFile, op: FaultFile.Op)] = []
    var syncs = 0
}

final class FaultFS: @unchecked Sendable {
    let backing: String
    let mountpoint: String
    let state = Mutex(FaultState())
    private var fuse: OpaquePointer?
    private var thread: pthread_t?
    private var selfRef: Unmanaged<FaultFS>?

    /// How power goes.
    enum Cut: CustomStringConvertible {
        /// Every unsynced write and truncation is lost.
        case dropUnsynced
        /// A random prefix of them survives, its last write torn at a random byte.
        case tornPrefix

        var description: String { self == .dropUnsynced ? "drop" : "torn" }
    }

    /// Mounts `backing` at `mountpoint` (subtype apmatrix-faultfs) with the loop on its own pthread.
    init(backing: String, mountpoint: String) throws {
        self.backing = backing
        self.mountpoint = mountpoint
        let ref = Unmanaged.passRetained(self)
        let argv = ["faultfs", "-o", "fsname=faultfs,subtype=apmatrix-faultfs"]
        var cStrings: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var ops = faultOperations()
        let f: OpaquePointer? = cStrings.withUnsafeMutableBufferPointer { bp in
            var args = fuse_args(argc: Int32(argv.count), argv: bp.baseAddress, allocated: 0)
            defer { fuse_opt_free_args(&args) }
            return fuse_new(&args, &ops, MemoryLayout<fuse_operations>.size, ref.toOpaque())
        }
        guard let f, fuse_mount(f, mountpoint) == 0 else {
            if let f { fuse_destroy(f) }
            ref.release()
            throw TestFailure("faultfs: cannot mount at \(mountpoint)")
        }
        fuse = f
        selfRef = ref
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let fs = Unmanaged<FaultFS>.fromOpaque(arg!).takeUnretainedValue()
            let cfg = fuse_loop_cfg_create()
            fuse_loop_cfg_set_max_threads(cfg, 8)
            fuse_loop_mt(fs.fuse, cfg)
            fuse_loop_cfg_destroy(cfg)
            return nil
        }, ref.toOpaque())
        precondition(rc == 0, "pthread_create: \(rc)")
        thread = tid
    }

    /// Unmounts (every file on the mount must be closed: its users are dead).
    func stop() {
        guard let f = fuse, let t = thread else { return }
        if umount2(mountpoint, Int32(MNT_DETACH)) != 0 { fuse_exit(f) }
        pthread_join(t, nil)
        fuse_unmount(f)
        fuse_destroy(f)
        fuse = nil
        thread = nil
        selfRef?.release()
        selfRef = nil
    }

    /// The power goes: what was not fsynced is lost (or torn), as `cut` says.
    /// Call after `stop()`. Returns how many unsynced operations there were,
    /// how many survived (whole or torn), and how many of those lost were
    /// on the database or its WAL (not the WAL index, `-shm`, never synced).
    @discardableResult
    func powerCut(_ cut: Cut, using rng: inout some RandomNumberGenerator) -> (pending: Int, kept: Int, lostData: Int) {
        state.withLock { s in
            let live = s.pending.filter { !$0.file.unlinked }
            var kept = 0
            if cut == .tornPrefix, !live.isEmpty {
                kept = Int.random(in: 0...live.count, using: &rng)
                for p in live[..<kept] { p.file.persist(p.op) }
                if kept < live.count, case .write(_, let bytes) = live[kept].op, !bytes.isEmpty {
                    live[kept].file.persist(live[kept].op, prefix: Int.random(in: 0..<bytes.count, using: &rng))
                    kept += 1
                }
            }
            let lostData = live[kept...].filter { !$0.file.name.hasSuffix("-shm") }.count
            s.pending = []
            s.files = [:]
            return (live.count, kept, lostData)
        }
    }

    /// fsyncs so far.
    var syncs: Int { state.withLock { $0.syncs } }
}

/// The backing path of a path in the mount.
func faultBacking(_ p: UnsafePointer<CChar>?) -> String {
    currentFaultFS().backing + (p.map { String(cString: $0) } ?? "/")
}

@inline(__always)
func currentFaultFS() -> FaultFS {
    Unmanaged<FaultFS>.fromOpaque(fuse_get_context()!.pointee.private_data!).takeUnretainedValue()
}
