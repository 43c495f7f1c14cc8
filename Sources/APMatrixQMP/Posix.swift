import Glibc

/// A body for `pthread_create`, which takes a C function and one pointer.
private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a joinable pthread. The monitor uses real threads, not Swift
/// tasks, because every connection blocks in `poll` and must not starve
/// the cooperative pool.
func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let b = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        b.run()
        return nil
    }, box)
    guard rc == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        return nil
    }
    return thread
}

/// A pipe whose ends are close-on-exec and non-blocking (a wake-up signal for `poll`).
func makePipe() -> (read: Int32, write: Int32)? {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return nil }
    for fd in fds {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
    return (fds[0], fds[1])
}

/// Writes one byte; a full pipe already means "wake up", so errors are ignored.
func poke(_ fd: Int32) {
    var b: UInt8 = 1
    _ = write(fd, &b, 1)
}

/// Empties a non-blocking pipe.
func drainPipe(_ fd: Int32) {
    var buf = [UInt8](repeating: 0, count: 256)
    while read(fd, &buf, buf.count) > 0 {}
}

/// Device and inode of a path (without following a symlink), to recognise our own socket.
func fileIdentity(_ path: String) -> (dev: UInt64, ino: UInt64, mode: UInt32)? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return (UInt64(st.st_dev), UInt64(st.st_ino), UInt32(st.st_mode))
}

/// `sockaddr_un` for `path`, or nil when it does not fit `sun_path`.
func unixAddress(_ path: String) -> sockaddr_un? {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: addr.sun_path), !bytes.contains(0) else { return nil }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return addr
}

func withSockaddr<R>(_ addr: sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var a = addr
    return withUnsafePointer(to: &a) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// A stream socket listening on `path`. A stale socket file (nobody
/// answers on it) is replaced, as QEMU does; a live one is EADDRINUSE and
/// any other file EEXIST, so a monitor never steals another's socket.
func listenUnix(_ path: String) throws(QMPError) -> Int32 {
    guard let addr = unixAddress(path) else {
        throw QMPError(errno: ENAMETOOLONG, "QMP socket path '\(path)' must be 1-107 bytes")
    }
    if let id = fileIdentity(path) {
        guard id.mode & UInt32(S_IFMT) == UInt32(S_IFSOCK) else {
            throw QMPError(errno: EEXIST, "QMP socket \(path): a file that is not a socket is in the way")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if probe >= 0 {
            let rc = withSockaddr(addr) { connect(probe, $0, $1) }
            let e = errno
            close(probe)
            if rc == 0 { throw QMPError(errno: EADDRINUSE, "QMP socket \(path) is in use by another monitor") }
            if e == ECONNREFUSED || e == ENOENT { unlink(path) }
        }
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw QMPError.last("QMP socket \(path): socket") }
    if withSockaddr(addr, { bind(fd, $0, $1) }) != 0 {
        let e = QMPError.last("QMP socket \(path): bind")
        close(fd)
        throw e
    }
    if listen(fd, 16) != 0 {
        let e = QMPError.last("QMP socket \(path): listen")
        close(fd)
        unlink(path)
        throw e
    }
    return fd
}
