import APMatrixModel
import Glibc
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The control API's HTTP server, run next to the FUSE mount by `serve`.
/// On TCP it writes the daemon's token file once bound (`TokenFile`) and
/// removes it when it stops.
public final class ControlServer: Sendable {
    let group: ServiceGroup
    let service: APIService
    /// The listening address once bound and ready for clients:
    /// `http://127.0.0.1:7807` or `unix:PATH`.
    public let address: AsyncStream<String>
    let continuation: AsyncStream<String>.Continuation
    let startup = Startup()

    /// What binding left: the TCP address (`127.0.0.1:7807`) whose token
    /// file exists, or why the server is not ready.
    final class Startup: Sendable {
        let tokenAddress = Mutex<String?>(nil)
        let failure = Mutex<APError?>(nil)
    }

    /// `listen`: `HOST:PORT` (port 0 picks a free one) or `unix:PATH`.
    public init(service: APIService, listen: String, logger: Logger) throws(APError) {
        let bind: BindAddress
        let unixPath: String? = listen.hasPrefix("unix:") ? String(listen.dropFirst(5)) : nil
        if let unixPath {
            bind = .unixDomainSocket(path: unixPath)
        } else {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                  (0...65535).contains(port) else {
                throw APError(.invalidArgument, "--listen \(listen): use HOST:PORT (port 0 picks a free port) or unix:PATH")
            }
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            bind = .hostname(host, port: port)
        }
        self.service = service
        let (stream, continuation) = AsyncStream<String>.makeStream()
        address = stream
        self.continuation = continuation
        let token = service.access.token
        let app = Application(
            router: ControlAPI.router(service),
            configuration: .init(address: bind, serverName: "apmatrix"),
            onServerRunning: { [startup] channel in
                defer { continuation.finish() }
                if let unixPath {
                    // Anyone may connect and read, as anyone reads sysfs; the peer's credentials decide about changes.
                    chmod(unixPath, 0o666)
                    continuation.yield("unix:\(unixPath)")
                    return
                }
                let a = channel.localAddress
                let address = "\(a?.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? "127.0.0.1"):\(a?.port ?? 0)"
                do throws(APError) {
                    _ = try TokenFile.write(token, for: address)
                    startup.tokenAddress.withLock { $0 = address }
                    continuation.yield("http://\(address)")
                } catch {
                    startup.failure.withLock { $0 = error }
                }
            },
            logger: logger)
        group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
    }

    /// Why the server bound but is not ready (its token file could not be written).
    public var startFailure: APError? { startup.failure.withLock { $0 } }

    /// The page's address with the token, for the browser; nil on a unix socket.
    public var pageURL: String? {
        startup.tokenAddress.withLock { $0 }.map { "http://\($0)/?token=\(service.access.token)" }
    }

    /// Serves until `shutdown()`. If the server cannot start, `address` ends
    /// without a value and the error is thrown here.
    public func run() async throws {
        defer {
            continuation.finish()
            if let address = startup.tokenAddress.withLock({ $0 }) { TokenFile.remove(for: address) }
        }
        try await group.run()
    }

    public func shutdown() async {
        service.eventStreams.finishAll()
        await group.triggerGracefulShutdown()
    }
}
