import APMatrixModel
import APMatrixRuntime
import HTTPTypes
import Hummingbird
import Synchronization

/// `GET /events/stream`: the event log as server-sent events. Every log
/// entry after `after` (the backlog first), one `event: log` message per
/// entry with its sequence as `id` and its `Event` document as `data`, then
/// live ones, in sequence order (the runtime delivers them in order, once).
/// The subscription ends when the client goes away (a write fails, at the
/// latest at the next keep-alive) or the server shuts down.
enum EventStream {
    /// Seconds between keep-alive comments on an idle stream; a write to a
    /// client that went away fails and ends the stream.
    static let keepAlive: Duration = .seconds(10)

    static func add(_ r: Routes, _ service: APIService) {
        r.on(.eventStream) { request, _ in
            // A reconnecting EventSource names the last event it got.
            let resumed = try request.header(.lastEventID, .sequence)
            let after = max(try request.query("after", .sequence).flatMap { Int($0) } ?? 0, resumed.flatMap { Int($0) } ?? 0)
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                                try await stream(service.runtime, service.eventStreams, after: after, to: &writer)
                            })
        }
    }

    enum Item: Sendable {
        case entries([LogEntry])
        case keepAlive
    }

    /// The open streams, so that shutting the server down can end them (an
    /// endless response would hold the graceful shutdown up forever).
    final class Registry: Sendable {
        private let open = Mutex<(next: Int, closed: Bool, all: [Int: AsyncStream<Item>.Continuation])>((0, false, [:]))

        /// Registers a stream; nil once the server is shutting down.
        func add(_ c: AsyncStream<Item>.Continuation) -> Int? {
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

    static func stream(_ runtime: Runtime, _ streams: Registry, after: Int, to writer: inout any ResponseBodyWriter) async throws {
        let (items, continuation) = AsyncStream<Item>.makeStream()
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
            case .entries(let entries): try await writer.write(ByteBuffer(string: messages(entries)))
            case .keepAlive: try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
            }
        }
        try await writer.finish(nil)
    }

    /// The entries as SSE messages.
    static func messages(_ entries: [LogEntry]) -> String {
        entries.map { e in
            "id: \(e.sequence)\nevent: log\ndata: \(String(decoding: APIJSON.encode(HostViews.event(e)), as: UTF8.self))\n\n"
        }.joined()
    }
}

extension HTTPField.Name {
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}
