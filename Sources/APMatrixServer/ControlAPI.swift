import APMatrixEmulator
import APMatrixModel
import Foundation
import Hummingbird

/// The control API (JSON over HTTP, described by openapi.yaml): everything
/// that is not sysfs. Each request becomes one daemon operation; a refusal
/// comes back as `{"error": {"errno": "EADDRINUSE", "code": 98, "message": …}}`.
public enum ControlAPI {
    public static let prefix = "/api/v1"

    public static func router(_ daemon: Daemon) -> Router<BasicRequestContext> {
        let router = Router()
        let api = router.group(RouterPath(prefix))

        api.get("host") { _, _ in json(daemon.hostDTO()) }
        api.get("queues") { _, _ in json(daemon.queueDTOs()) }
        api.get("mdevs") { _, _ in json(daemon.hostDTO().mdevs) }
        api.get("events") { request, _ in
            let after = request.uri.queryParameters.get("after").flatMap { Int($0) } ?? 0
            return json(daemon.events(after: after))
        }
        api.get("openapi.yaml") { _, _ in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources"),
                  let data = try? Data(contentsOf: url) else {
                return Response(status: .internalServerError)
            }
            return Response(status: .ok, headers: [.contentType: "application/yaml"],
                             body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        // sysfs through the API: the same model operation as a write to the mount.
        api.get("sysfs") { request, _ in
            respond {
                let path = request.uri.queryParameters.get("path") ?? ""
                let bytes = try daemon.emulator.read("/" + path)
                return json(SysfsReadResponse(path: path, value: String(decoding: bytes, as: UTF8.self)))
            }
        }
        api.post("sysfs") { request, context in
            await respondAsync {
                let r = try await decode(SysfsWriteRequest.self, request, context)
                try daemon.emulator.write("/" + r.path, Array(r.value.utf8))
                return json(Empty())
            }
        }

        api.get("guests") { _, _ in json(daemon.hostDTO().guests) }
        api.post("guests") { request, context in
            await respondAsync {
                let r = try await decode(StartGuestRequest.self, request, context)
                return json(try daemon.startGuest(r), status: .created)
            }
        }
        api.get("guests/:name") { _, context in
            respond { json(try daemon.guestDTO(try parameter("name", context))) }
        }
        api.delete("guests/:name") { _, context in
            respond {
                try daemon.stopGuest(try parameter("name", context))
                return json(Empty())
            }
        }
        api.post("guests/:name/mount") { request, context in
            await respondAsync {
                let r = try await decode(GuestMountRequest.self, request, context)
                return json(try daemon.mountGuestTree(try parameter("name", context), dir: r.dir), status: .created)
            }
        }
        api.delete("guests/:name/mount") { _, context in
            respond { json(try daemon.unmountGuestTree(try parameter("name", context))) }
        }
        api.post("guests/:name/devices") { request, context in
            await respondAsync {
                let r = try await decode(PlugRequest.self, request, context)
                return json(try daemon.plug(try parameter("name", context), r))
            }
        }
        api.delete("guests/:name/devices/:id") { _, context in
            respond { json(try daemon.unplug(try parameter("name", context), id: try parameter("id", context))) }
        }
        api.post("guests/:name/hostdev") { request, context in
            await respondAsync {
                let xml = try await body(request)
                return json(try daemon.attachHostdev(try parameter("name", context), xml: xml))
            }
        }
        api.post("guests/:name/hostdev/detach") { request, context in
            await respondAsync {
                let xml = try await body(request)
                return json(try daemon.detachHostdev(try parameter("name", context), xml: xml))
            }
        }
        api.post("guests/:name/migrate") { request, context in
            await respondAsync {
                let r = try await decode(MigrateRequest.self, request, context)
                try await daemon.migrate(try parameter("name", context), r)
                return json(Empty())
            }
        }

        addStateRoutes(api, daemon)
        api.post("host/adapters") { request, context in
            await respondAsync {
                try daemon.addAdapter(try await decode(AdapterRequest.self, request, context))
                return json(Empty(), status: .created)
            }
        }
        api.delete("host/adapters/:id") { _, context in
            respond {
                try daemon.removeAdapter(try id(parameter("id", context)))
                return json(Empty())
            }
        }
        api.post("host/domains") { request, context in
            await respondAsync {
                try daemon.addDomain(try await decode(DomainRequest.self, request, context).id)
                return json(Empty(), status: .created)
            }
        }
        api.delete("host/domains/:id") { _, context in
            respond {
                try daemon.removeDomain(try id(parameter("id", context)))
                return json(Empty())
            }
        }
        api.post("host/control-domains") { request, context in
            await respondAsync {
                try daemon.addControlDomain(try await decode(DomainRequest.self, request, context).id)
                return json(Empty(), status: .created)
            }
        }
        api.delete("host/control-domains/:id") { _, context in
            respond {
                try daemon.removeControlDomain(try id(parameter("id", context)))
                return json(Empty())
            }
        }
        WebUI.add(to: router, daemon)
        return router
    }

    // MARK: helpers

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The HTTP status that goes with an errno.
    static func status(_ e: APError) -> HTTPResponse.Status {
        switch e.errno {
        case .invalidArgument, .outOfRange, .argListTooLong: return .badRequest
        case .noSuchFileOrDirectory, .noSuchDevice: return .notFound
        case .fileExists, .resourceBusy, .addressInUse, .addressNotAvailable: return .conflict
        case .notPermitted, .permissionDenied, .tooManyUsers: return .forbidden
        case .notSupported: return .notImplemented
        case .connectionRefused: return .badGateway
        default: return .internalServerError
        }
    }

    static func error(_ e: APError) -> Response {
        json(ErrorDTO(error: .init(errno: e.errno.symbol, code: e.errno.rawValue, message: e.message)), status: status(e))
    }

    // Closure literals cannot declare typed throws by inference; every error
    // thrown in a handler is an APError from the daemon or the helpers below.
    static func respond(_ body: () throws -> Response) -> Response {
        do { return try body() } catch { return self.error(error as? APError ?? APError(.ioError, "\(error)")) }
    }

    static func respondAsync(_ body: () async throws -> Response) async -> Response {
        do { return try await body() } catch { return self.error(error as? APError ?? APError(.ioError, "\(error)")) }
    }

    static func parameter(_ name: String, _ context: BasicRequestContext) throws(APError) -> String {
        guard let v = context.parameters.get(name) else { throw APError(.invalidArgument, "missing \(name)") }
        return v
    }

    /// An id in a URL: decimal or 0x hex.
    static func id<ID: APIdentifier>(_ text: String) throws(APError) -> ID {
        do throws(IdList.ParseError) { return try ID(parsing: text) } catch {
            throw APError(.invalidArgument, "\(error)")
        }
    }

    static func body(_ request: Request) async throws(APError) -> [UInt8] {
        do { return Array(buffer: try await request.body.collect(upTo: 1 << 20)) } catch {
            throw APError(.argListTooLong, "request body too large or unreadable (at most 1 MiB)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: BasicRequestContext) async throws(APError) -> T {
        let bytes = try await body(request)
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw APError(.invalidArgument, "request body is not a valid \(T.self): \(error)")
        }
    }
}
