import APMatrixModel
import Glibc

/// Blocking TCP for the migration channel: one connection per migration,
/// each side on a thread of its own (as QEMU's migration threads).
enum TCP {
    /// `strerror(errno)`.
    static func lastError() -> String { String(cString: strerror(errno)) }

    /// The addresses `host` resolves to for `port` (numeric or a name).
    static func resolve(_ uri: MigrationURI, passive: Bool) -> (UnsafeMutablePointer<addrinfo>?, String?) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(uri.host, String(uri.port), &hints, &res)
        return rc == 0 ? (res, nil) : (nil, String(cString: gai_strerror(rc)))
    }

    /// Connects to `uri`; the error is QEMU's `inet_connect_addr` text.
    static func connect(_ uri: MigrationURI) -> (fd: Int32?, failure: String) {
        let (res, gaiError) = resolve(uri, passive: false)
        guard let res else { return (nil, "address resolution failed for \(uri.host):\(uri.port): \(gaiError ?? "")") }
        defer { freeaddrinfo(res) }
        var failure = "Failed to connect to '\(uri.host):\(uri.port)'"
        var ai: UnsafeMutablePointer<addrinfo>? = res
        while let a = ai {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return (fd, "") }
                failure = "Failed to connect to '\(uri.host):\(uri.port)': \(lastError())"
                close(fd)
            }
            ai = a.pointee.ai_next
        }
        return (nil, failure)
    }

    /// Listens on `uri` (port 0 picks one); returns the socket and the bound address.
    static func listen(_ uri: MigrationURI) throws(APError) -> (fd: Int32, bound: MigrationURI) {
        let (res, gaiError) = resolve(uri, passive: true)
        guard let res, let a = Optional(res.pointee) else {
            throw APError(.invalidArgument, "-incoming \(uri): address resolution failed: \(gaiError ?? "")")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(a.ai_family, a.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.ai_protocol)
        guard fd >= 0 else { throw APError(.ioError, "-incoming \(uri): socket: \(lastError())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, a.ai_addr, a.ai_addrlen) == 0, Glibc.listen(fd, 1) == 0 else {
            let e = errno, text = lastError()
            close(fd)
            throw APError(e == EADDRINUSE ? .addressInUse : .invalidArgument, "Failed to bind socket for \(uri): \(text)")
        }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = withUnsafePointer(to: &storage) { p -> Int in
            p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        return (fd, MigrationURI(host: uri.host, port: port))
    }

    /// Writes everything (no SIGPIPE); the error is QEMU's channel text.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return "Unable to write to socket: \(lastError())"
            }
            off += n
        }
        return nil
    }

    /// Reads exactly `count` bytes; nil at the end of the stream or on an error.
    static func readExact(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var off = 0
        while off < count {
            let n = out[off...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            off += n
        }
        return out
    }

    /// Gives up a blocking read after `seconds`.
    static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// A pthread for a blocking loop (the runtime's lock is never held while it waits).
func startThread(_ body: @escaping @Sendable () -> Void) {
    let box = Unmanaged.passRetained(ThreadBody(body))
    var t = pthread_t()
    let rc = pthread_create(&t, nil, { arg in
        let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        b.body()
        return nil
    }, box.toOpaque())
    if rc == 0 { pthread_detach(t) } else { box.release(); body() }
}

final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}
