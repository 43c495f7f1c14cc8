import APMatrixModel
import APMatrixRuntime
import Glibc

/// Where a daemon listening on TCP keeps its write token, so that a client
/// of the same user on the same machine (the CLI, a daemon migrating a
/// guest) finds it by itself: one file per listen address, mode 0600, in a
/// directory of mode 0700 that belongs to the user, removed when the daemon
/// exits: the user's run directory (`RunDirectory`).
public enum TokenFile {
    public static func directory(uid: uid_t = geteuid()) -> String { RunDirectory.path(uid: uid) }

    /// `DIR/127.0.0.1:7807.token` for a daemon listening on `127.0.0.1:7807`.
    public static func path(for address: String) -> String { directory() + "/" + address + ".token" }

    /// Writes the token of the daemon on `address`; returns the file's path.
    static func write(_ token: String, for address: String) throws(APError) -> String {
        let dir = directory()
        try ensurePrivateDirectory(dir)
        let path = path(for: address)
        let temporary = "\(dir)/.\(address).\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create \(temporary)") }
        let line = Array((token + "\n").utf8)
        let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == line.count, rename(temporary, path) == 0 else {
            let e = failure("write \(path)")
            unlink(temporary)
            throw e
        }
        return path
    }

    static func remove(for address: String) { unlink(path(for: address)) }

    /// The token of the daemon at `server` (`http://127.0.0.1:7807`) from
    /// this user's token files: its exact address, else a daemon listening
    /// on every address of that port.
    public static func find(for server: String) -> String? {
        guard let (host, port) = hostAndPort(server) else { return nil }
        var candidates = ["\(host):\(port)"]
        if host == "localhost" { candidates += ["127.0.0.1:\(port)", "[::1]:\(port)"] }
        candidates += ["0.0.0.0:\(port)", "[::]:\(port)"]
        for address in candidates {
            if case .success(let bytes) = Files.read(path(for: address)) {
                let token = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
                if !token.isEmpty { return token }
            }
        }
        return nil
    }

    /// `("127.0.0.1", 7807)` from `http://127.0.0.1:7807/…`; nil for a unix socket.
    static func hostAndPort(_ server: String) -> (String, Int)? {
        guard let scheme = server.range(of: "://"), server.hasPrefix("http") else { return nil }
        let authority = server[scheme.upperBound...].prefix { $0 != "/" }
        guard let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") else {
            return (String(authority), server.hasPrefix("https") ? 443 : 80)
        }
        guard let port = Int(authority[authority.index(after: colon)...]) else { return nil }
        return (String(authority[..<colon]), port)
    }

    /// Creates `dir` for this user alone, or checks that it is so: a
    /// directory someone else could write would let them swap the token.
    static func ensurePrivateDirectory(_ dir: String) throws(APError) {
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw failure("create \(dir)") }
        var st = stat()
        guard lstat(dir, &st) == 0 else { throw failure("stat \(dir)") }
        guard st.st_mode & S_IFMT == S_IFDIR, st.st_uid == geteuid(), st.st_mode & 0o077 == 0 else {
            throw APError(.permissionDenied, "token directory \(dir) is not a directory of uid \(geteuid()) with mode 0700; remove it or fix it")
        }
    }

    static func failure(_ what: String) -> APError {
        APError(.ioError, "token file: \(what): \(String(cString: strerror(errno)))")
    }
}

extension String {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
