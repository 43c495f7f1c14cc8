import APMatrixRuntime
import APMatrixModel
import Foundation
import Hummingbird

/// The control API (JSON over HTTP, described by openapi.yaml): everything
/// that is not sysfs. Each request becomes one runtime operation; a refusal
/// comes back as `{"error": {"errno": "EADDRINUSE", "code": 98, "message": …}}`.
public enum ControlAPI {
    public static let prefix = "/api/v1"

    public static func router(_ service: APIService) -> Router<BasicRequestContext> {
        let router = Router()
        let api = router.group(RouterPath(prefix))
        let runtime = service.runtime

        api.get("host") { _, _ in json(HostViews.host(runtime.snapshot, runtime)) }
        api.get("queues") { _, _ in json(HostViews.queues(runtime.snapshot)) }
        api.get("mdevs") { _, _ in json(HostViews.mdevs(runtime.snapshot)) }
        api.get("events") { request, _ in
            let after = request.uri.queryParameters.get("after").flatMap { Int($0) } ?? 0
            return json(runtime.log(after: after).map(HostViews.event))
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
        let sysfs = SysfsEndpoint(runtime)
        api.get("sysfs") { request, _ in
            respond {
                let path = request.uri.queryParameters.get("path") ?? ""
                let bytes = try sysfs.read("/" + path)
                return json(SysfsReadResponse(path: path, value: String(decoding: bytes, as: UTF8.self)))
            }
        }
        api.post("sysfs") { request, context in
            await respondAsync {
                let r = try await decode(SysfsWriteRequest.self, request, context)
                try sysfs.write("/" + r.path, Array(r.value.utf8))
                return json(Empty())
            }
        }

        addGuestRoutes(api, runtime)
        addStateRoutes(api, runtime)
        addFirmwareRoutes(api, runtime)
        WebUI.add(to: router, service)
        return router
    }

    static func addGuestRoutes(_ api: RouterGroup<BasicRequestContext>, _ runtime: Runtime) {
        /// The guest as it is after the request.
        @Sendable func guest(_ name: String) throws(APError) -> Response {
            let h = runtime.snapshot
            _ = try h.guest(name)
            return json(HostViews.guest(h, name, runtime, at: runtime.clock.now()))
        }
        api.get("guests") { _, _ in
            let h = runtime.snapshot, now = runtime.clock.now()
            return json(h.guests.keys.sorted().map { HostViews.guest(h, $0, runtime, at: now) })
        }
        api.post("guests") { request, context in
            await respondAsync {
                let r = try await decode(StartGuestRequest.self, request, context)
                let device = try r.device.map { d throws(APError) in try VfioAPDevice(qemuDevice: d) }
                let secure = try ConfidentialGuestSupport.isSecure(secure: r.secure ?? false, object: r.object, machine: r.machine)
                try runtime.startGuest(GuestStart(name: r.name, cpu: r.cpu, device: device, qmp: r.qmp, sysfsMount: r.sysfsMount,
                                                  secure: secure))
                var response = try guest(r.name)
                response.status = .created
                return response
            }
        }
        api.get("guests/:name") { _, context in respond { try guest(try parameter("name", context)) } }
        api.delete("guests/:name") { _, context in
            respond {
                try runtime.stopGuest(try parameter("name", context))
                return json(Empty())
            }
        }
        api.post("guests/:name/mount") { request, context in
            await respondAsync {
                let name = try parameter("name", context)
                let r = try await decode(GuestMountRequest.self, request, context)
                try runtime.mountGuestTree(name, directory: r.dir)
                var response = try guest(name)
                response.status = .created
                return response
            }
        }
        api.delete("guests/:name/mount") { _, context in
            respond {
                let name = try parameter("name", context)
                try runtime.unmountGuestTree(name)
                return try guest(name)
            }
        }
        api.post("guests/:name/devices") { request, context in
            await respondAsync {
                let name = try parameter("name", context)
                let r = try await decode(PlugRequest.self, request, context)
                try plug(runtime, name, try VfioAPDevice(sysfsdev: r.sysfsdev, id: r.id))
                return try guest(name)
            }
        }
        api.delete("guests/:name/devices/:id") { _, context in
            respond {
                let name = try parameter("name", context)
                try unplug(runtime, name, id: try parameter("id", context))
                return try guest(name)
            }
        }
        // `virsh attach-device NAME FILE` / `detach-device` with a vfio-ap hostdev.
        api.post("guests/:name/hostdev") { request, context in
            await respondAsync {
                let name = try parameter("name", context)
                let uuid = try HostdevXML.parse(try await body(request))
                try plug(runtime, name, try VfioAPDevice(sysfsdev: "/sys/bus/mdev/devices/\(uuid)", id: "hostdev0"))
                return try guest(name)
            }
        }
        api.post("guests/:name/hostdev/detach") { request, context in
            await respondAsync {
                let name = try parameter("name", context)
                let uuid = try HostdevXML.parse(try await body(request))
                guard let d = try runtime.snapshot.guest(name).device, d.mdev == uuid else {
                    throw APError(.noSuchFileOrDirectory, "guest \(name) has no hostdev for mdev \(uuid)")
                }
                try unplug(runtime, name, id: d.id)
                return try guest(name)
            }
        }
        api.post("guests/:name/migrate") { request, context in
            await respondAsync {
                let r = try await decode(MigrateRequest.self, request, context)
                try await Migration.migrate(runtime, try parameter("name", context), r)
                return json(Empty())
            }
        }
    }

    static func plug(_ runtime: Runtime, _ name: String, _ d: VfioAPDevice) throws(APError) {
        try runtime.perform("device_plug") { (h: inout APHost) throws(APError) in try h.plugDevice(name, d) }
    }

    static func unplug(_ runtime: Runtime, _ name: String, id: String) throws(APError) {
        try runtime.perform("device_unplug") { (h: inout APHost) throws(APError) in _ = try h.unplugDevice(name, id: id) }
    }

    static func addFirmwareRoutes(_ api: RouterGroup<BasicRequestContext>, _ runtime: Runtime) {
        api.post("host/adapters") { request, context in
            await respondAsync {
                let r = try await decode(AdapterRequest.self, request, context)
                guard let type = AdapterType(r.type) else {
                    throw APError(.invalidArgument, "type \(r.type): one of \(AdapterType.supportedNames.joined(separator: ", "))")
                }
                let domains: Bitmap256<APQI>?
                do { domains = try r.domains.map { d throws(IdList.ParseError) in try IdList.parse(d) } } catch {
                    throw APError(.invalidArgument, "domains: \(error)")
                }
                try runtime.perform("adapter_add") { (h: inout APHost) throws(APError) in try h.addAdapter(r.id, type: type, domains: domains) }
                return json(Empty(), status: .created)
            }
        }
        api.delete("host/adapters/:id") { _, context in
            respond {
                let id: APID = try id(parameter("id", context))
                try runtime.perform("adapter_remove") { (h: inout APHost) throws(APError) in try h.removeAdapter(id) }
                return json(Empty())
            }
        }
        let domainKinds: [(path: String, noun: String, add: @Sendable (inout APHost, APQI) throws(APError) -> Void,
                           remove: @Sendable (inout APHost, APQI) throws(APError) -> Void)] = [
            ("host/domains", "domain", { h, id throws(APError) in try h.addDomain(id) }, { h, id throws(APError) in try h.removeDomain(id) }),
            ("host/control-domains", "control_domain", { h, id throws(APError) in try h.addControlDomain(id) },
             { h, id throws(APError) in try h.removeControlDomain(id) }),
        ]
        for kind in domainKinds {
            api.post(RouterPath(kind.path)) { request, context in
                await respondAsync {
                    let id = try await decode(DomainRequest.self, request, context).id
                    try runtime.perform(kind.noun + "_add") { (h: inout APHost) throws(APError) in try kind.add(&h, id) }
                    return json(Empty(), status: .created)
                }
            }
            api.delete(RouterPath(kind.path + "/:id")) { _, context in
                respond {
                    let id: APQI = try id(parameter("id", context))
                    try runtime.perform(kind.noun + "_remove") { (h: inout APHost) throws(APError) in try kind.remove(&h, id) }
                    return json(Empty())
                }
            }
        }
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
