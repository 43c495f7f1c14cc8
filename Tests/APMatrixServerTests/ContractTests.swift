import APMatrixModel
@testable import APMatrixServer
import APMatrixTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import SystemPackage
import Testing

/// The server and openapi.yaml say the same: the same operations, the same
/// patterns, one errno-to-status mapping, 405 with `Allow` for a method a
/// path lacks, and request bodies refused as the schema refuses them.
/// (schemathesis checks the rest against a live daemon: SchemathesisTests.)
@Suite struct ContractTests {
    func document(_ client: some TestClientProtocol) async throws -> String {
        try await client.execute(uri: "/api/v1/openapi.yaml", method: .get) { String(buffer: $0.body) }
    }

    @Test func theDocumentHasExactlyTheServersOperations() async throws {
        try await app(try seedService()).test(.router) { client in
            var operations: [String] = []
            var path = ""
            for line in try await document(client).split(separator: "\n") {
                if line.hasPrefix("  /") && line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()) }
                for method in ["get", "post", "put", "patch", "delete"] where line == "    \(method):" {
                    operations.append("\(method.uppercased()) /api/v1\(path)")
                }
            }
            #expect(operations == APIRoute.api.map(\.description))
        }
    }

    @Test func theDocumentStatesThePatternsTheServerChecks() async throws {
        try await app(try seedService()).test(.router) { client in
            let text = try await document(client)
            for p in [APIPattern.guestName, .deviceID, .apqn, .id, .sysfsPath, .absolutePath, .guestState, .server, .token] {
                let yaml = "pattern: \"" + p.source.replacingOccurrences(of: #"\"#, with: #"\\"#) + "\""
                #expect(text.contains(yaml), "openapi.yaml does not state \(yaml)")
            }
            #expect(text.contains("pattern: \"^[0-9]{1,18}$\""))
            #expect(text.contains("maximum: 999999999999999999"))
        }
    }

    /// The edge's patterns accept what the model accepts, so a name or id
    /// the document allows reaches the model, and one it refuses never does.
    @Test func thePatternsAgreeWithTheModel() throws {
        for name in ["g", "guest-1", "a.b_c", "!x~", String(repeating: "n", count: 64), "", "a b", "a/b", "é",
                     String(repeating: "n", count: 65)] {
            var h = try APHost(.seedExample)
            let model = (try? h.startGuest(name, cpu: try CPUModel(parsing: "host", facilities: Facilities()), device: nil, at: .boot)) != nil
            #expect(APIPattern.guestName.matches(name) == model, "guest name '\(name)'")
        }
        for id in ["hostdev0", "a", "A.b-c_9", "0a", "-a", "a b", "", "é"] {
            #expect(APIPattern.deviceID.matches(id) == VfioAPDevice.isWellFormedID(id), "device id '\(id)'")
        }
        for apqn in ["05.0004", "ff.00ff", "5.4", "05.0100", "05.004", "0A.0004", "05.0004x"] {
            #expect(APIPattern.apqn.matches(apqn) == (APQN(sysfsName: apqn) != nil), "APQN '\(apqn)'")
        }
    }

    @Test func oneMappingFromErrnoToStatus() {
        let expected: [(Errno, HTTPResponse.Status)] = [
            (.noSuchFileOrDirectory, .notFound), (.notDirectory, .notFound),
            (.invalidArgument, .unprocessableContent), (.outOfRange, .unprocessableContent),
            (.argListTooLong, .unprocessableContent), (.isDirectory, .unprocessableContent),
            (.addressInUse, .conflict), (.addressNotAvailable, .conflict), (.resourceBusy, .conflict),
            (.fileExists, .conflict), (.notPermitted, .conflict), (.tooManyUsers, .conflict), (.noSuchDevice, .conflict),
            (.permissionDenied, .forbidden), (.notSupported, .notImplemented), (.connectionRefused, .badGateway),
            (.ioError, .internalServerError),
        ]
        for (errno, status) in expected { #expect(APIError.status(for: errno) == status, "\(errno.symbol)") }
    }

    @Test func aMethodThePathLacksIs405WithAllow() async throws {
        try await app(try seedService()).test(.router) { client in
            for (uri, method, allow) in [("/api/v1/sysfs", HTTPRequest.Method.put, "GET, POST, HEAD"),
                                         ("/api/v1/guests/g1", .post, "GET, DELETE, HEAD"),
                                         ("/api/v1/host/adapters", .get, "POST"),
                                         ("/metrics", .delete, "GET, HEAD"),
                                         ("/api/v1/host", HTTPRequest.Method("QUERY")!, "GET, HEAD")] {
                let r = try await client.execute(uri: uri, method: method, headers: writer)
                try expectError(r, .methodNotAllowed, "ENOTSUP")
                #expect(r.headers[.allow] == allow, "\(method) \(uri)")
            }
            try expectError(try await client.execute(uri: "/api/v1/nothing", method: .put), .notFound, "ENOENT",
                            containing: "no such path: /api/v1/nothing")
            #expect(try await client.execute(uri: "/api/v1/host", method: .head).status == .ok)
        }
    }

    @Test func bodiesAreRefusedAsTheSchemaRefusesThem() async throws {
        try await app(try seedService()).test(.router) { client in
            for (json, message) in [
                (#"{"name":"g","colour":"red"}"#, "unknown field 'colour'; the fields are name, cpu, device, qmp, sysfsMount"),
                (#"{"name":"g","cpu":null}"#, "field 'cpu' is null; leave it out instead"),
                (#"{"cpu":"host"}"#, "field 'name' is required"),
                (#"{"name":5}"#, "field 'name' must be a string"),
                (#"["g"]"#, "not a JSON object"),
                (#"{"name":"a b"}"#, "name 'a b': use a guest name: 1-64 printable ASCII characters without spaces or '/'"),
                (#"{"name":"g","sysfsMount":"tmp/g"}"#, "sysfsMount 'tmp/g': use an absolute path"),
            ] {
                try expectError(try await client.execute(uri: "/api/v1/guests", method: .post, headers: writer, body: ByteBuffer(string: json)),
                                .badRequest, "EINVAL", containing: message)
            }
            for (json, message) in [(#"{"id":256}"#, "id 256: an id 0-255"), (#"{"id":1.5}"#, "field 'id'"), (#"{"id":"5"}"#, "must be an integer")] {
                try expectError(try await client.execute(uri: "/api/v1/host/domains", method: .post, headers: writer, body: ByteBuffer(string: json)),
                                .badRequest, "EINVAL", containing: message)
            }
            try expectError(try await client.execute(uri: "/api/v1/host/adapters", method: .post, headers: writer,
                                                     body: ByteBuffer(string: #"{"id":9,"type":"cex8c"}"#)),
                            .badRequest, "EINVAL", containing: "type 'cex8c': one of CEX3A")
        }
    }

    @Test func queryAndHeaderParametersAreCheckedToo() async throws {
        try await app(try seedService()).test(.router) { client in
            try expectError(try await client.execute(uri: "/api/v1/events?after=1&after=2", method: .get), .badRequest, "EINVAL",
                            containing: "after: give it once, not 2 times")
            try expectError(try await client.execute(uri: "/api/v1/events?after=-1", method: .get), .badRequest, "EINVAL",
                            containing: "after '-1' is not an event sequence number")
            try expectError(try await client.execute(uri: "/api/v1/events/stream", method: .get, headers: [.lastEventID: "x"]),
                            .badRequest, "EINVAL", containing: "Last-Event-ID 'x'")
            try expectError(try await client.execute(uri: "/api/v1/sysfs", method: .get), .badRequest, "EINVAL",
                            containing: "path is required")
            try expectError(try await client.execute(uri: "/api/v1/sysfs?path=/bus/ap/apmask", method: .get), .badRequest, "EINVAL")
            try expectError(try await client.execute(uri: "/api/v1/sysfs?path=bus/ap", method: .get), .unprocessableContent, "EISDIR")
            try expectError(try await client.execute(uri: "/api/v1/sysfs?path=bus/ap/drivers/vfio_ap/bind", method: .get),
                            .forbidden, "EACCES", containing: "write-only")
            try expectError(try await client.execute(uri: "/api/v1/guests/a%20b", method: .get), .badRequest, "EINVAL",
                            containing: "name 'a%20b' is not a guest name")
            try expectError(try await client.execute(uri: "/api/v1/guests/no%2Dsuch", method: .get), .notFound, "ENOENT",
                            containing: "no guest named no-such")
            try expectError(try await client.execute(uri: "/api/v1/host/adapters/05", method: .delete, headers: writer),
                            .badRequest, "EINVAL", containing: "id '05' is not an id 0-255, decimal or 0x hex")
        }
    }

    /// A change without the token, or with a wrong one, is 401 and changes nothing.
    @Test func aChangeNeedsTheToken() async throws {
        let service = try seedService()
        try await app(service).test(.router) { client in
            let write = body(SysfsWriteRequest(path: "bus/ap/apmask", value: "-7"))
            let none = try await client.execute(uri: "/api/v1/sysfs", method: .post, body: write)
            try expectError(none, .unauthorized, "EACCES", containing: "a change needs the daemon's token")
            #expect(none.headers[.wwwAuthenticate] == #"Bearer realm="apmatrix""#)
            try expectError(try await client.execute(uri: "/api/v1/sysfs", method: .post, headers: [.authorization: "Bearer nope"], body: write),
                            .unauthorized, "EACCES", containing: "the token does not match this daemon's")
            #expect(try await client.read("bus/ap/apmask") == "0xf9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n")
        }
    }
}
