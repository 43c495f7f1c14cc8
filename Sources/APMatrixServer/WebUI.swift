import APMatrixRuntime
import APMatrixModel
import Foundation
import Hummingbird

/// One cell of the AP matrix as the web page shows it (`APHost.apqnInfo`).
public struct CellDTO: ResponseCodable, Sendable, Equatable {
    public var apqn: APQN
    public var apid: APID
    public var apqi: APQI
    /// `host`, `free`, `unbound`, `absent`, `assigned`, `in-guest`, `filtered`, `over-provisioned` (`APQNState.name`).
    public var state: String
    public var mdev: MdevUUID?
    public var guest: String?
    /// `cex4queue`, `vfio_ap`, `none` (unbound), or absent when no queue device exists.
    public var driver: String?
    /// `host`, `guest NAME` or `none`.
    public var owner: String
    /// Only from `GET /api/v1/cells/{apqn}`; the matrix leaves it out to stay small.
    public var explanation: String?

    init(_ c: APQNInfo, explained: Bool) {
        apqn = c.apqn
        apid = c.apqn.apid
        apqi = c.apqn.apqi
        state = c.state.name
        mdev = c.state.mdev
        guest = c.state.guest
        driver = c.hasDevice ? c.driver?.rawValue ?? "none" : nil
        owner = c.owner.description
        explanation = explained ? c.explanation : nil
    }
}

/// The matrix the page draws: the ids in use and every cell among them that
/// is in the host configuration or assigned (the page draws the rest as
/// absent, and all 256×256 on demand).
public struct MatrixViewDTO: ResponseCodable, Sendable, Equatable {
    /// The largest APID and APQI an mdev takes: the grid's size when showing all.
    public var maxAdapter: APID
    public var maxDomain: APQI
    /// The LPAR's adapters and usage domains, and every id assigned to an mdev.
    public var adapters: [APID]
    public var domains: [APQI]
    /// The masks as id lists (`0-4,7-255`); the hex form is in `GET /host`.
    public var apmaskIDs: String
    public var aqmaskIDs: String
    public var cells: [CellDTO]
}

/// The web page (`GET /`), its files, its data (`/api/v1/matrix`,
/// `/api/v1/cells/…`), the live event stream and `/metrics`. Actions on the
/// page go through the API's own operations: `POST /api/v1/sysfs` (the same
/// store as a write to the mount) and the guest operations, with the token
/// the page keeps in a cookie.
enum WebUI {
    /// The page's files, served from the bundle (no CDN, no build step).
    static let assets: [String: String] = [
        "index.html": "text/html; charset=utf-8",
        "app.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
    ]

    static func add(_ r: Routes, _ service: APIService) {
        let runtime = service.runtime
        r.on(.page) { request, context in try page(request, context, service.access) }
        r.on(.asset) { _, context in try asset(context.parameters.get("file") ?? "") }
        r.on(.metrics) { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: service.metrics.render(runtime.snapshot))))
        }
        r.on(.matrix) { _, _ in matrix(runtime.snapshot) }
        r.on(.cell) { _, context in
            let name = try context.parameter("apqn", .apqn)
            return CellDTO(runtime.snapshot.apqnInfo(APQN(sysfsName: name)!), explained: true)
        }
        EventStream.add(r, service)
    }

    /// The page. Opened with `?token=` (the URL serve prints), it keeps the
    /// token in a cookie only this daemon's pages send (HttpOnly: no script
    /// reads it; SameSite=Strict: no other site's page sends it) and reloads
    /// without it, so that the token leaves the address bar and the history.
    static func page(_ request: Request, _ context: APIContext, _ access: WriteAccess) throws -> Response {
        guard let token = try request.query("token", .token) else { return try asset("index.html") }
        guard access.isToken(token) else {
            throw APIError(status: .unauthorized, APError(.permissionDenied, "the token in the URL does not match this daemon's; use the URL serve printed"))
        }
        var response = Response(status: .seeOther, headers: [.location: "/"])
        if let port = context.channel.localAddress?.port {
            response.setCookie(Cookie(name: WriteAccess.cookieName(port: port), value: token, path: "/", httpOnly: true, sameSite: .strict))
        }
        return response
    }

    static func matrix(_ h: APHost) -> MatrixViewDTO {
        var apids = Bitmap256(h.firmware.adapters.keys), apqis = h.firmware.usageDomains
        for m in h.vfio.mdevs.values {
            apids = apids | m.matrix.apm
            apqis = apqis | m.matrix.aqm
        }
        var cells: [CellDTO] = []
        for a in apids {
            for q in apqis {
                let c = h.apqnInfo(APQN(a, q))
                if c.state != .absent(.notInConfiguration) { cells.append(CellDTO(c, explained: false)) }
            }
        }
        return MatrixViewDTO(maxAdapter: h.firmware.mdevMaxAPID, maxDomain: h.firmware.mdevMaxAPQI, adapters: Array(apids),
                             domains: Array(apqis), apmaskIDs: h.bus.apmask.description, aqmaskIDs: h.bus.aqmask.description,
                             cells: cells)
    }

    static func asset(_ file: String) throws(APError) -> Response {
        guard let type = assets[file],
              let url = Bundle.module.url(forResource: file, withExtension: nil, subdirectory: "Resources/web"),
              let data = try? Data(contentsOf: url) else {
            throw APError(.noSuchFileOrDirectory, "no such page: \(file)")
        }
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
