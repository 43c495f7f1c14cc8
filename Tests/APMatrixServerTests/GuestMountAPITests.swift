import APMatrixRuntime
import APMatrixModel
import APMatrixServer
import APMatrixTesting
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// The guest-tree endpoints with a recording mounter (no FUSE): who mounts,
/// what is refused, and that stop and shutdown unmount.
@Suite struct GuestMountAPITests {
    /// Edges that only record what they mount and unmount.
    final class Recorder: GuestEdges {
        let log = Mutex<[String]>([])

        struct Tree: GuestAttachment {
            let location: String
            let guest: String
            let recorder: Recorder
            func close() { recorder.log.withLock { $0.append("unmount \(guest) \(location)") } }
        }

        func openMonitor(_ runtime: Runtime, guest: String, path: String) throws(APError) -> any GuestAttachment {
            throw APError(.notSupported, "no monitors here")
        }

        func mountTree(_ runtime: Runtime, guest: String, directory: String) throws(APError) -> any GuestAttachment {
            log.withLock { $0.append("mount \(guest) \(directory)") }
            return Tree(location: directory, guest: guest, recorder: self)
        }
    }

    func service(_ r: Recorder?) throws -> APIService {
        APIService(runtime: Runtime(host: try APHost(.seedExample), edges: r), metrics: ServerMetrics(), access: WriteAccess(token: testToken))
    }

    func mount(_ client: some TestClientProtocol, _ name: String, _ dir: String) async throws -> TestResponse {
        try await client.execute(uri: "/api/v1/guests/\(name)/mount", method: .post, headers: writer, body: body(GuestMountRequest(dir: dir)))
    }

    @Test func mountUnmountAndRefusals() async throws {
        let r = Recorder()
        let d = try service(r)
        try await app(d).test(.router) { client in
            #expect(try await client.startGuest("g1", uuid: nil).status == .created)
            try expectError(try await mount(client, "nobody", "/tmp/x"), .notFound, "ENOENT")
            try expectError(try await mount(client, "g1", "relative/dir"), .badRequest, "EINVAL", containing: "absolute")
            let ok = try await mount(client, "g1", "/tmp/g1")
            #expect(ok.status == .created)
            let g = try decode(GuestDTO.self, ok)
            #expect(g.sysfsMount == "/tmp/g1")
            #expect(g.bus?.scans == 1 && g.bus?.queues == [] && g.bus?.configTime == 30)
            try expectError(try await mount(client, "g1", "/tmp/g1b"), .conflict, "EBUSY")
            #expect(try await client.execute(uri: "/api/v1/guests/g1/mount", method: .delete, headers: writer).status == .ok)
            try expectError(try await client.execute(uri: "/api/v1/guests/g1/mount", method: .delete, headers: writer), .notFound, "ENOENT")
            #expect(try await mount(client, "g1", "/tmp/g1c").status == .created)
            #expect(try await client.execute(uri: "/api/v1/guests/g1", method: .delete, headers: writer).status == .ok)
            let started = try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                  body: body(StartGuestRequest(name: "g2", sysfsMount: "/tmp/g2")))
            #expect(started.status == .created)
            #expect(try decode(GuestDTO.self, started).sysfsMount == "/tmp/g2")
        }
        d.runtime.shutdown()
        #expect(r.log.withLock { $0 } == ["mount g1 /tmp/g1", "unmount g1 /tmp/g1", "mount g1 /tmp/g1c", "unmount g1 /tmp/g1c",
                                          "mount g2 /tmp/g2", "unmount g2 /tmp/g2"])
    }

    @Test func withoutFUSEGuestTreesAreNotSupportedAndStartChangesNothing() async throws {
        try await app(try service(nil)).test(.router) { client in
            #expect(try await client.startGuest("g1", uuid: nil).status == .created)
            try expectError(try await mount(client, "g1", "/tmp/g1"), .notImplemented, "ENOTSUP")
            let start = try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                body: body(StartGuestRequest(name: "g2", sysfsMount: "/tmp/g2")))
            try expectError(start, .notImplemented, "ENOTSUP")
            try expectError(try await client.execute(uri: "/api/v1/guests/g2", method: .get), .notFound, "ENOENT")
        }
    }

    @Test func aScanThatChangesDevicesIsABusEvent() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            #expect(try await client.startGuest("g1", uuid: uuidA).status == .created)
            let events = try await client.execute(uri: "/api/v1/events", method: .get) { try decode([EventDTO].self, $0) }
            let bus = events.filter { $0.kind == "bus" }
            #expect(bus.map(\.line) == ["guest g1: AP bus scan 1 (boot): added 05.0004 card05; removed -"])
            #expect(bus.first?.guest == "g1")
        }
    }
}
