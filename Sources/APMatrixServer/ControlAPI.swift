import APMatrixModel
import APMatrixRuntime
import APMatrixSysfs
import Foundation
import Hummingbird

/// The control API (JSON over HTTP, described by openapi.yaml) and the web
/// page around it. Each handler parses its input to typed values at the
/// edge (a refusal there is 400), calls one runtime operation and maps the
/// answer; a refusal of the runtime answers with its errno and the status
/// that goes with it (`APIError.status(for:)`).
public enum ControlAPI {
    public static func router(_ service: APIService) -> Router<APIContext> {
        let router = Router(context: APIContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: MethodNotAllowedMiddleware())
        let routes = Routes(router, service.access)
        addHostRoutes(routes, service)
        addGuestRoutes(routes, service.runtime)
        addFirmwareRoutes(routes, service.runtime)
        WebUI.add(routes, service)
        routes.checkAllRegistered()
        return router
    }

    static func addHostRoutes(_ r: Routes, _ service: APIService) {
        let runtime = service.runtime
        r.on(.host) { _, _ in HostViews.host(runtime.snapshot, service) }
        r.on(.queues) { _, _ in HostViews.queues(runtime.snapshot) }
        r.on(.mdevs) { _, _ in HostViews.mdevs(runtime.snapshot) }
        r.on(.check) { _, _ in HostViews.check(runtime.snapshot, runtime) }
        r.on(.events) { request, _ in
            let after = try request.query("after", .sequence).flatMap { Int($0) } ?? 0
            return runtime.log(after: after).map(HostViews.event)
        }
        r.on(.document) { _, _ in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources"),
                  let data = try? Data(contentsOf: url) else {
                throw APError(.ioError, "openapi.yaml is missing from the installation's resources")
            }
            return Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        // sysfs through the API: the same store as a write to the mount.
        let sysfs = SysfsEndpoint(runtime)
        r.on(.readSysfs) { request, _ in
            guard let path = try request.query("path", .sysfsPath) else { throw APIError.badRequest("path is required") }
            return SysfsReadResponse(path: path, value: String(decoding: try sysfs.read(try sysfs.opened(path)), as: UTF8.self))
        }
        r.on(.writeSysfs) { request, _ in
            let w = try await SysfsWriteRequest.decode(request)
            try sysfs.write(try sysfs.opened(w.path), Array(w.value.utf8))
            return Empty()
        }
    }

    static func addFirmwareRoutes(_ r: Routes, _ runtime: Runtime) {
        r.on(.addAdapter) { request, _ in
            let a = try await AdapterRequest.decode(request)
            let type = AdapterType(a.type)!
            let domains: Bitmap256<APQI>?
            do { domains = try a.domains.map { d throws(IdList.ParseError) in try IdList.parse(d) } } catch {
                throw APError(.invalidArgument, "domains '\(a.domains ?? "")': \(error)")
            }
            try runtime.perform("adapter_add") { (h: inout APHost) throws(APError) in try h.addAdapter(APID(exactly: a.id)!, type: type, domains: domains) }
            return EditedResponse(status: .created, response: Empty())
        }
        r.on(.removeAdapter) { _, context in
            let id: APID = try context.id()
            try runtime.perform("adapter_remove") { (h: inout APHost) throws(APError) in try h.removeAdapter(id) }
            return Empty()
        }
        for kind in DomainKind.allCases {
            r.on(.addDomain(kind)) { request, _ in
                let id = APQI(exactly: try await DomainRequest.decode(request).id)!
                try runtime.perform(kind.metricsName + "_add") { (h: inout APHost) throws(APError) in try kind.add(id, to: &h) }
                return EditedResponse(status: .created, response: Empty())
            }
            r.on(.removeDomain(kind)) { _, context in
                let id: APQI = try context.id()
                try runtime.perform(kind.metricsName + "_remove") { (h: inout APHost) throws(APError) in try kind.remove(id, from: &h) }
                return Empty()
            }
        }
    }
}

extension DomainKind {
    func add(_ id: APQI, to h: inout APHost) throws(APError) {
        if self == .usage { try h.addDomain(id) } else { try h.addControlDomain(id) }
    }

    func remove(_ id: APQI, from h: inout APHost) throws(APError) {
        if self == .usage { try h.removeDomain(id) } else { try h.removeControlDomain(id) }
    }
}

extension SysfsEndpoint {
    /// The absolute path of the attribute at `path` below the mount, as an
    /// `open` on the mount finds it: ENOENT when nothing is there (symlinks
    /// are not followed: give the path `realpath` gives), EISDIR for a directory.
    func opened(_ path: String) throws(APError) -> String {
        let absolute = "/" + path
        switch node(absolute) {
        case .attribute?: return absolute
        case .directory?: throw APError(.isDirectory, "\(path) is a directory")
        case .symlink?: throw APError(.noSuchFileOrDirectory, "\(path) is a symlink; give the path it resolves to")
        case nil: throw APError(.noSuchFileOrDirectory, "\(path): no such file")
        }
    }
}

/// Registers the handlers by their `APIRoute`: those that change the host
/// behind the writer check, the others open to everyone.
final class Routes {
    let reads: Router<APIContext>
    let writes: RouterGroup<APIContext>
    var registered: Set<APIRoute> = []

    init(_ router: Router<APIContext>, _ access: WriteAccess) {
        reads = router
        writes = router.group().add(middleware: WriterAuthenticator(access: access))
    }

    func on(_ route: APIRoute, _ handler: @escaping @Sendable (Request, APIContext) async throws -> some ResponseGenerator) {
        registered.insert(route)
        if route.changesHost {
            writes.on(RouterPath(route.path), method: route.method, use: handler)
        } else {
            reads.on(RouterPath(route.path), method: route.method, use: handler)
        }
    }

    /// The route table and the handlers are one list: a route without a
    /// handler would be a documented operation that answers 405.
    func checkAllRegistered() {
        let missing = Set(APIRoute.all).subtracting(registered)
        precondition(missing.isEmpty, "routes without a handler: \(missing)")
    }
}
