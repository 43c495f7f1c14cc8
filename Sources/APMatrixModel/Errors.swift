import SystemPackage

/// A refused operation: the errno the kernel (or QEMU, or the firmware
/// interface) returns, and a sentence a person can act on.
public struct APError: Error, Equatable, Sendable, CustomStringConvertible {
    public let errno: Errno
    public let message: String

    public init(_ errno: Errno, _ message: String) {
        self.errno = errno
        self.message = message
    }

    /// `EADDRINUSE: …`
    public var description: String { "\(errno.symbol): \(message)" }
}

extension Errno {
    /// The symbolic name (`EADDRINUSE`) of the errnos this project returns.
    public var symbol: String {
        switch self {
        case .notPermitted: return "EPERM"
        case .noSuchFileOrDirectory: return "ENOENT"
        case .ioError: return "EIO"
        case .argListTooLong: return "E2BIG"
        case .permissionDenied: return "EACCES"
        case .resourceBusy: return "EBUSY"
        case .fileExists: return "EEXIST"
        case .noSuchDevice: return "ENODEV"
        case .notDirectory: return "ENOTDIR"
        case .isDirectory: return "EISDIR"
        case .invalidArgument: return "EINVAL"
        case .outOfRange: return "ERANGE"
        case .addressInUse: return "EADDRINUSE"
        case .addressNotAvailable: return "EADDRNOTAVAIL"
        case .tooManyUsers: return "EUSERS"
        case .notSupported: return "ENOTSUP"
        case .resourceTemporarilyUnavailable: return "EAGAIN"
        case .connectionRefused: return "ECONNREFUSED"
        case .socketNotConnected: return "ENOTCONN"
        default: return "errno \(rawValue)"
        }
    }

    /// The inverse of `symbol`, for errors that cross a process boundary.
    public init?(symbol: String) {
        let known: [Errno] = [.notPermitted, .noSuchFileOrDirectory, .ioError, .argListTooLong, .permissionDenied,
                              .resourceBusy, .fileExists, .noSuchDevice, .notDirectory, .isDirectory,
                              .invalidArgument, .outOfRange, .addressInUse, .addressNotAvailable, .tooManyUsers,
                              .notSupported, .resourceTemporarilyUnavailable, .connectionRefused, .socketNotConnected]
        guard let e = known.first(where: { $0.symbol == symbol }) else { return nil }
        self = e
    }

    /// ENODEV; swift-system calls it `operationNotSupportedByDevice`.
    public static var noSuchDevice: Errno { .operationNotSupportedByDevice }
}
