import APMatrixRuntime
import APMatrixModel
import APMatrixServer
import APMatrixTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing


/// The token of the tests' daemons, and the header that shows it on a change.
let testToken = String(repeating: "5a", count: 32)
let writer: HTTPFields = [.authorization: "Bearer \(testToken)"]

/// A daemon on the seed example's host with the queues of adapters 5 and 6
/// and domains 4, 0x47, 0xab, 0xff released to vfio_ap (kernel-reference V4).
func seedService(facilities: Facilities = Facilities(), profile: Profile = .seed) throws -> APIService {
    var d = HostDescription.seedExample
    d.facilities = facilities
    let metrics = ServerMetrics()
    let runtime = Runtime(host: try APHost(d, profile: profile), instrumentation: metrics.instrumentation)
    try SysfsEndpoint(runtime).write("/bus/ap/apmask", Array("-5,-6".utf8))
    try SysfsEndpoint(runtime).write("/bus/ap/aqmask", Array("-4,-0x47,-0xab,-0xff".utf8))
    return APIService(runtime: runtime, metrics: metrics, access: WriteAccess(token: testToken))
}

func app(_ service: APIService) -> some ApplicationProtocol {
    Application(router: ControlAPI.router(service))
}

func body<T: Encodable>(_ value: T) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONEncoder().encode(value))
}

func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(buffer: response.body))
}

extension TestClientProtocol {
    func write(_ path: String, _ value: String) async throws -> TestResponse {
        try await execute(uri: "/api/v1/sysfs", method: .post, headers: writer, body: body(SysfsWriteRequest(path: path, value: value)))
    }

    func read(_ path: String) async throws -> String {
        try await execute(uri: "/api/v1/sysfs?path=\(path)", method: .get) { r in
            try decode(SysfsReadResponse.self, r).value
        }
    }

    /// Creates an mdev and assigns through the same path as a sysfs write.
    func mdev(_ uuid: String, adapters: [String], domains: [String], control: [String] = []) async throws {
        #expect(try await write("devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", uuid).status == .ok)
        for a in adapters { #expect(try await write("devices/vfio_ap/matrix/\(uuid)/assign_adapter", a).status == .ok) }
        for d in domains { #expect(try await write("devices/vfio_ap/matrix/\(uuid)/assign_domain", d).status == .ok) }
        for c in control { #expect(try await write("devices/vfio_ap/matrix/\(uuid)/assign_control_domain", c).status == .ok) }
    }

    func startGuest(_ name: String, cpu: String? = nil, uuid: String?) async throws -> TestResponse {
        let device = uuid.map { "vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/\($0),id=hostdev0" }
        return try await execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                 body: body(StartGuestRequest(name: name, cpu: cpu, device: device)))
    }
}

func expectError(_ r: TestResponse, _ status: HTTPResponse.Status, _ errno: String, containing text: String = "") throws {
    #expect(r.status == status)
    let e = try decode(ErrorDTO.self, r)
    #expect(e.error.errno == errno)
    #expect(text.isEmpty || e.error.message.contains(text), "\(e.error.message) should contain \(text)")
}

@Suite struct ControlAPITests {
    /// The AP bus's uevents carry their keys in the events API, so a tool
    /// can react to BINDINGS=complete from the log; a guest's document
    /// lists its VFIO IRQs.
    @Test func ueventsAndVfioIRQsUpstream() async throws {
        try await app(try seedService(profile: .upstream)).test(.router) { client in
            #expect(try await client.write("bus/ap/scans", "1").status == .ok)
            let events = try await client.execute(uri: "/api/v1/events", method: .get) { try decode([EventDTO].self, $0) }
            // The bus's own (the devices' own add, bind, unbind, remove are DeviceUeventTests').
            let uevents = events.compactMap(\.uevent).filter { $0.devpath == "/devices/ap" }
            #expect(uevents.count == 3)
            #expect(uevents.last.map { [$0.action, $0.devpath, $0.subsystem] + $0.properties }
                    == ["change", "/devices/ap", "ap", "BINDINGS=complete", "COMPLETECOUNT=2"])
            #expect(uevents.first?.properties == ["APMASK=0xf9" + String(repeating: "f", count: 62) + "\n"])
            #expect(events.first { $0.uevent != nil }?.kind == "uevent")
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            #expect(try await client.startGuest("g1", uuid: uuidA).status == .created)
            let g = try await client.execute(uri: "/api/v1/guests/g1", method: .get) { try decode(GuestDTO.self, $0) }
            #expect(g.vfioIRQs?.map { "\($0.index) \($0.name) \($0.wired)" } == ["0 request true", "1 config change true"])
        }
    }

    /// The API shows `guest_matrix` as sysfs does, by the profile's rule:
    /// the seed has none without a guest, upstream shows the shadow.
    @Test(arguments: [(Profile.seed, nil as String?), (.upstream, "05.0004\n")])
    func mdevsAgreeWithSysfs(_ profile: Profile, _ sysfsText: String?) async throws {
        try await app(try seedService(profile: profile)).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            let mdevs = try await client.execute(uri: "/api/v1/mdevs", method: .get) { try decode([MdevDTO].self, $0) }
            #expect(mdevs.count == 1)
            let guestMatrix = try await client.execute(uri: "/api/v1/sysfs?path=devices/vfio_ap/matrix/\(uuidA)/guest_matrix", method: .get)
            if let sysfsText {
                #expect(try decode(SysfsReadResponse.self, guestMatrix).value == sysfsText)
                #expect(mdevs.first?.guestMatrix == MatrixDTO(Matrix(apm: Bitmap256([5]), aqm: Bitmap256([4]))))
            } else {
                try expectError(guestMatrix, .conflict, "ENODEV")
                #expect(mdevs.first?.guestMatrix == nil)
            }
        }
    }

