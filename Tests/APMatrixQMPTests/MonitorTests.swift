import APMatrixRuntime
import APMatrixModel
@testable import APMatrixQMP
import APMatrixTesting
import Foundation
import Glibc
import Testing

@Suite("QMP monitor over a raw socket")
struct MonitorTests {
    @Test("greeting line, then negotiation")
    func greetingAndNegotiation() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.client()
        #expect(try c.readLine() == #"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}, "package": ""}, "capabilities": ["oob"]}}"#)
        let early = try c.execute("query-status", id: #""x1""#)
        #expect(early.errorClass == "CommandNotFound")
        #expect(early.errorDesc == "Expecting capabilities negotiation with 'qmp_capabilities'")
        #expect(early["id"] == .string("x1"))
        #expect(try c.execute("quit").errorClass == "CommandNotFound", "quit before negotiation is refused too")
        // qemu.qmp negotiates with oob enabled.
        let ok = try c.execute("qmp_capabilities", #"{"enable": ["oob"]}"#, id: #""__qmp#00000""#)
        #expect(ok.isEmptyReturn)
        #expect(ok["id"] == .string("__qmp#00000"))
        let again = try c.execute("qmp_capabilities")
        #expect(again.errorClass == "CommandNotFound")
        #expect(again.errorDesc == "Capabilities negotiation is already complete, command ignored")
        // With oob enabled exec-oob is a known member, but no command here supports OOB.
        let oob = try c.command(#"{"exec-oob": "query-status", "id": "o"}"#)
        #expect(oob.errorDesc == "The command query-status does not support OOB")
        #expect(oob["id"] == .string("o"))
    }

    @Test("qmp_capabilities argument checks")
    func capabilityArguments() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.client()
        _ = try c.readMessage()
        #expect(try c.execute("qmp_capabilities", #"{"enable": ["bogus"]}"#).errorDesc == "Parameter 'enable[0]' does not accept value 'bogus'")
        #expect(try c.execute("qmp_capabilities", #"{"enable": "oob"}"#).errorDesc == "Invalid parameter type for 'enable', expected: array")
        #expect(try c.execute("qmp_capabilities", #"{"x": 1}"#).errorDesc == "Parameter 'x' is unexpected")
        #expect(try c.execute("qmp_capabilities").isEmptyReturn)
    }

    @Test("query-commands, query-status, query-version; every reply ends with CRLF")
    func queries() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        let names = Set(try #require(c.execute("query-commands")["return"].flatMap { v -> [String]? in
            guard case .array(let a) = v else { return nil }
            return a.compactMap { $0["name"]?.stringValue }
        }))
        #expect(names == ["qmp_capabilities", "query-commands", "query-status", "query-version", "device_add", "device_del",
                          "human-monitor-command", "quit", "migrate", "migrate_cancel", "migrate-continue", "migrate-incoming", "migrate-set-capabilities",
                          "query-migrate", "query-migrate-capabilities"])
        try c.send(#"{"execute": "query-status"}"#)
        #expect(try c.readLine() == #"{"return": {"status": "running", "singlestep": false, "running": true}}"#)
        try c.send(#"{"execute": "query-version", "id": 7}"#)
        #expect(try c.readLine() == #"{"return": {"qemu": {"micro": 0, "minor": 2, "major": 8}, "package": ""}, "id": 7}"#)
    }

    @Test("beside the upstream profile the monitor is QEMU 10.1 (SPEC §3), in the greeting and query-version")
    func upstreamIsQEMU10_1() throws {
        let f = try Fixture(profile: .upstream)
        defer { f.close() }
        let c = try f.client()
        #expect(try c.readLine() == #"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": ""}, "capabilities": ["oob"]}}"#)
        #expect(try c.execute("qmp_capabilities").isEmptyReturn)
        try c.send(#"{"execute": "query-version", "id": 7}"#)
        #expect(try c.readLine() == #"{"return": {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": ""}, "id": 7}"#)
    }

    @Test("ids of any JSON type are echoed exactly")
    func idEcho() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        for id in [#""abc""#, "42", "123456789012345678901234567890", #"{"a": [1, "b"]}"#, "null", "-1.5e3", "true"] {
            try c.send(#"{"id": \#(id), "execute": "query-version"}"#)
            let line = try #require(try c.readLine())
            #expect(line.hasSuffix(#", "id": \#(id)}"#), "\(line)")
        }
        // Errors echo the id too.
        try c.send(#"{"execute": "nope", "id": [1, 2]}"#)
        #expect(try c.readLine() == #"{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}, "id": [1, 2]}"#)
    }

    @Test("messages without newlines, several per write, and byte by byte")
    func streamFraming() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.client()
        _ = try c.readMessage()
        try c.send(#"{"execute":"qmp_capabilities","id":1}{"execute":"query-status","id":2}  {"execute":"query-version","id":3}"#)
        #expect(try c.reply()["id"] == .number(1))
        #expect(try c.reply()["id"] == .number(2))
        #expect(try c.reply()["id"] == .number(3))
        for b in #"{"execute": "query-status", "id": "slow", "arguments": {}}"#.utf8 {
            try c.sendBytes([b])
        }
        let r = try c.reply()
        #expect(r["id"] == .string("slow"))
        #expect(r["return"]?["running"] == .bool(true))
    }

    @Test("envelope and argument errors have QEMU's wording")
    func errors() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        func check(_ request: String, _ cls: String, _ desc: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try c.command(request)
            #expect(r.errorClass == cls, "\(request)", sourceLocation: sourceLocation)
            #expect(r.errorDesc == desc, "\(request)", sourceLocation: sourceLocation)
        }
        try check("[1, 2]", "GenericError", "QMP input must be a JSON object")
        try check(#""execute""#, "GenericError", "QMP input must be a JSON object")
        try check(#"{"arguments": {}}"#, "GenericError", "QMP input lacks member 'execute'")
        try check(#"{"execute": 1}"#, "GenericError", "QMP input member 'execute' must be a string")
        try check(#"{"execute": "query-status", "arguments": []}"#, "GenericError", "QMP input member 'arguments' must be an object")
        try check(#"{"execute": "query-status", "extra": 1}"#, "GenericError", "QMP input member 'extra' is unexpected")
        try check(#"{"exec-oob": "query-status"}"#, "GenericError", "QMP input member 'exec-oob' is unexpected")
        try check(#"{"execute": "query-status", "arguments": {"verbose": true}}"#, "GenericError", "Parameter 'verbose' is unexpected")
        try check(#"{"execute": "device_del"}"#, "GenericError", "Parameter 'id' is missing")
        try check(#"{"execute": "device_del", "arguments": {"id": 5}}"#, "GenericError", "Invalid parameter type for 'id', expected: string")
        try check(#"{"execute": "device_del", "arguments": {"id": "hostdev0", "force": true}}"#, "GenericError", "Parameter 'force' is unexpected")
        try check(#"{"execute": "human-monitor-command"}"#, "GenericError", "Parameter 'command-line' is missing")
        try check(#"{"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": 3}}"#,
                  "GenericError", "Parameter 'cpu-index' expects a CPU number")
        // The seed's misspellings are not QEMU commands.
        try check(#"{"execute": "device-del", "arguments": {"id": "hostdev0"}}"#, "CommandNotFound", "The command device-del has not been found")
        try check(#"{"execute": "device-add", "arguments": {"driver": "vfio-ap"}}"#, "CommandNotFound", "The command device-add has not been found")
        try check(#"{"execute": "system_reset"}"#, "CommandNotFound", "The command system_reset has not been found")
        // Bad JSON: a parse error, then the stream goes on.
        let bad = try c.command(#"{"execute": }"#)
        #expect(bad.errorClass == "GenericError")
        #expect(bad.errorDesc?.hasPrefix("JSON parse error, ") == true)
        #expect(bad["id"] == nil)
        #expect(try c.execute("query-status")["return"] != nil)
        // Nothing changed in the model.
        #expect(f.runtime.snapshot.guests["g1"]?.device?.id == "hostdev0")
    }

    @Test("device_del: return, then DEVICE_DELETED; the model released the mdev")
    func deviceDel() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        try c.send(#"{"execute": "device_del", "arguments": {"id": "hostdev0"}, "id": "d1"}"#)
        let first = try c.readMessage()
        #expect(first.isEmptyReturn, "the reply comes before the event: \(first.serialized)")
        #expect(first["id"] == .string("d1"))
        let ev = try c.event("DEVICE_DELETED")
        #expect(ev["data"] == .object(["device": .string("hostdev0"), "path": .string("/machine/peripheral/hostdev0")]))
        #expect(ev["timestamp"]?["seconds"]?.intValue ?? 0 > 1_600_000_000)
        #expect(ev["timestamp"]?["microseconds"]?.intValue != nil)
        let host = f.runtime.snapshot
        #expect(host.guests["g1"]?.device == nil)
        #expect(host.vfio.mdevs[mdevA]?.guest == nil)
        let again = try c.execute("device_del", #"{"id": "hostdev0"}"#)
        #expect(again.errorClass == "DeviceNotFound")
        #expect(again.errorDesc == "Device 'hostdev0' not found")
    }

    @Test("device_add: hot plug, VFIO_AP_CFG_CHANGED, and the model's refusals")
    func deviceAdd() throws {
        let f = try Fixture(plugged: false)
        defer { f.close() }
        let c = try f.negotiated()
        func add(_ args: String) throws -> JSONValue { try c.execute("device_add", args) }
        #expect(try add(#"{"driver": "virtio-net-ccw", "id": "n0"}"#).errorDesc == "'virtio-net-ccw' is not a valid device model name")
        #expect(try add(#"{"id": "hostdev0", "sysfsdev": "/x"}"#).errorDesc == "Parameter 'driver' is missing")
        #expect(try add(#"{"driver": "vfio-ap", "id": "hostdev0"}"#).errorDesc == "Parameter 'sysfsdev' is missing")
        #expect(try add(#"{"driver": "vfio-ap", "id": "hostdev0", "sysfsdev": "\#(sysfsdev(mdevA))", "bogus": 1}"#).errorDesc
                == "Property 'vfio-ap.bogus' not found")
        #expect(try add(#"{"driver": "vfio-ap", "id": "0bad", "sysfsdev": "\#(sysfsdev(mdevA))"}"#).errorDesc
                == "Parameter 'id' expects an identifier")
        let notMdev = try add(#"{"driver": "vfio-ap", "id": "hostdev0", "sysfsdev": "/sys/devices/css0/0.0.0001"}"#)
        #expect(notMdev.errorClass == "GenericError")
        #expect(notMdev.errorDesc?.contains("/sys/devices/css0/0.0.0001") == true)
        let unknown = try add(#"{"driver": "vfio-ap", "id": "hostdev0", "sysfsdev": "/sys/bus/mdev/devices/4ab2c9b1-0c35-4f6a-9d0e-6e8a1f2b3c4d"}"#)
        #expect(unknown.errorDesc?.contains("no such mdev") == true)
        #expect(f.runtime.snapshot.guests["g1"]?.device == nil, "refusals change nothing")

        // libvirt's form.
        let ok = try add(#"{"driver": "vfio-ap", "id": "hostdev0", "sysfsdev": "\#(sysfsdev(mdevA))"}"#)
        #expect(ok.isEmptyReturn)
        let cfg = try c.event("__io.github.apmatrix_VFIO_AP_CFG_CHANGED")
        #expect(cfg["data"]?["device"] == .string("hostdev0"))
        #expect(cfg["data"]?["before"]?["apm"]?.ints == [])
        #expect(cfg["data"]?["after"]?["apm"]?.ints == [5])
        #expect(cfg["data"]?["after"]?["aqm"]?.ints == [4])
        #expect(cfg["data"]?["after"]?["adm"]?.ints == [4])
        #expect(f.runtime.snapshot.guests["g1"]?.device == VfioAPDevice(id: "hostdev0", mdev: mdevA, sysfsdev: sysfsdev(mdevA)))

        // A second vfio-ap device: the model's message.
        let second = try add(#"{"driver": "vfio-ap", "id": "hostdev1", "sysfsdev": "/sys/devices/vfio_ap/matrix/\#(mdevB)"}"#)
        #expect(second.errorClass == "GenericError")
        #expect(second.errorDesc?.contains("only one vfio-ap device") == true)
    }

    @Test("device_add of an mdev another guest uses, and on a guest with ap=off")
    func deviceAddRefusedByModel() throws {
        let f = try Fixture(plugged: false)
        defer { f.close() }
        try f.runtime.perform("test") { (h: inout APHost) throws(APError) in
            try h.startGuest("g2", cpu: CPUModel(parsing: "host", facilities: h.firmware.facilities),
                             device: VfioAPDevice(id: "hostdev0", mdev: mdevA, sysfsdev: sysfsdev(mdevA)), at: .boot)
        }
        let c = try f.negotiated()
        let busy = try c.execute("device_add", #"{"driver": "vfio-ap", "id": "hostdev0", "sysfsdev": "\#(sysfsdev(mdevA))"}"#)
        #expect(busy.errorClass == "GenericError")
        #expect(busy.errorDesc == "mdev \(mdevA) is in use by guest g2")

        let g = try Fixture(plugged: false, cpu: "host,ap=off", guest: "g3")
        defer { g.close() }
        let d = try g.negotiated()
        let off = try d.execute("device_add", #"{"driver": "vfio-ap", "id": "hostdev0", "sysfsdev": "\#(sysfsdev(mdevA))"}"#)
        #expect(off.errorClass == "GenericError")
        #expect(off.errorDesc?.contains("ap=on") == true)
    }

    @Test("a QMP client sees only QEMU's own events, or ones with QAPI's downstream-extension prefix")
    func onlyQEMUEventNames() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        try f.runtime.perform("test") { (h: inout APHost) throws(APError) in try h.assign(.domain(5), to: mdevA) }
        try f.runtime.perform("test") { (h: inout APHost) throws(APError) in try h.unassign(.domain(5), from: mdevA) }
        #expect(try c.execute("device_del", #"{"id": "hostdev0"}"#).isEmptyReturn)
        #expect(try c.execute("quit").isEmptyReturn)
        var names = c.events.compactMap { $0["event"]?.stringValue }
        while let line = try c.readLine() {
            if let name = (try? JSONValue.parse(Array(line.utf8)))?["event"]?.stringValue { names.append(name) }
        }
        #expect(names.count == 5, "\(names)")
        let qemu: Set = ["DEVICE_DELETED", "SHUTDOWN"]
        #expect(names.allSatisfy { qemu.contains($0) || $0.hasPrefix("__") }, "\(names)")
    }

    @Test("VFIO_AP_CFG_CHANGED after an assign while plugged; DEVICE_DELETED on unplug by the API and on stop")
    func eventsFromOtherPaths() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        try f.runtime.perform("test") { (h: inout APHost) throws(APError) in try h.assign(.domain(5), to: mdevA) }
        let ev = try c.event("__io.github.apmatrix_VFIO_AP_CFG_CHANGED")
        #expect(ev["data"]?["device"] == .string("hostdev0"))
        #expect(ev["data"]?["before"]?["aqm"]?.ints == [4])
        #expect(ev["data"]?["after"]?["aqm"]?.ints == [4, 5])
        #expect(ev["data"]?["after"]?["apm"]?.ints == [5])
        #expect(ev["data"]?["cause"]?.stringValue?.isEmpty == false)

        // The control API's unplug.
        _ = try f.runtime.perform("test") { (h: inout APHost) throws(APError) in try h.unplugDevice("g1", id: "hostdev0") }
        let cleared = try c.event("__io.github.apmatrix_VFIO_AP_CFG_CHANGED")
        #expect(cleared["data"]?["after"]?["apm"]?.ints == [])
        #expect(try c.event("DEVICE_DELETED")["data"]?["device"] == .string("hostdev0"))

        // Plug again through QMP, then stop the guest from outside.
        #expect(try c.execute("device_add", #"{"driver": "vfio-ap", "id": "hd1", "sysfsdev": "\#(sysfsdev(mdevA))"}"#).isEmptyReturn)
        _ = try c.event("__io.github.apmatrix_VFIO_AP_CFG_CHANGED")
        try f.runtime.perform("test") { (h: inout APHost) throws(APError) in try h.stopGuest("g1") }
        #expect(try c.event("DEVICE_DELETED")["data"]?["device"] == .string("hd1"))
        // The guest is gone, and with it its monitor (QEMU exits).
        while let m = try c.readLine() { _ = m }
        #expect(f.eventually { access(f.socket, F_OK) != 0 })
    }

    @Test("events from concurrent operations arrive in model order: each CRYCB change starts where the last ended")
    func eventOrder() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        let runtime = f.runtime
        let threads = [Assignment.domain(5), .controlDomain(6)].map { id in
            Job {
                for i in 0..<200 {
                    try? runtime.perform("test") { (h: inout APHost) throws(APError) in
                        if i % 2 == 0 { try h.assign(id, to: mdevA) } else { try h.unassign(id, from: mdevA) }
                    }
                }
            }
        }
        let done = Counter()
        for t in threads {
            let body = t
            Thread { body.run(); done.increment() }.start()
        }
        #expect(f.eventually(30) { done.value == 2 })
        try c.send(#"{"execute": "query-status", "id": "end"}"#)
        #expect(try c.reply()["id"] == .string("end"))
        let changes = c.events.filter { $0["event"] == .string("__io.github.apmatrix_VFIO_AP_CFG_CHANGED") }
        #expect(changes.count == 400, "\(Dictionary(grouping: changes, by: { $0["data"]?["cause"]?.stringValue ?? "" }).mapValues(\.count))")
        for (a, b) in zip(changes, changes.dropFirst()) where a["data"]?["after"] != b["data"]?["before"] {
            Issue.record("out of order: \(a.serialized) then \(b.serialized)")
            break
        }
    }

    @Test("events go only to connections that finished negotiation")
    func eventsOnlyAfterNegotiation() throws {
        let f = try Fixture()
        defer { f.close() }
        let quiet = try f.client()
        _ = try quiet.readMessage()
        let c = try f.negotiated()
        #expect(try c.execute("device_del", #"{"id": "hostdev0"}"#).isEmptyReturn)
        _ = try c.event("DEVICE_DELETED")
        // The first thing the quiet client sees after negotiating is the reply.
        try quiet.send(#"{"execute": "qmp_capabilities"}"#)
        #expect(try quiet.readMessage().isEmptyReturn)
        try quiet.send(#"{"execute": "query-status"}"#)
        #expect(try quiet.readMessage()["return"]?["status"] == .string("running"))
    }

    @Test("HMP: info, device_del, device_add, errors as text")
    func hmp() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        func hmp(_ line: String) throws -> String? {
            try c.execute("human-monitor-command", #"{"command-line": "\#(line)"}"#)["return"]?.stringValue
        }
        #expect(try hmp("info status") == "VM status: running\r\n")
        let tree = try #require(try hmp("info qtree"))
        #expect(tree.contains("dev: ap-bridge, id \"\"\r\n    bus: ap-bus\r\n      type ap-bus\r\n"))
        #expect(tree.contains("dev: vfio-ap, id \"hostdev0\"\r\n        sysfsdev = \"\(sysfsdev(mdevA))\"\r\n"))
        #expect(try hmp("device-del hostdev0") == "unknown command: 'device-del'\r\n")
        #expect(try hmp("frobnicate now") == "unknown command: 'frobnicate'\r\n")
        #expect(try hmp("info nothing") == "unknown command: 'info nothing'\r\n")
        #expect(try hmp("device_del hostdev0") == "")
        _ = try c.event("DEVICE_DELETED")
        #expect(try hmp("info qtree")?.contains("vfio-ap") == false)
        #expect(try hmp("device_del hostdev0") == "Error: Device 'hostdev0' not found\r\n")
        #expect(try hmp("device_add vfio-ap,sysfsdev=/nowhere,id=hostdev0")?.hasPrefix("Error: vfio-ap: sysfsdev '/nowhere'") == true)
        #expect(try hmp("device_add e1000,id=n0") == "Error: 'e1000' is not a valid device model name\r\n")
        #expect(try hmp("device_add vfio-ap,sysfsdev=\(sysfsdev(mdevA)),id=hostdev0") == "")
        _ = try c.event("__io.github.apmatrix_VFIO_AP_CFG_CHANGED")
        #expect(f.runtime.snapshot.guests["g1"]?.device?.id == "hostdev0")
        #expect(try hmp("info version") == "8.2.0\r\n")
        #expect(try hmp("help")?.contains("device_del device -- remove device\r\n") == true)
        #expect(try hmp("info")?.contains("info qtree") == true)
    }

    @Test("quit: return, SHUTDOWN, the guest stops, the runtime closes the monitor and its socket")
    func quit() throws {
        let f = try Fixture()
        defer { f.close() }
        let other = try f.negotiated()
        let c = try f.negotiated()
        try c.send(#"{"execute": "quit", "id": "q"}"#)
        let r = try c.readMessage()
        #expect(r.isEmptyReturn)
        #expect(r["id"] == .string("q"))
        let shutdown = try c.readMessage()
        #expect(shutdown["event"] == .string("SHUTDOWN"))
        #expect(shutdown["data"] == .object(["guest": .bool(false), "reason": .string("host-qmp-quit")]))
        // Drain to EOF.
        while let m = try c.readLine() { _ = m }
        #expect(f.runtime.snapshot.guests["g1"] == nil)
        // The other client hears SHUTDOWN and is closed too.
        #expect(try other.event("SHUTDOWN")["data"]?["reason"] == .string("host-qmp-quit"))
        while let m = try other.readLine() { _ = m }
        #expect(f.eventually { access(f.socket, F_OK) != 0 }, "the socket is removed when the runtime closes the monitor")
        #expect(f.runtime.monitorSocket("g1") == nil)
    }

    @Test("abrupt disconnects leak no connection")
    func abruptDisconnect() throws {
        let f = try Fixture()
        defer { f.close() }
        for i in 0..<20 {
            let c = try f.client()
            switch i % 4 {
            case 0: break                                                     // gone before the greeting is read
            case 1: try c.send(#"{"execute": "qmp_capa"#)                    // half a message
            case 2: _ = try c.readMessage(); try c.send(#"{"execute": "qmp_capabilities"}{"execute": "device_del", "arguments": {"id": "x"}}"#)
            default: c.shutdownWrite(); _ = try c.readMessage()               // half-close
            }
        }
        #expect(f.eventually { f.monitor.connectionCount == 0 }, "connections: \(f.monitor.connectionCount)")
        // The monitor still works.
        let c = try f.negotiated()
        #expect(try c.execute("query-status")["return"] != nil)
    }

    @Test("a half-closed client still gets its replies")
    func halfClose() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.client()
        try c.send(#"{"execute": "qmp_capabilities"}{"execute": "query-version"}"#)
        c.shutdownWrite()
        _ = try c.readMessage()
        #expect(try c.readMessage().isEmptyReturn)
        #expect(try c.readMessage()["return"]?["qemu"]?["major"] == .number(8))
        #expect(try c.readEOF())
    }

    @Test("a 2 MiB message is refused and the connection goes on")
    func hugeMessage() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        var big = Array(#"{"execute": "device_del", "arguments": {"id": ""#.utf8)
        big += [UInt8](repeating: UInt8(ascii: "h"), count: 2 << 20)
        big += Array(#""}}"#.utf8)
        try c.sendBytes(big)
        let r = try c.reply()
        #expect(r.errorClass == "GenericError")
        #expect(r.errorDesc == "JSON parse error, message exceeds 1048576 bytes")
        #expect(try c.execute("query-status", id: "9")["id"] == .number(9))
        #expect(f.runtime.snapshot.guests["g1"]?.device?.id == "hostdev0")
    }

    @Test("garbage bytes get errors, never kill the monitor")
    func garbage() throws {
        let f = try Fixture()
        defer { f.close() }
        let c = try f.negotiated()
        try c.sendBytes([0xff, 0xfe, 0x00, 0x01, 0x20] + Array("}}]] :,, \u{7}xyz ".utf8))
        try c.sendBytes(Array(#"{"execute": "\#u{0}"} {"a": "\#u{1}"} [[[[ ]]]] "#.utf8) + [0x22, 0xc3, 0x28, 0x22, 0x20])
        try c.sendBytes(Array(#"{"execute": "query-status", "id": "after"}"#.utf8))
        var errors = 0
        while true {
            let m = try c.reply()
            if m["id"] == .string("after") { #expect(m["return"] != nil); break }
            #expect(m.errorClass == "GenericError", "\(m.serialized)")
            errors += 1
        }
        #expect(errors >= 5)
        // A random stream, then a good command.
        var g = SystemRandomNumberGenerator()
        let noise = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &g) }.map { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") ? 0x20 : $0 }
        try c.sendBytes(noise + Array(#" {"execute": "query-status", "id": "end"}"#.utf8))
        while try c.reply()["id"] != .string("end") {}
    }

    @Test("a client that never reads blocks neither the runtime nor other clients")
    func stuckClient() throws {
        let f = try Fixture()
        defer { f.close() }
        let stuck = try f.negotiated()
        _ = stuck
        let start = Date()
        for i in 0..<4000 {
            try f.runtime.perform("test") { (h: inout APHost) throws(APError) in
                if i % 2 == 0 { try h.assign(.domain(5), to: mdevA) } else { try h.unassign(.domain(5), from: mdevA) }
            }
        }
        #expect(Date().timeIntervalSince(start) < 10)
        let c = try f.negotiated()
        #expect(try c.execute("query-status")["return"] != nil)
    }

    @Test("stop is idempotent, removes the socket; a live socket is EADDRINUSE, a stale one is replaced")
    func lifecycle() throws {
        let f = try Fixture()
        defer { f.close() }
        let runtime = f.runtime
        #expect(throws: QMPError.self) {
            _ = try QMPMonitor(runtime: runtime, guest: "g1", socketPath: f.socket)
        }
        do {
            _ = try QMPMonitor(runtime: runtime, guest: "g1", socketPath: f.socket)
        } catch {
            #expect(error.errno == EADDRINUSE)
            #expect(error.description.hasPrefix("EADDRINUSE: "))
        }
        let c = try f.negotiated()
        f.monitor.stop()
        f.monitor.stop()
        #expect(access(f.socket, F_OK) != 0)
        #expect(try c.readEOF())
        #expect(f.monitor.connectionCount == 0)

        // A stale socket file (nobody listening) is replaced.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = unixAddress(f.socket)!
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        Glibc.close(fd)
        #expect(access(f.socket, F_OK) == 0)
        let m = try QMPMonitor(runtime: runtime, guest: "g1", socketPath: f.socket)
        defer { m.stop() }
        m.start()
        let d = try RawClient(f.socket)
        #expect(try d.readMessage()["QMP"] != nil)

        // A path that does not fit sun_path.
        do {
            _ = try QMPMonitor(runtime: runtime, guest: "g1", socketPath: "/tmp/" + String(repeating: "p", count: 200))
            Issue.record("a 205-byte path was accepted")
        } catch {
            #expect(error.errno == ENAMETOOLONG)
        }
    }
}

/// A body to run on a thread.
struct Job: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

