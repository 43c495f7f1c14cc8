import APMatrixModel
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SystemPackage

/// A client of the control API, used by the CLI and by a daemon that
/// migrates a guest to another: one typed method per operation
/// (`APIClient+Operations.swift`), the paths from `APIRoute`. Refusals come
/// back as the server's errno and message.
public struct APIClient: Sendable {
    /// `http://HOST:PORT` or `unix:PATH`.
    public let server: String
    /// The daemon's write token (`--token`, `APMATRIX_TOKEN`); without one, a
    /// write looks for the daemon's token file, which a daemon of this user
    /// on this machine wrote (`TokenFile`). A unix socket needs none: the
    /// daemon asks the kernel who is connecting.
    let token: String?

    /// One shared client that fails at once when nobody listens (the
    /// default pool retries connecting until the request's deadline).
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public init(server: String, token: String? = nil) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.token = token
    }

    func url(_ path: String) throws(APError) -> String {
        if server.hasPrefix("unix:") {
            let socket = String(server.dropFirst(5))
            guard let u = URL(httpURLWithSocketPath: socket, uri: path) else {
                throw APError(.invalidArgument, "--server \(server): not a usable unix socket path")
            }
            return u.absoluteString
        }
        guard server.hasPrefix("http://") || server.hasPrefix("https://") else {
            throw APError(.invalidArgument, "--server \(server): use http://HOST:PORT or unix:PATH")
        }
        return server + path
    }

    /// Sends one request for `route`; returns the body of a 2xx answer.
    func send(_ route: APIRoute, _ parameters: [String: String] = [:], query: String = "", body: [UInt8]? = nil,
              contentType: String = "application/json") async throws(APError) -> [UInt8] {
        let path = route.path(parameters) + query
        var request = HTTPClientRequest(url: try url(path))
        request.method = HTTPMethod(rawValue: route.method.rawValue)
        let token = route.changesHost && !server.hasPrefix("unix:") ? self.token ?? TokenFile.find(for: server) : nil
        if let token {
            guard APIPattern.token.matches(token) else { throw APError(.invalidArgument, "token '\(token)' is not \(APIPattern.token.noun)") }
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let status: UInt
        let bytes: [UInt8]
        do {
            let response = try await Self.http.execute(request, timeout: .seconds(60))
            status = response.status.code
            bytes = Array(buffer: try await response.body.collect(upTo: 64 << 20))
        } catch {
            throw APError(.connectionRefused, "cannot reach apmatrix at \(server) (\(error)); is `apmatrix serve` running there?")
        }
        guard (200..<300).contains(status) else {
            guard let e = try? JSONDecoder().decode(ErrorDTO.self, from: Data(bytes)) else {
                throw APError(.ioError, "\(server)\(path): HTTP \(status) \(String(decoding: bytes.prefix(200), as: UTF8.self))")
            }
            var message = e.error.message
            if status == 401 && token == nil {
                message += "; no token file for \(server) in \(TokenFile.directory())/: pass --token or set APMATRIX_TOKEN"
            }
            throw APError(Errno(symbol: e.error.errno) ?? Errno(rawValue: e.error.code), message)
        }
        return bytes
    }

    /// Sends a request whose body and answer are JSON documents.
    func call<T: Decodable>(_ route: APIRoute, _ parameters: [String: String] = [:], query: String = "",
                            json body: (some Encodable)? = nil as Empty?) async throws(APError) -> T {
        let bytes = try body.map { b throws(APError) in try encode(b) }
        return try decode(try await send(route, parameters, query: query, body: bytes))
    }

    func encode<B: Encodable>(_ body: B) throws(APError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(body)) } catch {
            throw APError(.invalidArgument, "cannot encode the request: \(error)")
        }
    }

    func decode<T: Decodable>(_ bytes: [UInt8]) throws(APError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw APError(.ioError, "unexpected answer from \(server): \(error)")
        }
    }
}