    @Test func hostSnapshot() async throws {
        try await app(try seedService()).test(.router) { client in
            let host = try await client.execute(uri: "/api/v1/host", method: .get) { try decode(HostDTO.self, $0) }
            #expect(host.profile == "seed")
            #expect(host.adapters.map(\.id) == [4, 5, 6, 7])
            #expect(host.adapters.map(\.type) == ["CEX8C", "CEX8C", "CEX8P", "CEX7C"])
            #expect(host.apmask == "0xf9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")
            #expect(host.aqmask == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe")
            #expect(host.availableInstances == 65536)
            #expect(host.usageDomains == Array(0...15) + [0x47, 0xab, 0xff])
        }
    }

    @Test func sysfsReadWriteAndErrors() async throws {
        try await app(try seedService()).test(.router) { client in
            #expect(try await client.read("bus/ap/ap_max_domain_id") == "255\n")
            try expectError(try await client.write("bus/ap/apmask", "0X41"), .unprocessableContent, "EINVAL")
            try expectError(try await client.write("bus/ap/ap_max_domain_id", "1"), .forbidden, "EACCES")
            try expectError(try await client.write("no/such/file", "1"), .notFound, "ENOENT")
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            try expectError(try await client.write("devices/vfio_ap/matrix/\(uuidA)/assign_adapter", "256"),
                            .conflict, "ENODEV")
            #expect(try await client.read("devices/vfio_ap/matrix/\(uuidA)/matrix") == "05.0004\n")
        }
    }

