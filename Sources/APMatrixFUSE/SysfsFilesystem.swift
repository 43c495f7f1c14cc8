import APMatrixRuntime
import APMatrixModel
import APMatrixSysfs
import CFuse
import Glibc

/// What one mount serves, as libfuse's user data (a class, so that a
/// pointer to it can travel through C): the tree, the inodes the kernel
/// holds of it, and whether the kernel may cache its entries.
final class ServedTree: Sendable {
    let endpoint: SysfsEndpoint
    let inodes = InodeTable()
    /// Seconds the kernel may keep an entry and its attributes: long for a
    /// tree whose changes are invalidated (`SysfsTree.changedEntryNames`),
    /// none for the others, which are looked up at every access.
    let timeout: Double

    init(_ endpoint: SysfsEndpoint, cached: Bool) {
        self.endpoint = endpoint
        timeout = cached ? 86_400 : 0
    }
}

@inline(__always)
func served(_ req: fuse_req_t?) -> ServedTree {
    Unmanaged<ServedTree>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

/// What one `open()` of an attribute rendered: sysfs renders once per open
/// (seq_file), so `cat` sees one consistent text however it reads.
final class OpenFile: Sendable {
    let path: String
    let content: Result<[UInt8], APError>?
    init(_ path: String, _ content: Result<[UInt8], APError>?) { (self.path, self.content) = (path, content) }
}

/// A directory as `opendir` listed it: `ls` pages through one listing.
final class OpenDirectory: Sendable {
    let entries: [(name: String, mode: mode_t, ino: UInt64)]
    init(_ entries: [(name: String, mode: mode_t, ino: UInt64)]) { self.entries = entries }
}

func mode(_ node: Node) -> mode_t {
    switch node {
    case .directory: S_IFDIR | 0o755
    case .attribute(let a): S_IFREG | mode_t(a.mode)
    case .symlink: S_IFLNK | 0o777
    }
}

func attributes(_ node: Node, ino: UInt64) -> stat {
    var st = stat()
    st.st_ino = __ino_t(ino)
    st.st_mode = mode(node)
    switch node {
    case .directory: st.st_nlink = 2
    case .attribute: st.st_nlink = 1; st.st_size = off_t(SysfsTree.attributeSize)
    case .symlink(let target): st.st_nlink = 1; st.st_size = off_t(target.utf8.count)
    }
    return st
}

/// Runs one FUSE request on its mount's tree and reports its latency. The
/// request is gone once replied to: `body` gets the tree beforehand.
@inline(__always)
func timed(_ req: fuse_req_t?, _ op: FuseOperation, _ body: (ServedTree) -> Void) {
    let tree = served(req)
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    body(tree)
    clock_gettime(CLOCK_MONOTONIC, &end)
    tree.endpoint.runtime.instrumentation.fuseRequest(
        op, Int64(end.tv_sec - start.tv_sec) * 1_000_000_000 + Int64(end.tv_nsec - start.tv_nsec))
}

func handle<T: AnyObject>(_ fi: UnsafeMutablePointer<fuse_file_info>?, as _: T.Type) -> T? {
    guard let fi, fi.pointee.fh != 0 else { return nil }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).takeUnretainedValue()
}

func keep(_ object: AnyObject, in fi: UnsafeMutablePointer<fuse_file_info>) {
    fi.pointee.fh = UInt64(UInt(bitPattern: Unmanaged.passRetained(object).toOpaque()))
}

func drop(_ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let fi, fi.pointee.fh != 0 else { return }
    Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).release()
    fi.pointee.fh = 0
}

