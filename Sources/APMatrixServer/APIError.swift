import APMatrixModel
import Foundation
import Hummingbird
import SystemPackage

/// A refusal as the API answers it: an HTTP status, and the errno and
/// message in `{"error": {"errno", "code", "message"}}` (openapi.yaml's
/// `Error`). A refusal of the runtime (the kernel, QEMU, the firmware) takes
/// its status from its errno (`status(for:)`); the edge's own refusals, a
/// request the schema refuses and a request without the right to write,
/// name theirs.
public struct APIError: HTTPResponseError, Equatable {
    public let status: HTTPResponse.Status
    public let error: APError
    var headers: HTTPFields = [:]

    init(status: HTTPResponse.Status, _ error: APError, headers: HTTPFields = [:]) {
        self.status = status
        self.error = error
        self.headers = headers
    }

    /// A refusal of the runtime, with the status its errno maps to.
    public init(_ error: APError) {
        self.init(status: Self.status(for: error.errno), error)
    }

    /// The one mapping from errno to HTTP status (README "Status codes").
    public static func status(for errno: Errno) -> HTTPResponse.Status {
        switch errno {
        // A missing object: a path, a guest, an mdev, a device id.
        case .noSuchFileOrDirectory, .notDirectory: return .notFound
        // The kernel's (or QEMU's) own parser refused input the schema allows.
        case .invalidArgument, .outOfRange, .argListTooLong, .isDirectory: return .unprocessableContent
        // The host's state refuses it: in use, taken, reserved, no instance
        // left, or an id above the maximum or a device the state lacks (ENODEV).
        case .addressInUse, .addressNotAvailable, .resourceBusy, .fileExists, .notPermitted, .tooManyUsers, .noSuchDevice:
            return .conflict
        // Not allowed: an attribute's mode.
        case .permissionDenied: return .forbidden
        case .notSupported: return .notImplemented
        // Another daemon (a migration target) did not answer.
        case .connectionRefused: return .badGateway
        default: return .internalServerError
        }
    }

    /// A request that openapi.yaml's schema refuses.
    static func badRequest(_ message: String) -> APIError {
        APIError(status: .badRequest, APError(.invalidArgument, message))
    }

    /// A method the path does not have (`Allow` lists those it has).
    static func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) -> APIError {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        return APIError(status: .methodNotAllowed, APError(.notSupported, "\(method.rawValue) is not an operation of this path; it has \(allow)"),
                        headers: [.allow: allow])
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = ErrorDTO(error: .init(errno: error.errno.symbol, code: error.errno.rawValue, message: error.message))
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: APIJSON.encode(body))))
    }
}

/// The runtime's refusals leave a handler as they are and become responses here.
extension APError: HTTPResponseError {
    public var status: HTTPResponse.Status { APIError.status(for: errno) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try APIError(self).response(from: request, context: context)
    }
}

/// Answers 405 with `Allow` for a method a known path lacks (the router
/// alone answers 404 for it), whatever the method.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound {
            let allowed = APIRoute.methods(at: request.uri.path)
            guard !allowed.isEmpty else {
                throw APIError(status: .notFound, APError(.noSuchFileOrDirectory, "no such path: \(request.uri.path)"))
            }
            throw APIError.methodNotAllowed(request.method, allowed: allowed.contains(.get) ? allowed + [.head] : allowed)
        }
    }
}

/// The API's JSON: keys sorted (stable output), slashes as they are.
enum APIJSON {
    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        // Encoding the API's own documents cannot fail: no floats that are not finite, no non-string keys.
        Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
