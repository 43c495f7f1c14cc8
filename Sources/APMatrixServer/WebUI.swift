import APMatrixRuntime
import APMatrixModel
import Foundation
import Hummingbird
import Synchronization

/// One cell of the AP matrix as the web page shows it (`APHost.apqnInfo`).
public struct CellDTO: Codable, Sendable, Equatable {
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
public struct MatrixViewDTO: Codable, Sendable, Equatable {
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

/// The web page (`GET /`), its data (`/api/v1/matrix`, `/api/v1/cells/…`),
/// the live event stream (server-sent events) and `/metrics`. Actions on the
/// page go through the existing endpoints: `POST /api/v1/sysfs` (the same
/// store as a write to the mount) and the guest endpoints.
enum WebUI {
    /// The page's files, served from the bundle (no CDN, no build step).
    static let assets: [String: String] = [
        "index.html": "text/html; charset=utf-8",
        "app.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
    ]

    /// Seconds between keep-alive comments on an idle event stream; a write
    /// to a client that went away fails and ends the stream.
    static let keepAlive: Duration = .seconds(10)

    static func add(to router: Router<BasicRequestContext>, _ service: APIService) {
        let runtime = service.runtime
        router.get("/") { _, _ in asset("index.html") }
        router.get("ui/:file") { _, context in asset(context.parameters.get("file") ?? "") }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: service.metrics.render(runtime.snapshot))))
        }

        let api = router.group(RouterPath(ControlAPI.prefix))
        api.get("matrix") { _, _ in ControlAPI.json(matrix(runtime.snapshot)) }
        api.get("cells/:apqn") { _, context in
            ControlAPI.respond {
                let name = try ControlAPI.parameter("apqn", context)
                guard let apqn = APQN(sysfsName: name) else {
                    throw APError(.invalidArgument, "'\(name)' is not an APQN such as 05.0004 (two and four hex digits)")
                }
                return ControlAPI.json(CellDTO(runtime.snapshot.apqnInfo(apqn), explained: true))
            }
        }
        api.get("events/stream") { request, _ in
            // A reconnecting EventSource names the last event it got.
            let resumed = request.headers.first { $0.name.canonicalName == "last-event-id" }.flatMap { Int($0.value) } ?? 0
            let after = max(request.uri.queryParameters.get("after").flatMap { Int($0) } ?? 0, resumed)
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                                try await stream(runtime, service.eventStreams, after: after, to: &writer)
                            })
        }
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

    static func asset(_ file: String) -> Response {
        guard let type = assets[file],
              let url = Bundle.module.url(forResource: file, withExtension: nil, subdirectory: "Resources/web"),
              let data = try? Data(contentsOf: url) else {
            return ControlAPI.error(APError(.noSuchFileOrDirectory, "no such page: \(file)"))
        }
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    enum StreamItem: Sendable {
        case entries([LogEntry])
        case keepAlive
    }

    /// The open event streams, so that shutting the server down can end them
    /// (an endless response would hold the graceful shutdown up forever).
    final class Streams: Sendable {
        private let open = Mutex<(next: Int, closed: Bool, all: [Int: AsyncStream<StreamItem>.Continuation])>((0, false, [:]))

        /// Registers a stream; false once the server is shutting down.
        func add(_ c: AsyncStream<StreamItem>.Continuation) -> Int? {
            open.withLock { s in
                guard !s.closed else { return nil }
                s.next += 1
                s.all[s.next] = c
                return s.next
            }
        }

        func remove(_ id: Int) { _ = open.withLock { $0.all.removeValue(forKey: id) } }

        func finishAll() {
            let all = open.withLock { s in
                s.closed = true
                return Array(s.all.values)
            }
            for c in all { c.finish() }
        }
    }

    /// Server-sent events: every log entry after `after` (the backlog first),
    /// one `event: log` per entry with its sequence as the id, then live
    /// ones, in sequence order (the runtime delivers them in order, once).
    /// The subscription ends when the client goes away (a write fails, at
    /// the latest at the next keep-alive) or the server shuts down.
    static func stream(_ runtime: Runtime, _ streams: Streams, after: Int, to writer: inout any ResponseBodyWriter) async throws {
        let (items, continuation) = AsyncStream<StreamItem>.makeStream()
        guard let id = streams.add(continuation) else { return try await writer.finish(nil) }
        let subscription = runtime.subscribe(after: after) { continuation.yield(.entries($0)) }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: keepAlive)
                continuation.yield(.keepAlive)
            }
        }
        defer {
            subscription.cancel()
            streams.remove(id)
            ticker.cancel()
            continuation.finish()
        }
        try await writer.write(ByteBuffer(string: ": apmatrix events\nretry: 1000\n\n"))
        for await item in items {
            switch item {
            case .entries(let entries): try await writer.write(ByteBuffer(string: sse(entries)))
            case .keepAlive: try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
            }
        }
        try await writer.finish(nil)
    }

    /// The entries as SSE messages.
    static func sse(_ entries: [LogEntry]) -> String {
        var out = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for e in entries {
            let data = (try? encoder.encode(HostViews.event(e))) ?? Data("{}".utf8)
            out += "id: \(e.sequence)\nevent: log\ndata: \(String(decoding: data, as: UTF8.self))\n\n"
        }
        return out
    }
}
