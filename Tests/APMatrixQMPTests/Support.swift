import APMatrixRuntime
import APMatrixModel
import APMatrixTesting
@testable import APMatrixQMP
import Foundation
import Glibc
import Synchronization
import Testing

// Shared fixtures of the monitor tests: an in-memory emulated host with one
// running guest, a monitor on a socket in a private temp dir, and a raw QMP
// client that reads the stream the way qemu.qmp does (one message per line).

/// The seed's host with adapters 5-6 and domains 4, 5, 0x47 released to
/// vfio_ap; mdev A holds adapter 5, domain 4 and control domain 4; mdev B
/// (unassigned) exists for "in use" tests.
func preparedHost(profile: Profile = .seed) throws -> APHost {
    var host = try APHost(.seedExample, profile: profile)
    try host.setAPMask(host.bus.apmask.subtracting(Bitmap256([5, 6])))
    try host.setAQMask(host.bus.aqmask.subtracting(Bitmap256([4, 5, 0x47])))
    try host.createMdev(mdevA)
    try host.createMdev(mdevB)
    try host.assign(.adapter(5), to: mdevA)
    try host.assign(.domain(4), to: mdevA)
    try host.assign(.controlDomain(4), to: mdevA)
    return host
}

func sysfsdev(_ uuid: MdevUUID) -> String { "/sys/bus/mdev/devices/\(uuid)" }

/// The edges of a runtime with QMP monitors only; it keeps the monitors it opened.
final class QMPEdges: GuestEdges {
    let opened = Mutex<[QMPMonitor]>([])

    func openMonitor(_ runtime: Runtime, guest: String, path: String) throws(APError) -> any GuestAttachment {
        let m = try QMPMonitor.open(runtime, guest: guest, path: path)
        opened.withLock { $0.append(m) }
        return m
    }

    func mountTree(_ runtime: Runtime, guest: String, directory: String) throws(APError) -> any GuestAttachment {
        throw APError(.notSupported, "no guest trees in the QMP tests")
    }
}

/// One runtime, guest `g1` running (with `hostdev0` = mdev A unless
/// `plugged` is false) and its monitor listening, opened by the runtime as
/// `serve` opens it. Call `close()` (in a defer).
final class Fixture: @unchecked Sendable {
    let dir: String
    let socket: String
    let runtime: Runtime
    let monitor: QMPMonitor

    init(plugged: Bool = true, cpu: String = "host", guest: String = "g1", profile: Profile = .seed) throws {
        dir = try makeTempDir("qmpt")
        socket = dir + "/qmp.sock"
        let edges = QMPEdges()
        runtime = Runtime(host: try preparedHost(profile: profile), edges: edges)
        let device = plugged ? VfioAPDevice(id: "hostdev0", mdev: mdevA, sysfsdev: sysfsdev(mdevA)) : nil
        do {
            try runtime.startGuest(GuestStart(name: guest, cpu: cpu, device: device, qmp: socket))
        } catch {
            removeTree(dir)
            throw error
        }
        monitor = edges.opened.withLock { $0[0] }
    }

    func client() throws -> RawClient { try RawClient(socket) }

    /// A client past `qmp_capabilities`.
    func negotiated() throws -> RawClient {
        let c = try client()
        _ = try c.readMessage()
        let r = try c.command(#"{"execute": "qmp_capabilities"}"#)
        guard r["return"] != nil else { throw TestFailure("negotiation failed: \(r.serialized)") }
        return c
    }

    func close() {
        runtime.shutdown()
        removeTree(dir)
    }

    /// Polls until `cond` holds or `seconds` pass.
    func eventually(_ seconds: Double = 5, _ cond: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if cond() { return true }
            usleep(10_000)
        }
        return cond()
    }
}

/// A thread-safe counter.
final class Counter: Sendable {
    private let m = Mutex(0)
    func increment() { m.withLock { $0 += 1 } }
    var value: Int { m.withLock { $0 } }
}

/// A QMP client on a blocking socket with a receive timeout.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    /// Events read while waiting for a reply.
    var events: [JSONValue] = []

    init(_ path: String, timeout: Int = 10) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw TestFailure("connect \(path): errno \(e)")
        }
        setTimeout(timeout)
    }

    func setTimeout(_ seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws { try sendBytes(Array(text.utf8)) }

    func sendBytes(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send failed: errno \(errno)") }
            off += n
        }
    }

    /// The next `\r\n`-terminated line, without the terminator; nil at EOF.
    func readLine() throws -> String? {
        while true {
            if let i = buffer.firstIndex(of: 0x0a) {
                let line = Array(buffer[..<i])
                buffer.removeFirst(i + 1)
                guard line.last == 0x0d else { throw TestFailure("line without \\r\\n: \(String(decoding: line, as: UTF8.self))") }
                return String(decoding: line.dropLast(), as: UTF8.self)
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return nil }
            if n < 0 { throw TestFailure("recv: errno \(errno) (timeout?)") }
            buffer += chunk[0..<n]
        }
    }

    func readMessage() throws -> JSONValue {
        guard let line = try readLine() else { throw TestFailure("connection closed") }
        return try JSONValue.parse(Array(line.utf8))
    }

    /// True when the server closed the connection (EOF) within the timeout.
    func readEOF() throws -> Bool { try readLine() == nil }

    /// Sends a request; returns the next reply (events are stashed).
    func command(_ json: String) throws -> JSONValue {
        try send(json)
        return try reply()
    }

    func reply() throws -> JSONValue {
        while true {
            let m = try readMessage()
            if m["event"] != nil { events.append(m); continue }
            return m
        }
    }

    /// The next event named `name` (stashed or new); other events are kept.
    func event(_ name: String) throws -> JSONValue {
        if let i = events.firstIndex(where: { $0["event"]?.stringValue == name }) { return events.remove(at: i) }
        while true {
            let m = try readMessage()
            if m["event"]?.stringValue == name { return m }
            events.append(m)
        }
    }

    func execute(_ name: String, _ arguments: String? = nil, id: String? = nil) throws -> JSONValue {
        var s = #"{"execute": "\#(name)""#
        if let arguments { s += #", "arguments": \#(arguments)"# }
        if let id { s += #", "id": \#(id)"# }
        return try command(s + "}")
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

extension JSONValue {
    /// `error.class` of a reply.
    var errorClass: String? { self["error"]?["class"]?.stringValue }
    var errorDesc: String? { self["error"]?["desc"]?.stringValue }
    var isEmptyReturn: Bool { self["return"] == .object([:]) }
    var ints: [Int]? {
        guard case .array(let a) = self else { return nil }
        return a.compactMap(\.intValue)
    }
}
