import APMatrixModel
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SystemPackage

/// A client of the control API, used by the CLI and by a daemon that
/// migrates a guest to another. Errors come back as the server's errno and message.
public struct APIClient: Sendable {
    /// `http://HOST:PORT` or `unix:PATH`.
    public let server: String

    /// One shared client that fails at once when nobody listens (the
    /// default pool retries connecting until the request's deadline).
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public init(server: String) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
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

    /// Sends one request; returns the body of a 2xx answer.
    public func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil,
                     contentType: String = "application/json") async throws(APError) -> [UInt8] {
        var request = HTTPClientRequest(url: try url(path))
        request.method = method
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
            if let e = try? JSONDecoder().decode(ErrorDTO.self, from: Data(bytes)) {
                throw APError(Errno(symbol: e.error.errno) ?? Errno(rawValue: e.error.code), e.error.message)
            }
            throw APError(.ioError, "\(server)\(path): HTTP \(status) \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        return bytes
    }

    public func get<T: Decodable>(_ path: String, as: T.Type = T.self) async throws(APError) -> T {
        try decode(try await send(.GET, path))
    }

    public func post<T: Decodable, B: Encodable>(_ path: String, _ body: B, as: T.Type = T.self) async throws(APError) -> T {
        try decode(try await send(.POST, path, body: encode(body)))
    }

    public func encode<B: Encodable>(_ body: B) throws(APError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(body)) } catch {
            throw APError(.invalidArgument, "cannot encode the request: \(error)")
        }
    }

    public func decode<T: Decodable>(_ bytes: [UInt8]) throws(APError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw APError(.ioError, "unexpected answer from \(server): \(error)")
        }
    }
}

/// An empty JSON object, for endpoints that answer `{}`.
public struct Empty: Codable, Sendable {
    public init() {}
}
