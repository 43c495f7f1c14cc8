import APMatrixModel
import APMatrixServer
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// The API client against a peer that answers as soon as it has read a
/// request's head, before its body (as a daemon refusing a write does),
/// and closes: the client reports the answer, not a connection error.
@Suite struct APIClientTests {
    /// A one-connection-at-a-time TCP server on loopback that reads each
    /// request's head, sends `answer`, ends its side, and reads what is left
    /// before it closes (so the kernel does not reset the connection).
    final class AnsweringServer: @unchecked Sendable {
        let fd: Int32
        let port: Int
        let thread: Thread

        init(answer: String, connections: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = self.fd
            guard withUnsafeMutablePointer(to: &a, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }) == 0,
                  listen(fd, 8) == 0,
                  withUnsafeMutablePointer(to: &a, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }) == 0
            else { throw TestFailure("cannot listen on loopback") }
            port = Int(UInt16(bigEndian: a.sin_port))
            let bytes = Array(answer.utf8)
            thread = Thread {
                for _ in 0..<connections {
                    let c = accept(fd, nil, nil)
                    guard c >= 0 else { return }
                    var head: [UInt8] = [], byte: UInt8 = 0
                    while !head.suffix(4).elementsEqual([13, 10, 13, 10]), read(c, &byte, 1) == 1 { head.append(byte) }
                    _ = bytes.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
                    shutdown(c, Int32(SHUT_WR))
                    var rest = [UInt8](repeating: 0, count: 4096)
                    while read(c, &rest, rest.count) > 0 {}
                    close(c)
                }
            }
            thread.start()
        }

        deinit { close(fd) }
    }

    static func answer(_ status: String, _ json: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
    }

    @Test func aRefusalSentBeforeTheBodyIsReadIsReported() async throws {
        let refusal = #"{"error":{"code":13,"errno":"EACCES","message":"writes need the daemon's token"}}"#
        let server = try AnsweringServer(answer: Self.answer("401 Unauthorized", refusal), connections: 20)
        let client = APIClient(server: "http://127.0.0.1:\(server.port)", token: String(repeating: "5a", count: 32))
        var refused = 0
        for _ in 0..<20 {
            do {
                try await client.writeSysfs("bus/ap/apmask", String(repeating: "x", count: 3000))
                Issue.record("a refusal was taken as success")
            } catch {
                #expect(error == APError(.permissionDenied, "writes need the daemon's token"))
                refused += 1
            }
        }
        #expect(refused == 20)
    }

    @Test func anAnswerBeforeTheRequestEndsIsRead() async throws {
        let server = try AnsweringServer(answer: Self.answer("200 OK", #"{"path":"bus/ap/apmask","value":"0xffff\n"}"#), connections: 20)
        let client = APIClient(server: "http://127.0.0.1:\(server.port)")
        var read = 0
        for _ in 0..<20 {
            #expect(try await client.readSysfs("bus/ap/apmask") == "0xffff\n")
            read += 1
        }
        #expect(read == 20)
    }
}
