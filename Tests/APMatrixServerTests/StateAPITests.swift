import APMatrixRuntime
import APMatrixModel
import APMatrixServer
import APMatrixTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// `GET /check`, `POST /guests/{name}/state`, and the state file behind a runtime.
@Suite struct StateAPITests {
    @Test func checkReportsASoundHost() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            let c = try await client.execute(uri: "/api/v1/check", method: .get) { try decode(CheckDTO.self, $0) }
            #expect(c.violations == [] && c.mdevs == 1 && c.guests == 0 && c.queues == 76 && c.stateFile == nil)
        }
    }

    @Test func aGuestPutsStateIntoItsQueuesOnly() async throws {
        try await app(try seedService()).test(.router) { client in
            try await client.mdev(uuidA, adapters: ["5"], domains: ["4"])
            #expect(try await client.startGuest("g1", uuid: uuidA).status == .created)
            let put = try await client.execute(uri: "/api/v1/guests/g1/state", method: .post, headers: writer,
                                               body: body(HeldStateRequest(apqn: "05.0004", state: "key-1")))
            #expect(put.status == .ok)
            #expect(try decode(GuestDTO.self, put).heldState == ["05.0004": "key-1"])
            let other = try await client.execute(uri: "/api/v1/guests/g1/state", method: .post, headers: writer,
                                                 body: body(HeldStateRequest(apqn: "06.0004", state: "k")))
            #expect(other.status == .conflict)
            #expect(try decode(ErrorDTO.self, other).error.errno == "ENODEV")
            let bad = try await client.execute(uri: "/api/v1/guests/g1/state", method: .post, headers: writer,
                                               body: body(HeldStateRequest(apqn: "5.4", state: "k")))
            #expect(try decode(ErrorDTO.self, bad).error.message == "apqn '5.4': write it as the queue device is named, such as 05.0004")
            // unassigning the domain takes the queue: reset, state gone
            #expect(try await client.write("devices/vfio_ap/matrix/\(uuidA)/unassign_domain", "4").status == .ok)
            let g = try await client.execute(uri: "/api/v1/guests/g1", method: .get) { try decode(GuestDTO.self, $0) }
            #expect(g.heldState == nil)
        }
    }

    /// A commit that fails undoes the change and answers EIO: nothing is
    /// acknowledged that is not durable, and the database keeps the last
    /// acknowledged state.
    @Test func aChangeThatCannotBeSavedIsUndone() throws {
        let dir = "/tmp/apmatrix-state-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(dir, 0o700) == 0)
        defer { _ = system("rm -rf '\(dir)'") }
        let host = try APHost(.seedExample)
        let (store, resumed) = try StateStore.open(path: dir + "/host.db", profile: .seed, fresh: host)
        #expect(resumed == nil)
        let runtime = Runtime(host: host, store: store)
        let sysfs = SysfsEndpoint(runtime)
        try sysfs.write("/bus/ap/apmask", Array("-5".utf8))
        let acknowledged = runtime.snapshot
        store.close()
        var failure: APError?
        do { try sysfs.write("/bus/ap/apmask", Array("-6".utf8)) } catch { failure = error }
        #expect(failure?.errno == .ioError)
        #expect(failure?.message == "state file \(dir)/host.db: closed; the change was undone")
        #expect(try sysfs.read("/bus/ap/apmask") == Array(maskText("fb", fill: "f").utf8))
        #expect(runtime.snapshot == acknowledged)
        #expect(runtime.log().last?.event.line == "ap: 19 queue(s) bound to vfio_ap (apmask change): 05.0000 … 05.00ff")
        // what is on disk is the last acknowledged state
        let (again, saved) = try StateStore.open(path: dir + "/host.db", profile: .seed, fresh: host)
        again.close()
        #expect(saved?.host == acknowledged)
    }
}
