import APMatrixModel
import Foundation
import NIOCore

extension APIClient {
    /// `GET /events/stream`: every log entry after `sequence`, then each new
    /// one as the daemon logs it, in order, until the daemon goes away (the
    /// stream ends) or the consuming task is cancelled.
    public func eventStream(after sequence: Int) -> AsyncThrowingStream<EventDTO, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let http = try LocalHTTP(server: server)
                    try await http.exchange(.GET, APIRoute.eventStream.path([:]) + "?after=\(sequence)") { status, body in
                        guard status == 200 else {
                            throw APError(.ioError, "\(server): the event stream answered HTTP \(status)")
                        }
                        var pending: [UInt8] = []
                        while let chunk = try await body.next() {
                            pending += chunk.readableBytesView
                            for message in Self.takeMessages(&pending) {
                                continuation.yield(try JSONDecoder().decode(EventDTO.self, from: Data(message.utf8)))
                            }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The `data:` of each complete server-sent event in `pending` (ended
    /// by a blank line), which keeps what is left; comments and the other
    /// fields are skipped (the `Event` document has the sequence).
    static func takeMessages(_ pending: inout [UInt8]) -> [String] {
        var messages: [String] = []
        while let end = pending.firstRange(of: [10, 10]) {
            let block = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeSubrange(..<end.upperBound)
            let data = block.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { $0.dropFirst(6) }
            if !data.isEmpty { messages.append(data.joined(separator: "\n")) }
        }
        return messages
    }
}
