import APMatrixRuntime
import APMatrixModel
import APMatrixServer
import APMatrixTesting
import Foundation
import Glibc
import Hummingbird
import HummingbirdTesting
import Testing

// Every endpoint the web page uses: the page and its files, the matrix and
// cell views, the actions (sysfs writes and guest endpoints) with their
// errors, the event stream, /metrics.

/// A plain HTTP/1.1 client on a socket, to read a server-sent event stream
/// as it arrives (the test clients collect whole bodies).
final class StreamReader {
    let fd: Int32
    private(set) var text = ""

    init(port: Int, path: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { Glibc.close(fd); throw APError(.connectionRefused, "connect to port \(port)") }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
    }

    /// Reads until `text` contains `needle`, at most `timeout` seconds. It
    /// sleeps between polls instead of blocking: the server's handlers need
    /// the cooperative threads.
    func read(until needle: String, timeout: Double = 10) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        while !text.contains(needle) && Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) > 0 else {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { return text.contains(needle) }
            text += String(decoding: buf[0..<n], as: UTF8.self)
        }
        return text.contains(needle)
    }

    func close() { Glibc.close(fd) }
}

@Suite struct WebUITests {
    @Test func pageAndAssets() async throws {
        try await app(try seedService()).test(.router) { client in
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(String(buffer: page.body).contains(#"<table id="grid" role="grid""#))
            let js = try await client.execute(uri: "/ui/app.js", method: .get)
            #expect(js.status == .ok)
            #expect(js.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(String(buffer: js.body).contains("EventSource"))
            #expect(try await client.execute(uri: "/ui/style.css", method: .get).status == .ok)
            try expectError(try await client.execute(uri: "/ui/openapi.yaml", method: .get), .notFound, "ENOENT",
                            containing: "no such page: openapi.yaml")
        }
    }

    @Test func matrixView() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5", "6", "8"], domains: ["4"])
            let m = try await client.execute(uri: "/api/v1/matrix", method: .get) { try decode(MatrixViewDTO.self, $0) }
            #expect(m.maxAdapter == 255 && m.maxDomain == 255)
            // the seed example's adapters 4-7 and the over-provisioned 8; its 19 usage domains
            #expect(m.adapters == [4, 5, 6, 7, 8])
            #expect(m.domains == Array(0...15) + [0x47, 0xab, 0xff])
            #expect(m.apmaskIDs == "0-4,7-255")
            #expect(m.aqmaskIDs == "0-3,5-70,72-170,172-254")
            #expect(m.cells.count == 4 * 19 + 1)
            let cells = Dictionary(uniqueKeysWithValues: m.cells.map { ($0.apqn.description, $0) })
            #expect(cells["04.0000"]?.state == "host" && cells["04.0000"]?.driver == "cex4queue")
            #expect(cells["04.0004"]?.state == "free" && cells["04.0004"]?.driver == "vfio_ap")
            #expect(cells["05.0004"]?.state == "assigned" && cells["05.0004"]?.mdev?.description == uuidA)
            #expect(cells["07.0004"]?.state == "free" && cells["07.0004"]?.driver == "vfio_ap")
            #expect(cells["08.0004"]?.state == "over-provisioned" && cells["08.0004"]?.driver == nil)
            #expect(cells["08.0005"] == nil)
            #expect(cells["05.0004"]?.explanation == nil)
        }
    }

