import APMatrixModel
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

    public init(server: String, token: String? = nil) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.token = token
    }

    /// Sends one request for `route`; returns the body of a 2xx answer.
    func send(_ route: APIRoute, _ parameters: [String: String] = [:], query: String = "", body: [UInt8]? = nil,
              contentType: String = "application/json") async throws(APError) -> [UInt8] {
        let path = route.path(parameters) + query
        let http = try LocalHTTP(server: server)
        var headers: [(String, String)] = []
        let token = route.changesHost && !server.hasPrefix("unix:") ? self.token ?? TokenFile.find(for: server) : nil
        if let token {
            guard APIPattern.token.matches(token) else { throw APError(.invalidArgument, "token '\(token)' is not \(APIPattern.token.noun)") }
            headers.append(("Authorization", "Bearer \(token)"))
        }
        if body != nil { headers.append(("Content-Type", contentType)) }
        let status: UInt
        let bytes: [UInt8]
        do {
            (status, bytes) = try await http.exchange(HTTPMethod(rawValue: route.method.rawValue), path, headers: headers,
                                                      body: body, deadline: .seconds(60)) { status, body in
                (status, try await body.collect(upTo: 64 << 20))
            }
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
