import APMatrixModel
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request on its own connection to a daemon's control API, over
/// TCP or a unix socket. The API is plain HTTP (the daemon serves no TLS), so
/// the client is SwiftNIO's HTTP/1 codec alone: no connection pool, and no
/// TLS library for a build of the CLI to compile.
struct LocalHTTP: Sendable {
    enum Address: Sendable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    let address: Address
    /// The `Host` header: the address as the user gave it.
    let authority: String

    /// `http://HOST:PORT` (an IPv6 host in brackets) or `unix:PATH`.
    init(server: String) throws(APError) {
        if server.hasPrefix("unix:") {
            let path = String(server.dropFirst(5))
            guard !path.isEmpty, path.utf8.count < 108 else {
                throw APError(.invalidArgument, "--server \(server): not a usable unix socket path")
            }
            (address, authority) = (.unix(path: path), "localhost")
            return
        }
        guard server.hasPrefix("http://") else {
            throw APError(.invalidArgument, "--server \(server): use http://HOST:PORT or unix:PATH")
        }
        let hostPort = String(server.dropFirst(7))
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]),
              (1...65535).contains(port), colon > hostPort.startIndex else {
            throw APError(.invalidArgument, "--server \(server): use http://HOST:PORT or unix:PATH")
        }
        var host = hostPort[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        (address, authority) = (.tcp(host: String(host), port: port), hostPort)
    }

    /// The answer's body as it arrives.
    struct Body {
        var parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator

        /// The next chunk; nil at the end of the answer.
        mutating func next() async throws -> ByteBuffer? {
            while let part = try await parts.next() {
                switch part {
                case .body(let chunk): return chunk
                case .end: return nil
                case .head: continue
                }
            }
            return nil
        }

        mutating func collect(upTo limit: Int) async throws(APError) -> [UInt8] {
            var bytes: [UInt8] = []
            do {
                while let chunk = try await next() {
                    bytes += chunk.readableBytesView
                    guard bytes.count <= limit else { throw APError(.fileTooLarge, "the answer is over \(limit) bytes") }
                }
            } catch let e as APError {
                throw e
            } catch {
                throw APError(.connectionReset, "the connection ended inside the answer (\(error))")
            }
            return bytes
        }
    }

    /// Sends one request and hands the answer's status and body to `answer`.
    /// With a `deadline`, the connection is closed when it passes: `answer`
    /// then sees the body end early. A connection the daemon closed, without
    /// an answer, before the request was written (it never saw it) is tried
    /// again, twice at most, as a pooled client retries a request it could
    /// not send.
    func exchange<R>(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                     deadline: TimeAmount? = nil, _ answer: (UInt, inout Body) async throws -> R) async throws -> R {
        var attempt = 1
        while true {
            do {
                return try await exchangeOnce(method, uri, headers: headers, body: body, deadline: deadline, answer)
            } catch NotSent.closed(let error) {
                guard attempt < 3 else { throw error }
                attempt += 1
                try await Task.sleep(for: .milliseconds(20 * attempt))
            }
        }
    }

    /// The connection closed, without an answer, while the request was being written.
    private enum NotSent: Error { case closed(any Error) }

    private func exchangeOnce<R>(_ method: HTTPMethod, _ uri: String, headers: [(String, String)], body: [UInt8]?,
                                 deadline: TimeAmount?, _ answer: (UInt, inout Body) async throws -> R) async throws -> R {
        let initializer: @Sendable (Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
            }
        }
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(.seconds(5))
        let connection = switch address {
        case .tcp(let host, let port): try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
        case .unix(let path): try await bootstrap.connect(to: try SocketAddress(unixDomainSocketPath: path), channelInitializer: initializer)
        }
        let channel = connection.channel
        let timer = deadline.map { channel.eventLoop.scheduleTask(in: $0) { channel.close(promise: nil) } }
        defer { timer?.cancel() }
        return try await connection.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
            head.headers.add(name: "Host", value: authority)
            head.headers.add(name: "Connection", value: "close")
            head.headers.add(name: "Content-Length", value: "\(body?.count ?? 0)")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            // The daemon may answer (a refusal, or a whole answer to a request
            // without a body) and close before the last part is written: its
            // answer is read all the same.
            var unsent: (any Error)?
            do {
                try await outbound.write(contentsOf: [.head(head)] + (body.map { [.body(.byteBuffer(ByteBuffer(bytes: $0)))] } ?? []) + [.end(nil)])
            } catch {
                unsent = error
            }
            var parts = inbound.makeAsyncIterator()
            guard case .head(let response)? = try await parts.next() else {
                if let unsent { throw NotSent.closed(unsent) }
                throw APError(.connectionReset, "the connection ended before an answer")
            }
            var body = Body(parts: parts)
            return try await answer(response.status.code, &body)
        }
    }
}