    @Test func cellExplanationAndErrors() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5", "6"], domains: ["4", "0x47"])
            #expect(try await client.startGuest("guest1", uuid: uuidA).status == .created)
            #expect(try await client.write("bus/ap/drivers/vfio_ap/unbind", "06.0047").status == .ok)
            let c = try await client.execute(uri: "/api/v1/cells/06.0004", method: .get) { try decode(CellDTO.self, $0) }
            #expect(c.state == "filtered")
            #expect(c.guest == "guest1" && c.mdev?.description == uuidA && c.driver == "vfio_ap" && c.owner == "none")
            #expect(c.explanation == "assigned to mdev \(uuidA) but filtered out of guest guest1's CRYCB: adapter 06 is passed to a guest only with all its queues in the guest's domains bound to vfio_ap, and queue 06.0047 is bound to no driver (unbound)")
            let g = try await client.execute(uri: "/api/v1/cells/05.0047", method: .get) { try decode(CellDTO.self, $0) }
            #expect(g.state == "in-guest" && g.owner == "guest guest1")
            let far = try await client.execute(uri: "/api/v1/cells/ff.00ff", method: .get) { try decode(CellDTO.self, $0) }
            #expect(far.state == "absent" && far.driver == nil)
            #expect(far.explanation == "adapter ff is not in the LPAR; no mdev has ff.00ff assigned")
            for bad in ["5.4", "05.0100", "05.0004x", "zz.0004"] {
                try expectError(try await client.execute(uri: "/api/v1/cells/\(bad)", method: .get), .badRequest, "EINVAL",
                                containing: "'\(bad)' is not an APQN such as 05.0004")
            }
        }
    }

    /// The page's actions are these requests; each refusal carries the kernel's errno and message.
    @Test func pageActionsAndTheirErrors() async throws {
        try await app(try seedService()).test(.router) { client in
            let create = "devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create"
            #expect(try await client.write(create, uuidA).status == .ok)
            try expectError(try await client.write(create, uuidA), .conflict, "EEXIST")
            // 07.0004 is not reserved (aqmask bit 4 is clear); +4 would give it back to the host
            #expect(try await client.write("devices/vfio_ap/matrix/\(uuidA)/assign_adapter", "7").status == .ok)
            #expect(try await client.write("devices/vfio_ap/matrix/\(uuidA)/assign_domain", "4").status == .ok)
            try expectError(try await client.write("bus/ap/aqmask", "+4"), .conflict, "EADDRINUSE",
                            containing: "aqmask: the change would reserve for the host queue 07.0004 assigned to mdev \(uuidA)")
            #expect(try await client.read("bus/ap/aqmask") == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe\n")
            #expect(try await client.startGuest("guest1", cpu: "host,ap=on", uuid: uuidA).status == .created)
            try expectError(try await client.startGuest("guest2", uuid: uuidA), .conflict, "EBUSY")
            try expectError(try await client.write("devices/vfio_ap/matrix/\(uuidA)/remove", "1"), .conflict, "EBUSY")
            #expect(try await client.write("devices/vfio_ap/matrix/\(uuidA)/unassign_domain", "4").status == .ok)
            #expect(try await client.execute(uri: "/api/v1/guests/guest1", method: .delete, headers: writer).status == .ok)
            try expectError(try await client.execute(uri: "/api/v1/guests/guest1", method: .delete, headers: writer), .notFound, "ENOENT")
            #expect(try await client.write("devices/vfio_ap/matrix/\(uuidA)/remove", "1").status == .ok)
        }
    }

    @Test func eventStreamIsLiveAndLetsGoOfClosedClients() async throws {
        let service = try seedService()
        let baseline = service.runtime.subscriberCount
        let last = service.runtime.log().last!.sequence
        try await app(service).test(.live) { client in
            let port = try #require(client.port)
            let stream = try StreamReader(port: port, path: "/api/v1/events/stream?after=\(last - 1)")
            // the backlog after `after`, then the live entries
            #expect(await stream.read(until: "retry: 1000"))
            #expect(stream.text.contains("HTTP/1.1 200 OK"))
            #expect(stream.text.lowercased().contains("content-type: text/event-stream"))
            #expect(await stream.read(until: "id: \(last)\nevent: log\ndata: {"), "\(stream.text)")
            #expect(service.runtime.subscriberCount == baseline + 1)
            #expect(try await client.write("devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", uuidA).status == .ok)
            #expect(await stream.read(until: "vfio_ap: mdev \(uuidA) created (iommu group 0)"), "\(stream.text)")
            #expect(!stream.text.contains("id: \(last - 1)\n"))
            stream.close()
            // the next write to the closed connection fails and ends the subscription
            var removed = false
            for i in 0..<100 where !removed {
                _ = try await client.write("devices/vfio_ap/matrix/\(uuidA)/assign_control_domain", "\(i)")
                try await Task.sleep(for: .milliseconds(50))
                removed = service.runtime.subscriberCount == baseline
            }
            #expect(removed, "the closed client's subscription is still registered")
        }
    }

    /// Events reach the page in sequence order, each exactly once, while
    /// several writers change the host at the same time.
    @Test func eventStreamIsInOrderAndCompleteUnderConcurrentWriters() async throws {
        let service = try seedService()
        let first = service.runtime.log().last!.sequence + 1
        try await app(service).test(.live) { client in
            let port = try #require(client.port)
            let stream = try StreamReader(port: port, path: "/api/v1/events/stream?after=\(first - 1)")
            #expect(await stream.read(until: "retry: 1000"))
            let sysfs = SysfsEndpoint(service.runtime)
            let writers = (0..<4).map { w in
                Thread {
                    for i in 0..<300 { try? sysfs.write("/bus/ap/apmask", Array((i % 2 == 0 ? "-\(w + 8)" : "+\(w + 8)").utf8)) }
                }
            }
            writers.forEach { $0.start() }
            // Adapters 8-11 are not in the LPAR: each write changes the mask and logs one line, no rebinding.
            let last = first + 4 * 300 - 1
            #expect(await stream.read(until: "id: \(last)\n", timeout: 60), "the stream stopped before \(last)")
            stream.close()
            // The server notices the closed client at its next write.
            let baseline = service.runtime.subscriberCount - 1
            for i in 0..<100 where service.runtime.subscriberCount > baseline {
                _ = try await client.write("bus/ap/apmask", i % 2 == 0 ? "-12" : "+12")
                try await Task.sleep(for: .milliseconds(20))
            }
            let ids = stream.text.split(whereSeparator: \.isNewline).compactMap { $0.hasPrefix("id: ") ? Int($0.dropFirst(4)) : nil }
            #expect(ids.count == last - first + 1)
            #expect(ids == Array(first...last), "out of order, missing or repeated entries")
        }
    }

    @Test func metricsText() async throws {
        let service = try seedService()
        try await app(service).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            try expectError(try await client.write("devices/vfio_ap/matrix/\(uuidA)/assign_adapter", "256"), .conflict, "ENODEV")
            #expect(try await client.startGuest("guest1", uuid: uuidA).status == .created)
            #expect(try await client.write("devices/vfio_ap/matrix/\(uuidA)/assign_adapter", "6").status == .ok)
            #expect(try await client.write("bus/ap/drivers/vfio_ap/unbind", "06.0004").status == .ok)
            let r = try await client.execute(uri: "/metrics", method: .get)
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            let lines = Set(String(buffer: r.body).split(separator: "\n").map(String.init))
            for expected in [
                #"apmatrix_operations_total{kind="sysfs:create",result="ok"} 1"#,
                #"apmatrix_operations_total{kind="sysfs:assign_adapter",result="ok"} 2"#,
                #"apmatrix_operations_total{kind="sysfs:assign_adapter",result="ENODEV"} 1"#,
                #"apmatrix_operations_total{kind="guest_start",result="ok"} 1"#,
                "# TYPE apmatrix_operations_total counter",
                // attach at start, adapter 6 plugged, adapter 6 unplugged by the unbind
                #"apmatrix_hotplug_total{direction="plug"} 2"#,
                #"apmatrix_hotplug_total{direction="unplug"} 1"#,
                "apmatrix_mdevs 1.0", "apmatrix_mdevs_in_use 1.0", "apmatrix_guests 1.0",
                "apmatrix_available_instances 65535.0",
                // seed example, V4 masks: adapters 5 and 6 (19 queues each) go to vfio_ap,
                // and domains 4, 0x47, 0xab, 0xff of adapters 4 and 7 (8 queues); one unbound
                #"apmatrix_queues{driver="vfio_ap"} 45.0"#, #"apmatrix_queues{driver="none"} 1.0"#,
                #"apmatrix_queues{driver="cex4queue"} 30.0"#,
            ] {
                #expect(lines.contains(expected), "missing: \(expected)\n\(lines.sorted().joined(separator: "\n"))")
            }
        }
    }
}
