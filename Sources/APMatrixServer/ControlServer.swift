import APMatrixModel
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The control API's HTTP server, run next to the FUSE mount by `serve`.
public final class ControlServer: Sendable {
    let group: ServiceGroup
    let service: APIService
    /// The listening address once bound: `http://127.0.0.1:7807` or `unix:PATH`.
    public let address: AsyncStream<String>
    let continuation: AsyncStream<String>.Continuation

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
        let app = Application(
            router: ControlAPI.router(service),
            configuration: .init(address: bind, serverName: "apmatrix"),
            onServerRunning: { channel in
                if let unixPath {
                    continuation.yield("unix:\(unixPath)")
                } else {
                    let a = channel.localAddress
                    let host = a?.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? "127.0.0.1"
                    continuation.yield("http://\(host):\(a?.port ?? 0)")
                }
                continuation.finish()
            },
            logger: logger)
        group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
    }

    /// Serves until `shutdown()`. If the server cannot start, `address` ends
    /// without a value and the error is thrown here.
    public func run() async throws {
        defer { continuation.finish() }
        try await group.run()
    }

    public func shutdown() async {
        service.eventStreams.finishAll()
        await group.triggerGracefulShutdown()
    }
}
