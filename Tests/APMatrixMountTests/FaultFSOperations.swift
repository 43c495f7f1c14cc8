// The libfuse3 operations of FaultFS: the namespace passes through to the
// backing directory, file data lives in memory until fsync.

import APMatrixTesting
import CFuse
import Glibc

/// An open directory (with nullpath_ok, readdir gets no path).
private final class FaultDir: Sendable {
    let path: String
    init(_ path: String) { self.path = path }
}

/// The object behind a FUSE file handle: a FaultFile or a FaultDir.
private func object(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> AnyObject? {
    guard let fi, fi.pointee.fh != 0 else { return nil }
    return Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).takeUnretainedValue()
}

private func handle(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> FaultFile? { object(fi) as? FaultFile }

private func keep(_ object: AnyObject, in fi: UnsafeMutablePointer<fuse_file_info>) {
    fi.pointee.fh = UInt64(UInt(bitPattern: Unmanaged<AnyObject>.passRetained(object).toOpaque()))
}

private func drop(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> Int32 {
    if let fi, fi.pointee.fh != 0 {
        Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).release()
        fi.pointee.fh = 0
    }
    return 0
}

/// Opens (or finds) the file at `p`, applies O_TRUNC, and hands it to `fi`.
private func attach(_ p: UnsafePointer<CChar>?, _ fi: UnsafeMutablePointer<fuse_file_info>?, create mode: mode_t?) -> Int32 {
    guard let fi else { return -EINVAL }
    let fs = currentFaultFS()
    let name = p.map { String(cString: $0) } ?? "/"
    return fs.state.withLock { s -> Int32 in
        let file: FaultFile
        if let f = s.files[name], mode == nil || fi.pointee.flags & O_EXCL == 0 {
            file = f
        } else {
            let fd = open(fs.backing + name, O_RDWR | O_CLOEXEC | (mode == nil ? 0 : O_CREAT | (fi.pointee.flags & O_EXCL)), mode ?? 0)
            guard fd >= 0 else { return -errno }
            file = FaultFile(fd: fd, name: name)
            s.files[name] = file
        }
        if fi.pointee.flags & O_TRUNC != 0 {
            file.apply(.truncate(0))
            s.pending.append((file, .truncate(0)))
        }
        keep(file, in: fi)
        return 0
    }
}

private func errnoResult(_ rc: Int32) -> Int32 { rc == 0 ? 0 : -errno }

func faultOperations() -> fuse_operations {
    var ops = fuse_operations()

    ops.`init` = { _, cfg in
        if let cfg {
            cfg.pointee.entry_timeout = 0
            cfg.pointee.attr_timeout = 0
            cfg.pointee.negative_timeout = 0
            // An unlinked open file keeps its handle (SQLite unlinks files it has open).
            cfg.pointee.hard_remove = 1
            cfg.pointee.nullpath_ok = 1
        }
        return fuse_get_context()?.pointee.private_data
    }

    ops.getattr = { p, st, fi in
        guard let st else { return -EINVAL }
        let fs = currentFaultFS()
        let name = p.map { String(cString: $0) }
        let file = handle(fi) ?? name.flatMap { n in fs.state.withLock { $0.files[n] } }
        if let file {
            guard fstat(file.fd, st) == 0 else { return -errno }
            st.pointee.st_size = off_t(fs.state.withLock { _ in file.content.count })
            return 0
        }
        return errnoResult(lstat(faultBacking(p), st))
    }

    ops.opendir = { p, fi in
        guard let fi else { return -EINVAL }
        keep(FaultDir(p.map { String(cString: $0) } ?? "/"), in: fi)
        return 0
    }
    ops.releasedir = { _, fi in drop(fi) }
    ops.readdir = { _, buf, filler, _, fi, _ in
        guard let filler, let d = object(fi) as? FaultDir else { return -EBADF }
        guard let dir = opendir(currentFaultFS().backing + d.path) else { return -errno }
        defer { closedir(dir) }
        while let e = readdir(dir) {
            _ = withUnsafePointer(to: e.pointee.d_name) { name in
                name.withMemoryRebound(to: CChar.self, capacity: 256) { filler(buf, $0, nil, 0, fuse_fill_dir_flags(0)) }
            }
        }
        return 0
    }

    ops.mkdir = { p, mode in errnoResult(mkdir(faultBacking(p), mode)) }
    ops.rmdir = { p in errnoResult(rmdir(faultBacking(p))) }
    ops.unlink = { p in
        let fs = currentFaultFS()
        guard unlink(faultBacking(p)) == 0 else { return -errno }
        fs.state.withLock { s in
            if let f = s.files.removeValue(forKey: String(cString: p!)) { f.unlinked = true }
        }
        return 0
    }
    ops.rename = { from, to, _ in
        let fs = currentFaultFS()
        guard rename(faultBacking(from), faultBacking(to)) == 0 else { return -errno }
        fs.state.withLock { s in
            let a = String(cString: from!), b = String(cString: to!)
            s.files.removeValue(forKey: b)?.unlinked = true
            if let f = s.files.removeValue(forKey: a) { s.files[b] = f }
        }
        return 0
    }
    ops.chmod = { p, mode, _ in errnoResult(chmod(faultBacking(p), mode)) }
    ops.chown = { p, uid, gid, _ in errnoResult(lchown(faultBacking(p), uid, gid)) }
    ops.utimens = { p, tv, _ in errnoResult(utimensat(AT_FDCWD, faultBacking(p), tv, AT_SYMLINK_NOFOLLOW)) }
    ops.access = { p, mask in errnoResult(access(faultBacking(p), mask)) }
    ops.statfs = { p, st in st.map { errnoResult(statvfs(faultBacking(p), $0)) } ?? -EINVAL }

    ops.create = { p, mode, fi in attach(p, fi, create: mode) }
    ops.open = { p, fi in attach(p, fi, create: nil) }
    ops.release = { _, fi in drop(fi) }

    ops.read = { _, buf, size, offset, fi in
        guard let buf, let file = handle(fi) else { return -EBADF }
        return currentFaultFS().state.withLock { _ in
            let off = Int(offset)
            guard off < file.content.count else { return 0 }
            let n = min(size, file.content.count - off)
            file.content.withUnsafeBufferPointer { _ = memcpy(buf, $0.baseAddress! + off, n) }
            return Int32(n)
        }
    }

    ops.write = { _, buf, size, offset, fi in
        guard let buf, let file = handle(fi) else { return -EBADF }
        let op = FaultFile.Op.write(offset: Int(offset), bytes: Array(UnsafeRawBufferPointer(start: buf, count: size)))
        currentFaultFS().state.withLock { s in
            file.apply(op)
            s.pending.append((file, op))
        }
        return Int32(size)
    }

    ops.truncate = { p, size, fi in
        let fs = currentFaultFS()
        return fs.state.withLock { s -> Int32 in
            guard let file = handle(fi) ?? p.flatMap({ s.files[String(cString: $0)] }) else {
                // Not open: a path truncation reaches the backing file's namespace view at once.
                return errnoResult(truncate(fs.backing + String(cString: p!), size))
            }
            file.apply(.truncate(Int(size)))
            s.pending.append((file, .truncate(Int(size))))
            return 0
        }
    }

    // fsync and fdatasync: this file's unsynced operations become durable, in order.
    ops.fsync = { _, _, fi in
        guard let file = handle(fi) else { return -EBADF }
        currentFaultFS().state.withLock { s in
            for p in s.pending where p.file === file { file.persist(p.op) }
            s.pending.removeAll { $0.file === file }
            s.syncs += 1
        }
        return 0
    }
    ops.flush = { _, _ in 0 }
    // The namespace is durable at once, so a directory's fsync has nothing to do.
    ops.fsyncdir = { _, _, _ in 0 }
    return ops
}