/// The libfuse3 low-level operations that serve a sysfs view with the habits
/// clients rely on (clients.md): EACCES at open, size 4096, render once per
/// open, direct I/O, O_TRUNC ignored, one write() = one store, errno
/// straight back from write(). Every request names an inode; its path is
/// resolved against the host as it is at that moment.
func sysfsOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()

    ops.lookup = { req, parent, name in timed(req, .lookup) { tree in
        let name = String(cString: name!)
        guard let path = tree.inodes.startLookup(parent, name) else { fuse_reply_err(req, ENOENT); return }
        let node = tree.endpoint.node(path)
        let ino = tree.inodes.finishLookup(parent, name, path: path, kind: node.map(EntryKind.init))
        guard let node, let ino else { fuse_reply_err(req, ENOENT); return }
        var e = fuse_entry_param()
        e.ino = ino
        e.attr = attributes(node, ino: ino)
        e.attr_timeout = tree.timeout
        e.entry_timeout = tree.timeout
        if fuse_reply_entry(req, &e) != 0 { tree.inodes.forget(ino, 1) }
    } }

    ops.forget = { req, ino, count in
        served(req).inodes.forget(ino, count)
        fuse_reply_none(req)
    }

    ops.forget_multi = { req, count, forgets in
        let tree = served(req)
        for i in 0..<count { tree.inodes.forget(forgets![i].ino, forgets![i].nlookup) }
        fuse_reply_none(req)
    }

    ops.getattr = { req, ino, _ in timed(req, .getattr) { tree in
        guard let path = tree.inodes.path(ino), let node = tree.endpoint.node(path) else { fuse_reply_err(req, ENOENT); return }
        var st = attributes(node, ino: ino)
        fuse_reply_attr(req, &st, tree.timeout)
    } }

    // `echo x > attr` opens with O_TRUNC: truncating an attribute means nothing.
    ops.setattr = { req, ino, _, toSet, _ in timed(req, .setattr) { tree in
        guard let path = tree.inodes.path(ino), let node = tree.endpoint.node(path) else { fuse_reply_err(req, ENOENT); return }
        guard toSet & FUSE_SET_ATTR_SIZE != 0 else { fuse_reply_err(req, ENOSYS); return }
        guard case .attribute(let a) = node, a.isWritable else { fuse_reply_err(req, EACCES); return }
        var st = attributes(node, ino: ino)
        fuse_reply_attr(req, &st, tree.timeout)
    } }

    ops.readlink = { req, ino in timed(req, .readlink) { tree in
        guard let path = tree.inodes.path(ino), let node = tree.endpoint.node(path) else { fuse_reply_err(req, ENOENT); return }
        guard case .symlink(let target) = node else { fuse_reply_err(req, EINVAL); return }
        fuse_reply_readlink(req, target)
    } }

    ops.opendir = { req, ino, fi in timed(req, .opendir) { tree in
        guard let fi, let path = tree.inodes.path(ino), let listing = tree.endpoint.listing(path) else {
            fuse_reply_err(req, ENOTDIR)
            return
        }
        let prefix = path == "/" ? "/" : path + "/"
        let unknown = UInt64(UInt32.max)   // FUSE_UNKNOWN_INO: no inode yet
        keep(OpenDirectory([(".", S_IFDIR, ino), ("..", S_IFDIR, unknown)] + listing.map {
            ($0.name, mode($0.node), tree.inodes.inode(prefix + $0.name) ?? unknown)
        }), in: fi)
        fuse_reply_open(req, fi)
    } }

    // Each entry carries its type (d_type): udev's sd-device skips entries without one.
    ops.readdir = { req, _, size, offset, fi in timed(req, .readdir) { _ in
        guard let dir = handle(fi, as: OpenDirectory.self) else { fuse_reply_err(req, EBADF); return }
        var buf = [CChar](repeating: 0, count: size)
        var used = 0
        var i = Int(offset)
        while i < dir.entries.count {
            var st = stat()
            (st.st_ino, st.st_mode) = (__ino_t(dir.entries[i].ino), dir.entries[i].mode)
            let need = buf.withUnsafeMutableBufferPointer { bp in
                fuse_add_direntry(req, bp.baseAddress! + used, size - used, dir.entries[i].name, &st, off_t(i + 1))
            }
            if need > size - used { break }
            used += need
            i += 1
        }
        fuse_reply_buf(req, buf, used)
    } }

    ops.releasedir = { req, _, fi in
        drop(fi)
        fuse_reply_err(req, 0)
    }

    ops.open = { req, ino, fi in timed(req, .open) { tree in
        guard let fi else { fuse_reply_err(req, EINVAL); return }
        guard let path = tree.inodes.path(ino), let node = tree.endpoint.node(path) else { fuse_reply_err(req, ENOENT); return }
        guard case .attribute(let a) = node else { fuse_reply_err(req, EISDIR); return }
        let access = fi.pointee.flags & O_ACCMODE
        let reads = access == O_RDONLY || access == O_RDWR, writes = access == O_WRONLY || access == O_RDWR
        if (reads && !a.isReadable) || (writes && !a.isWritable) { fuse_reply_err(req, EACCES); return }
        // sysfs attributes belong to root: only root writes them.
        if writes && fuse_req_ctx(req)!.pointee.uid != 0 { fuse_reply_err(req, EACCES); return }
        fi.pointee.direct_io = 1
        let content: Result<[UInt8], APError>? = reads && a.isReadable
            ? Result { () throws(APError) in try tree.endpoint.read(path) } : nil
        keep(OpenFile(path, content), in: fi)
        fuse_reply_open(req, fi)
    } }

    ops.release = { req, _, fi in
        drop(fi)
        fuse_reply_err(req, 0)
    }

    ops.read = { req, _, size, offset, fi in timed(req, .read) { _ in
        guard let file = handle(fi, as: OpenFile.self), let content = file.content else { fuse_reply_err(req, EACCES); return }
        switch content {
        case .failure(let e): fuse_reply_err(req, e.errno.rawValue)
        case .success(let data):
            let off = min(Int(offset), data.count), n = min(size, data.count - off)
            _ = data.withUnsafeBufferPointer { fuse_reply_buf(req, $0.baseAddress.map { $0 + off }, n) }
        }
    } }

    ops.write = { req, _, buf, size, _, fi in timed(req, .write) { tree in
        guard let file = handle(fi, as: OpenFile.self) else { fuse_reply_err(req, EBADF); return }
        let bytes = buf.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
        do throws(APError) {
            try tree.endpoint.write(file.path, bytes)
            fuse_reply_write(req, size)
        } catch {
            fuse_reply_err(req, error.errno.rawValue)
        }
    } }

    ops.access = { req, ino, mask in timed(req, .access) { tree in
        guard let path = tree.inodes.path(ino), let node = tree.endpoint.node(path) else { fuse_reply_err(req, ENOENT); return }
        if mask & X_OK != 0, case .attribute = node { fuse_reply_err(req, EACCES); return }
        fuse_reply_err(req, 0)
    } }

    // sysfs has no create, mkdir, unlink, … (vfs: EACCES for create, EPERM for the rest).
    ops.create = { req, _, _, _, _ in fuse_reply_err(req, EACCES) }
    ops.mknod = { req, _, _, _, _ in fuse_reply_err(req, EACCES) }
    ops.mkdir = { req, _, _, _ in fuse_reply_err(req, EPERM) }
    ops.unlink = { req, _, _ in fuse_reply_err(req, EPERM) }
    ops.rmdir = { req, _, _ in fuse_reply_err(req, EPERM) }
    ops.symlink = { req, _, _, _ in fuse_reply_err(req, EPERM) }
    ops.link = { req, _, _, _ in fuse_reply_err(req, EPERM) }
    ops.rename = { req, _, _, _, _, _ in fuse_reply_err(req, EPERM) }

    return ops
}