    @Test func guestLifecycleAndHotPlug() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5", "6"], domains: ["4", "0x47"], control: ["4"])
            let started = try await client.startGuest("guest1", uuid: uuidA)
            #expect(started.status == .created)
            let g = try decode(GuestDTO.self, started)
            #expect(g.cpu == "host,ap=on,apqci=on,apft=on,apqi=on,appv=on,appvi=on")
            #expect(g.crycb == MatrixDTO(Matrix(apm: Bitmap256([5, 6]), aqm: Bitmap256([4, 0x47]), adm: Bitmap256([4]))))
            #expect(g.view.queues.map(\.description) == ["05.0004", "05.0047", "06.0004", "06.0047"])
            #expect(try await client.read("devices/vfio_ap/matrix/\(uuidA)/guest_matrix")
                    == "05.0004\n05.0047\n06.0004\n06.0047\n")

            // Hot plug of a domain through sysfs while the guest runs.
            #expect(try await client.write("devices/vfio_ap/matrix/\(uuidA)/assign_domain", "0xab").status == .ok)
            let after = try await client.execute(uri: "/api/v1/guests/guest1", method: .get) { try decode(GuestDTO.self, $0) }
            #expect(after.crycb.aqm == [4, 0x47, 0xab])
            let events = try await client.execute(uri: "/api/v1/events", method: .get) { try decode([EventDTO].self, $0) }
            let change = try #require(events.last { $0.kind == "crycb" })
            #expect(change.guest == "guest1")
            #expect(change.before?.aqm == [4, 0x47])
            #expect(change.after?.aqm == [4, 0x47, 0xab])
            #expect(change.line.contains("domain 00ab assigned"))

            // remove is refused while in use; a second guest cannot open the mdev.
            try expectError(try await client.write("devices/vfio_ap/matrix/\(uuidA)/remove", "1"), .conflict, "EBUSY")
            try expectError(try await client.startGuest("guest2", uuid: uuidA), .conflict, "EBUSY", containing: "guest1")

            // Unplug, then the queues that left were reset.
            let unplugged = try await client.execute(uri: "/api/v1/guests/guest1/devices/hostdev0", method: .delete, headers: writer) {
                try decode(GuestDTO.self, $0)
            }
            #expect(unplugged.device == nil)
            #expect(unplugged.crycb == MatrixDTO(Matrix()))
            let queues = try await client.execute(uri: "/api/v1/queues", method: .get) { try decode([QueueDTO].self, $0) }
            let q = try #require(queues.first { $0.apqn.description == "05.00ab" })
            #expect(q.resets == 1)
            #expect(q.owner == "none")
            #expect(q.holdsStateOf == nil)
            try expectError(try await client.execute(uri: "/api/v1/guests/guest1/devices/hostdev0", method: .delete, headers: writer),
                            .notFound, "ENOENT")
            #expect(try await client.execute(uri: "/api/v1/guests/guest1", method: .delete, headers: writer).status == .ok)
            try expectError(try await client.execute(uri: "/api/v1/guests/guest1", method: .get), .notFound, "ENOENT")
        }
    }

    @Test func cpuModelErrors() async throws {
        try await app(try seedService(facilities: Facilities(apqi: false))).test(.router) { client in
            try expectError(try await client.startGuest("g", cpu: "host,foo=on", uuid: nil), .unprocessableContent, "EINVAL",
                            containing: "unknown feature 'foo'")
            try expectError(try await client.startGuest("g", cpu: "host,apqi=on", uuid: nil), .unprocessableContent, "EINVAL",
                            containing: "apqi")
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            try expectError(try await client.startGuest("g", cpu: "host,ap=off", uuid: uuidA), .unprocessableContent, "EINVAL",
                            containing: "ap=on")
            let g = try decode(GuestDTO.self, try await client.startGuest("g", cpu: "z15", uuid: nil))
            #expect(g.cpu == "z15,ap=off,apqci=off,apft=off,apqi=off,appv=off,appvi=off")
            try expectError(try await client.startGuest("g", uuid: nil), .conflict, "EEXIST")
        }
    }

    @Test func hostdevXML() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            #expect(try await client.startGuest("my-guest", uuid: nil).status == .created)
            let xml = """
                <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-ap'>
                <source>
                <address uuid='62177883-f1bb-47f0-914d-32a22e3a8804'/>
                </source>
                </hostdev>
                """
            let attached = try await client.execute(uri: "/api/v1/guests/my-guest/hostdev", method: .post, headers: writer,
                                                    body: ByteBuffer(string: xml)) { try decode(GuestDTO.self, $0) }
            #expect(attached.device?.mdev.description == uuidA)
            #expect(attached.crycb.apm == [5])
            let detached = try await client.execute(uri: "/api/v1/guests/my-guest/hostdev/detach", method: .post, headers: writer,
                                                    body: ByteBuffer(string: xml)) { try decode(GuestDTO.self, $0) }
            #expect(detached.device == nil)
            try expectError(try await client.execute(uri: "/api/v1/guests/my-guest/hostdev", method: .post, headers: writer,
                                                     body: ByteBuffer(string: "<hostdev mode='subsystem'")),
                            .unprocessableContent, "EINVAL", containing: "malformed")
            try expectError(try await client.execute(uri: "/api/v1/guests/my-guest/hostdev", method: .post, headers: writer,
                                                     body: ByteBuffer(string: xml.replacingOccurrences(of: "vfio-ap", with: "vfio-pci"))),
                            .unprocessableContent, "EINVAL", containing: "model='vfio-pci'")
            try expectError(try await client.execute(uri: "/api/v1/guests/my-guest/hostdev", method: .post, headers: writer,
                                                     body: ByteBuffer(string: xml.replacingOccurrences(of: "62177883", with: "zz"))),
                            .unprocessableContent, "EINVAL", containing: "not a UUID")
        }
    }

    @Test func firmwareEventsAndOverProvisioning() async throws {
        try await app(try seedService()).test(.router) { client in
            // Adapter 8 is not in the LPAR yet: assigning it is over-provisioning.
            #expect(try await client.write("bus/ap/apmask", "-8").status == .ok)
            try await client.mdev(uuidA, adapters: ["8"], domains: ["4"])
            #expect(try await client.startGuest("guest1", uuid: uuidA).status == .created)
            #expect(try await client.read("devices/vfio_ap/matrix/\(uuidA)/guest_matrix") == "")
            let add = AdapterRequest(id: 8, type: "CEX8C")
            #expect(try await client.execute(uri: "/api/v1/host/adapters", method: .post, headers: writer, body: body(add)).status == .created)
            #expect(try await client.read("devices/vfio_ap/matrix/\(uuidA)/guest_matrix") == "08.0004\n")
            try expectError(try await client.execute(uri: "/api/v1/host/adapters", method: .post, headers: writer, body: body(add)),
                            .conflict, "EEXIST")
            let restricted = AdapterRequest(id: 9, type: "CEX8C", domains: "0x50")
            try expectError(try await client.execute(uri: "/api/v1/host/adapters", method: .post, headers: writer, body: body(restricted)),
                            .unprocessableContent, "EINVAL")
            try expectError(try await client.execute(uri: "/api/v1/host/adapters", method: .post, headers: writer,
                                                     body: body(AdapterRequest(id: 9, type: "CEX9C"))), .badRequest, "EINVAL")
            // The domain leaves the LPAR: the guest loses it (and with it everything).
            #expect(try await client.execute(uri: "/api/v1/host/domains/4", method: .delete, headers: writer).status == .ok)
            #expect(try await client.read("devices/vfio_ap/matrix/\(uuidA)/guest_matrix") == "")
            try expectError(try await client.execute(uri: "/api/v1/host/domains/4", method: .delete, headers: writer), .notFound, "ENOENT")
            #expect(try await client.execute(uri: "/api/v1/host/domains", method: .post, headers: writer,
                                             body: body(DomainRequest(id: 4))).status == .created)
            #expect(try await client.read("devices/vfio_ap/matrix/\(uuidA)/guest_matrix") == "08.0004\n")
            try expectError(try await client.execute(uri: "/api/v1/host/adapters/0x30", method: .delete, headers: writer), .notFound, "ENOENT")
            #expect(try await client.execute(uri: "/api/v1/host/adapters/0x8", method: .delete, headers: writer).status == .ok)
            #expect(try await client.read("devices/vfio_ap/matrix/\(uuidA)/guest_matrix") == "")
        }
    }

    @Test func migrationRefusedWhileAttached() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            #expect(try await client.startGuest("guest1", uuid: uuidA).status == .created)
            try expectError(try await client.execute(uri: "/api/v1/guests/guest1/migrate", method: .post, headers: writer,
                                                     body: body(MigrateRequest(to: "http://127.0.0.1:1"))),
                            .conflict, "EBUSY", containing: "hot unplug")
            // Unplugged, but the target is not there: the guest stays here.
            #expect(try await client.execute(uri: "/api/v1/guests/guest1/devices/hostdev0", method: .delete, headers: writer).status == .ok)
            try expectError(try await client.execute(uri: "/api/v1/guests/guest1/migrate", method: .post, headers: writer,
                                                     body: body(MigrateRequest(to: "http://127.0.0.1:1"))),
                            .badGateway, "ECONNREFUSED")
            #expect(try await client.execute(uri: "/api/v1/guests/guest1", method: .get).status == .ok)
        }
    }

    @Test func badRequests() async throws {
        try await app(try seedService()).test(.router) { client in
            try expectError(try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer, body: ByteBuffer(string: "{")),
                            .badRequest, "EINVAL", containing: "not a valid StartGuestRequest")
            try expectError(try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                     body: body(StartGuestRequest(name: "g", device: "vfio-pci,host=1"))),
                            .unprocessableContent, "EINVAL", containing: "only vfio-ap")
            try expectError(try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                     body: body(StartGuestRequest(name: "g", device: "vfio-ap,sysfsdev=/tmp/x,id=a"))),
                            .notFound, "ENOENT", containing: "not an mdev path")
            try expectError(try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                     body: body(StartGuestRequest(name: "bad name"))), .badRequest, "EINVAL")
            try expectError(try await client.execute(uri: "/api/v1/host/domains/300", method: .delete, headers: writer), .badRequest, "EINVAL")
            let yaml = try await client.execute(uri: "/api/v1/openapi.yaml", method: .get) { String(buffer: $0.body) }
            #expect(yaml.hasPrefix("openapi: 3.1.0"))
        }
    }
}

