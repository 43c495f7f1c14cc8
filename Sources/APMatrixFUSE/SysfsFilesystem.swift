import APMatrixRuntime
import APMatrixModel
import APMatrixSysfs
import CFuse
import Glibc

/// What one `open()` of an attribute rendered: sysfs renders once per open
/// (seq_file), so `cat` sees one consistent text however it reads.
final class OpenFile: Sendable {
    let content: Result<[UInt8], APError>?
    init(_ content: Result<[UInt8], APError>?) { self.content = content }
}

/// What one mount serves, as libfuse's private data (a class, so that a
/// pointer to it can travel through C).
final class ServedEndpoint: Sendable {
    let endpoint: SysfsEndpoint
    init(_ endpoint: SysfsEndpoint) { self.endpoint = endpoint }
}

@inline(__always)
func currentTree() -> SysfsEndpoint {
    Unmanaged<ServedEndpoint>.fromOpaque(fuse_get_context()!.pointee.private_data!).takeUnretainedValue().endpoint
}

func path(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "/" }

func fillStat(_ st: UnsafeMutablePointer<stat>, _ node: Node) {
    memset(st, 0, MemoryLayout<stat>.size)
    switch node {
    case .directory:
        st.pointee.st_mode = S_IFDIR | 0o755
        st.pointee.st_nlink = 2
    case .attribute(let a):
        st.pointee.st_mode = S_IFREG | mode_t(a.mode)
        st.pointee.st_nlink = 1
        st.pointee.st_size = off_t(SysfsTree.attributeSize)
    case .symlink(let target):
        st.pointee.st_mode = S_IFLNK | 0o777
        st.pointee.st_nlink = 1
        st.pointee.st_size = off_t(target.utf8.count)
    }
}

/// Runs one FUSE request and reports its latency.
func timed(_ op: String, _ body: () -> Int32) -> Int32 {
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    let result = body()
    clock_gettime(CLOCK_MONOTONIC, &end)
    currentTree().runtime.instrumentation.fuseRequest(
        op, Int64(end.tv_sec - start.tv_sec) * 1_000_000_000 + Int64(end.tv_nsec - start.tv_nsec))
    return result
}

func openFile(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> OpenFile? {
    guard let fi, fi.pointee.fh != 0 else { return nil }
    return Unmanaged<OpenFile>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).takeUnretainedValue()
}

/// The libfuse3 high-level operations that serve the sysfs view with the
/// habits clients rely on (clients.md): EACCES at open, size 4096, render
/// once per open, direct I/O, zero cache timeouts, O_TRUNC ignored, one
/// write() = one store, errno straight back from write().
func sysfsOperations() -> fuse_operations {
    var ops = fuse_operations()

    ops.`init` = { _, cfg in
        if let cfg {
            cfg.pointee.entry_timeout = 0
            cfg.pointee.attr_timeout = 0
            cfg.pointee.negative_timeout = 0
            cfg.pointee.use_ino = 0
        }
        return fuse_get_context()?.pointee.private_data
    }

    ops.getattr = { p, st, _ in timed("getattr") {
        guard let st, let node = currentTree().node(path(p)) else { return -ENOENT }
        fillStat(st, node)
        return 0
    } }

    ops.readlink = { p, buf, size in timed("readlink") {
        guard let buf, size > 0 else { return -EINVAL }
        guard let target = currentTree().readlink(path(p)) else { return -EINVAL }
        let bytes = Array(target.utf8.prefix(size - 1))
        bytes.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { memcpy(buf, base, src.count) }
        }
        buf[bytes.count] = 0
        return 0
    } }

    ops.readdir = { p, buf, filler, _, _, _ in timed("readdir") {
        guard let filler else { return -EINVAL }
        guard let entries = currentTree().listing(path(p)) else { return -ENOTDIR }
        // Each entry carries its type (d_type), as sysfs fills it in:
        // sd-device's enumeration skips entries whose type is unknown.
        var st = stat()
        fillStat(&st, .directory)
        _ = filler(buf, ".", &st, 0, fuse_fill_dir_flags(0))
        _ = filler(buf, "..", &st, 0, fuse_fill_dir_flags(0))
        for (name, node) in entries {
            fillStat(&st, node)
            _ = filler(buf, name, &st, 0, fuse_fill_dir_flags(0))
        }
        return 0
    } }

    ops.open = { p, fi in timed("open") {
        guard let fi else { return -EINVAL }
        let tree = currentTree()
        let file = path(p)
        guard let node = tree.node(file) else { return -ENOENT }
        guard case .attribute(let a) = node else { return -EISDIR }
        let mode = fi.pointee.flags & O_ACCMODE
        if (mode == O_RDONLY || mode == O_RDWR) && !a.isReadable { return -EACCES }
        if (mode == O_WRONLY || mode == O_RDWR) && !a.isWritable { return -EACCES }
        // sysfs attributes belong to root: only root writes them.
        if (mode == O_WRONLY || mode == O_RDWR) && fuse_get_context()!.pointee.uid != 0 { return -EACCES }
        fi.pointee.direct_io = 1
        let content: Result<[UInt8], APError>? = a.isReadable && mode != O_WRONLY
            ? Result { () throws(APError) in try tree.read(file) } : nil
        fi.pointee.fh = UInt64(UInt(bitPattern: Unmanaged.passRetained(OpenFile(content)).toOpaque()))
        return 0
    } }

    ops.release = { _, fi in
        if let fi, fi.pointee.fh != 0 {
            Unmanaged<OpenFile>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).release()
            fi.pointee.fh = 0
        }
        return 0
    }

    ops.read = { _, buf, size, offset, fi in timed("read") {
        guard let buf, let file = openFile(fi), let content = file.content else { return -EACCES }
        switch content {
        case .failure(let e): return -e.errno.rawValue
        case .success(let data):
            let off = Int(offset)
            guard off < data.count else { return 0 }
            let n = min(size, data.count - off)
            data.withUnsafeBufferPointer { src in _ = memcpy(buf, src.baseAddress! + off, n) }
            return Int32(n)
        }
    } }

    ops.write = { p, buf, size, _, _ in timed("write") {
        let bytes = buf.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
        do throws(APError) {
            try currentTree().write(path(p), bytes)
        } catch {
            return -error.errno.rawValue
        }
        return Int32(size)
    } }

    // `echo x > attr` opens with O_TRUNC; truncation of an attribute means nothing.
    ops.truncate = { p, _, _ in timed("truncate") {
        guard case .attribute(let a)? = currentTree().node(path(p)) else { return -ENOENT }
        return a.isWritable ? 0 : -EACCES
    } }

    // sysfs has no create, mkdir, unlink, … (vfs: EACCES for create, EPERM for the rest).
    ops.create = { _, _, _ in -EACCES }
    ops.mknod = { _, _, _ in -EACCES }
    ops.mkdir = { _, _ in -EPERM }
    ops.unlink = { _ in -EPERM }
    ops.rmdir = { _ in -EPERM }
    ops.symlink = { _, _ in -EPERM }
    ops.link = { _, _ in -EPERM }
    ops.rename = { _, _, _ in -EPERM }

    ops.access = { p, mask in timed("access") {
        guard let node = currentTree().node(path(p)) else { return -ENOENT }
        if mask & X_OK != 0, case .attribute = node { return -EACCES }
        return 0
    } }

    return ops
}
