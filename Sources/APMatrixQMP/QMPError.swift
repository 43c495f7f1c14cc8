import Glibc

/// A monitor that could not be set up: the errno of the failing call and a
/// sentence naming the socket.
public struct QMPError: Error, Sendable, CustomStringConvertible {
    /// The POSIX errno (`EADDRINUSE`, `ENAMETOOLONG`, …), for callers that map it to an exit status.
    public let errno: Int32
    /// What failed, naming the socket path.
    public let message: String

    /// An error with this errno and sentence.
    public init(errno: Int32, _ message: String) {
        self.errno = errno
        self.message = message
    }

    /// `EADDRINUSE: QMP socket /run/g1.qmp is in use by another monitor`
    public var description: String { "\(Self.symbol(errno)): \(message)" }

    /// The symbolic errno, as SPEC §6 asks error lines to name it.
    public static func symbol(_ e: Int32) -> String {
        switch e {
        case EADDRINUSE: return "EADDRINUSE"
        case EEXIST: return "EEXIST"
        case ENAMETOOLONG: return "ENAMETOOLONG"
        case EACCES: return "EACCES"
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ENOTDIR: return "ENOTDIR"
        case EROFS: return "EROFS"
        case EMFILE: return "EMFILE"
        case ENFILE: return "ENFILE"
        case EINVAL: return "EINVAL"
        case EAGAIN: return "EAGAIN"
        default: return "errno \(e)"
        }
    }

    static func last(_ what: String) -> QMPError {
        let e = Glibc.errno
        return QMPError(errno: e, "\(what): \(String(cString: strerror(e)))")
    }
}