/// A Secure Execution guest through the API (docs/secure-execution.md): both
/// spellings start one, its document shows each queue's SE state, the event
/// log has kind `se`, and it cannot migrate.
@Suite struct SecureExecutionAPITests {
    @Test func secureGuestDocumentEventsAndMigration() async throws {
        let service = try seedService()
        try await app(service).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5", "6"], domains: ["4"])
            let device = "vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/\(uuidA),id=hostdev0"
            try expectError(try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                     body: body(StartGuestRequest(name: "se", object: "s390-pv-guest,id=pv0"))),
                            .unprocessableContent, "EINVAL", containing: "is not used: add -machine confidential-guest-support=pv0")
            let started = try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer, body: body(StartGuestRequest(
                name: "se", device: device, object: "s390-pv-guest,id=pv0", machine: "s390-ccw-virtio,confidential-guest-support=pv0")))
            #expect(started.status == .created)
            let g = try decode(GuestDTO.self, started)
            #expect(g.secure == true)
            #expect(g.seQueues == [SEQueueDTO(apqn: APQN(5, 4), SEState(.illicit)), SEQueueDTO(apqn: APQN(6, 4), SEState(.unbound))])
            #expect(g.seQueues?.map(\.bs) == [3, 2] && g.seQueues?.map(\.state) == ["illicit", "unbound"])

            let runtime = service.runtime
            try runtime.perform({ "test" }) { (h: inout APHost, now: Uptime) throws(APError) in
                try h.seBind("se", APQN(6, 4), at: now + 1)
                try h.seAssociate("se", APQN(6, 4), index: 3, at: now + 1)
            }
            let bound = try await client.execute(uri: "/api/v1/guests/se", method: .get) { try decode(GuestDTO.self, $0) }
            let q = try #require(bound.seQueues?.last)
            #expect(q.state == "bound" && q.bs == 1 && q.association == 3 && q.associationPending == true)
            let events = try await client.execute(uri: "/api/v1/events", method: .get) { try decode([EventDTO].self, $0) }
            #expect(events.filter { $0.kind == "se" }.map(\.line)
                    == ["guest se: queue 06.0004 SE bound (se_bind 1)",
                        "guest se: queue 06.0004 SE association with index 3 requested (se_associate 3)"])
            #expect(events.filter { $0.kind == "se" }.allSatisfy { $0.guest == "se" })

            try expectError(try await client.execute(uri: "/api/v1/guests/se/migrate", method: .post, headers: writer,
                                                     body: body(MigrateRequest(to: "http://127.0.0.1:1"))),
                            .notImplemented, "ENOTSUP", containing: "protected VMs are currently not migratable.")

            let plain = try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                 body: body(StartGuestRequest(name: "plain"))) { try decode(GuestDTO.self, $0) }
            #expect(plain.secure == nil && plain.seQueues == nil)
            let flag = try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer,
                                                body: body(StartGuestRequest(name: "flag", secure: true))) { try decode(GuestDTO.self, $0) }
            #expect(flag.secure == true && flag.seQueues == [])
        }
    }
}

/// Two daemons, each with a live API, for the migration procedure.
@Suite struct MigrationTests {
    @Test func migrateAfterUnplugThenPlugOnTarget() async throws {
        let source = try seedService()
        let target = try seedService(facilities: Facilities())
        let noAPQI = try seedService(facilities: Facilities(apqi: false))
        let servers = try [target, noAPQI].map { try ControlServer(service: $0, listen: "127.0.0.1:0", logger: .init(label: "test")) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for s in servers { group.addTask { try await s.run() } }
            var found: [String] = []
            for s in servers { for await a in s.address { found.append(a); break } }
            let urls = found
            try await app(source).test(.router) { client in
                try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
                #expect(try await client.startGuest("guest1", uuid: uuidA).status == .created)
                #expect(try await client.execute(uri: "/api/v1/guests/guest1/devices/hostdev0", method: .delete, headers: writer).status == .ok)
                // A target without apqi cannot run the guest's CPU model.
                try expectError(try await client.execute(uri: "/api/v1/guests/guest1/migrate", method: .post, headers: writer,
                                                         body: body(MigrateRequest(to: urls[1]))),
                                .unprocessableContent, "EINVAL", containing: "apqi")
                #expect(try await client.execute(uri: "/api/v1/guests/guest1/migrate", method: .post, headers: writer,
                                                 body: body(MigrateRequest(to: urls[0]))).status == .ok)
                try expectError(try await client.execute(uri: "/api/v1/guests/guest1", method: .get), .notFound, "ENOENT")
            }
            // On the target: the same CPU model, and an mdev of the target host plugs.
            try await app(target).test(.router) { client in
                #expect(try await client.write("devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", uuidB).status == .ok)
                #expect(try await client.write("devices/vfio_ap/matrix/\(uuidB)/assign_adapter", "6").status == .ok)
                #expect(try await client.write("devices/vfio_ap/matrix/\(uuidB)/assign_domain", "0xab").status == .ok)
                let moved = try await client.execute(uri: "/api/v1/guests/guest1", method: .get) { try decode(GuestDTO.self, $0) }
                #expect(moved.cpu == "host,ap=on,apqci=on,apft=on,apqi=on,appv=on,appvi=on")
                let plugged = try await client.execute(uri: "/api/v1/guests/guest1/devices", method: .post, headers: writer,
                                                       body: body(PlugRequest(sysfsdev: "/sys/bus/mdev/devices/\(uuidB)", id: "hostdev0"))) {
                    try decode(GuestDTO.self, $0)
                }
                #expect(plugged.view.queues.map(\.description) == ["06.00ab"])
            }
            for s in servers { await s.shutdown() }
            try await group.waitForAll()
        }
    }
}
