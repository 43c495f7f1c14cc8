import APMatrixModel
import APMatrixRuntime
import Glibc

/// What one connection has negotiated.
struct QMPSession: Sendable {
    /// `qmp_capabilities` succeeded: commands run and events are delivered.
    var negotiated = false
    /// The client enabled the `oob` capability, which makes `exec-oob` a known member.
    var oob = false
}

/// A QMP error with QEMU's error class.
struct QMPFailure: Error {
    let errorClass: String
    let desc: String
    static func generic(_ desc: String) -> QMPFailure { QMPFailure(errorClass: "GenericError", desc: desc) }
}

/// What the connection must do with a handled message.
enum QMPOutcome {
    /// Send this reply.
    case reply(QJSON)
    /// `qmp_capabilities` succeeded: send the reply and start delivering events.
    case negotiated(QJSON)
    /// `quit`: send the reply, then shut the guest down and close.
    case quit(QJSON)
}

/// The QMP command set of one guest, as QEMU 8.2 answers it (SPEC §4,
/// clients.md "QMP clients"). Pure apart from `Runtime.perform`, so the
/// socket layer only moves bytes.
struct QMPCommands: Sendable {
    let runtime: Runtime
    let guest: String

    /// This project's event for a CRYCB change of the guest. QEMU has no such
    /// event, so it carries QAPI's downstream-extension prefix (`__` and a
    /// reversed domain), which QMP clients know to be not QEMU's own.
    static let configChangedEvent = "__io.github.apmatrix_VFIO_AP_CFG_CHANGED"

    /// The QEMU this guest's monitor is (the profile's; ProfileRules.qemuVersion).
    var version: QJSON {
        let v = runtime.read { $0.qemuVersion }
        return .object([
            ("qemu", .object([("micro", .int(v.micro)), ("minor", .int(v.minor)), ("major", .int(v.major))])),
            ("package", .string("")),
        ])
    }

    var greeting: QJSON {
        .object([("QMP", .object([("version", version), ("capabilities", .array([.string("oob")]))]))])
    }

    /// Every command this monitor knows, for `query-commands`.
    static let commandNames = [
        "qmp_capabilities", "query-commands", "query-status", "query-version",
        "device_add", "device_del", "human-monitor-command", "quit",
    ] + migrationCommandNames

    static func errorReply(_ f: QMPFailure, id: QJSON?) -> QJSON {
        var members: [(String, QJSON)] = [("error", .object([("class", .string(f.errorClass)), ("desc", .string(f.desc))]))]
        if let id { members.append(("id", id)) }
        return .object(members)
    }

    static func returnReply(_ v: QJSON, id: QJSON?) -> QJSON {
        var members: [(String, QJSON)] = [("return", v)]
        if let id { members.append(("id", id)) }
        return .object(members)
    }

    /// `{"event": NAME, "data": DATA, "timestamp": {…}}` stamped with the wall
    /// clock, as QEMU does; an event without data (`STOP`) has no `data` member.
    static func event(_ name: String, _ data: QJSON?) -> QJSON {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return .object([("event", .string(name))] + (data.map { [("data", $0)] } ?? []) + [
            ("timestamp", .object([("seconds", .int(Int(ts.tv_sec))), ("microseconds", .int(Int(ts.tv_nsec / 1000)))])),
        ])
    }

    // MARK: dispatch

    /// One message off the stream: parse, check the envelope the way QEMU's
    /// `qmp_dispatch` does (in its order), then run the command.
    func handle(_ message: Result<[UInt8], QMPStreamError>, session: inout QMPSession) -> QMPOutcome {
        let bytes: [UInt8]
        switch message {
        case .failure(let e): return .reply(Self.errorReply(.generic(e.description), id: nil))
        case .success(let b): bytes = b
        }
        let request: QJSON
        do throws(QJSONError) { request = try QJSONParser.parse(bytes) } catch {
            return .reply(Self.errorReply(.generic(error.description), id: nil))
        }
        guard case .object(let members) = request else {
            return .reply(Self.errorReply(.generic("QMP input must be a JSON object"), id: nil))
        }
        let id = request["id"]
        var command: String?
        var oob = false
        var arguments: [(String, QJSON)] = []
        for (key, value) in members {
            switch key {
            case "execute", "exec-oob":
                // exec-oob is a member only once the client enabled oob.
                if key == "exec-oob" && !session.oob {
                    return .reply(Self.errorReply(.generic("QMP input member 'exec-oob' is unexpected"), id: id))
                }
                guard case .string(let name) = value else {
                    return .reply(Self.errorReply(.generic("QMP input member '\(key)' must be a string"), id: id))
                }
                if command != nil {
                    return .reply(Self.errorReply(.generic("QMP input member '\(key)' clashes with '\(oob ? "exec-oob" : "execute")'"), id: id))
                }
                command = name
                oob = key == "exec-oob"
            case "arguments":
                guard case .object(let a) = value else {
                    return .reply(Self.errorReply(.generic("QMP input member 'arguments' must be an object"), id: id))
                }
                arguments = a
            case "id":
                continue
            default:
                return .reply(Self.errorReply(.generic("QMP input member '\(key)' is unexpected"), id: id))
            }
        }
        guard let name = command else {
            return .reply(Self.errorReply(.generic("QMP input lacks member 'execute'"), id: id))
        }
        // Before negotiation only qmp_capabilities exists; QEMU rewrites the
        // CommandNotFound of anything else into a hint.
        guard session.negotiated || name == "qmp_capabilities" else {
            return .reply(Self.errorReply(QMPFailure(errorClass: "CommandNotFound",
                                                     desc: "Expecting capabilities negotiation with 'qmp_capabilities'"), id: id))
        }
        guard Self.commandNames.contains(name) else {
            return .reply(Self.errorReply(QMPFailure(errorClass: "CommandNotFound", desc: "The command \(name) has not been found"), id: id))
        }
        if oob {
            return .reply(Self.errorReply(.generic("The command \(name) does not support OOB"), id: id))
        }
        do throws(QMPFailure) {
            switch name {
            case "qmp_capabilities":
                try qmpCapabilities(Args(arguments), session: &session)
                return .negotiated(Self.returnReply(.object([]), id: id))
            case "quit":
                try Args(arguments).done()
                return .quit(Self.returnReply(.object([]), id: id))
            default:
                return .reply(Self.returnReply(try run(name, Args(arguments)), id: id))
            }
        } catch {
            return .reply(Self.errorReply(error, id: id))
        }
    }

    private func qmpCapabilities(_ args: Args, session: inout QMPSession) throws(QMPFailure) {
        var args = args
        let enable = try args.optional("enable", .array)
        try args.done()
        if session.negotiated {
            throw QMPFailure(errorClass: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored")
        }
        var oob = false
        if case .array(let items)? = enable {
            for (n, item) in items.enumerated() {
                guard case .string(let cap) = item else {
                    throw .generic("Invalid parameter type for 'enable[\(n)]', expected: string")
                }
                guard cap == "oob" else { throw .generic("Parameter 'enable[\(n)]' does not accept value '\(cap)'") }
                oob = true
            }
        }
        session.negotiated = true
        session.oob = oob
    }

    private func run(_ name: String, _ args: Args) throws(QMPFailure) -> QJSON {
        var args = args
        switch name {
        case "query-commands":
            try args.done()
            return .array(Self.commandNames.map { .object([("name", .string($0))]) })
        case "query-version":
            try args.done()
            return version
        case "query-status":
            try args.done()
            let state = runtime.snapshot.guests[guest]?.runState
            return .object([("status", .string(state?.rawValue ?? "shutdown")), ("singlestep", .bool(false)),
                            ("running", .bool(state?.isRunning ?? false))])
        case "device_add":
            try deviceAdd(args.members)
            return .object([])
        case "device_del":
            let id = try args.required("id", .string).stringValue!
            try args.done()
            try deviceDel(id)
            return .object([])
        case "human-monitor-command":
            let line = try args.required("command-line", .string).stringValue!
            if let cpu = try args.optional("cpu-index", .integer), cpu.intValue != 0 {
                throw .generic("Parameter 'cpu-index' expects a CPU number")
            }
            try args.done()
            return .string(HMP(commands: self).execute(line))
        default:
            return try runMigrationCommand(name, args)
        }
    }

    // MARK: the device commands, shared with HMP

    /// `device_add` takes free-form properties, as in QEMU: `driver` first,
    /// then the device's own properties. Unknown properties get QEMU's
    /// "Property 'vfio-ap.X' not found".
    func deviceAdd(_ props: [(String, QJSON)]) throws(QMPFailure) {
        guard let driverValue = props.first(where: { $0.0 == "driver" })?.1, case .string(let driver) = driverValue else {
            throw .generic("Parameter 'driver' is missing")
        }
        guard driver == "vfio-ap" else { throw .generic("'\(driver)' is not a valid device model name") }
        var sysfsdev: String?
        var id: String?
        var properties: [(String, String)] = []
        for (key, value) in props where key != "driver" {
            switch (key, value) {
            case ("sysfsdev", .string(let s)): sysfsdev = s
            case ("id", .string(let s)): id = s
            case ("enable-migration", .string(let s)): properties.append((key, s))
            case ("migration-events", .bool(let b)): properties.append((key, b ? "on" : "off"))
            case ("sysfsdev", _), ("id", _), ("enable-migration", _):
                throw .generic("Invalid parameter type for '\(key)', expected: string")
            case ("migration-events", _):
                throw .generic("Invalid parameter type for '\(key)', expected: boolean")
            default:
                throw .generic("Property 'vfio-ap.\(key)' not found")
            }
        }
        // QEMU allows an anonymous device; the model names every device, and
        // device_del needs the id, so it is required here.
        guard let id else { throw .generic("Parameter 'id' is missing") }
        guard VfioAPDevice.isWellFormedID(id) else { throw .generic("Parameter 'id' expects an identifier") }
        guard let path = sysfsdev else { throw .generic("Parameter 'sysfsdev' is missing") }
        guard VfioAPDevice.mdev(sysfsdev: path) != nil else {
            throw .generic("vfio-ap: sysfsdev '\(path)' is not a vfio_ap mediated device: "
                + "give /sys/bus/mdev/devices/<uuid> or /sys/devices/vfio_ap/matrix/<uuid>")
        }
        let guest = self.guest
        do throws(APError) {
            let device = try VfioAPDevice(sysfsdev: path, id: id, properties: properties)
            try runtime.perform("qmp:device_add") { (host: inout APHost) throws(APError) in try host.plugDevice(guest, device) }
        } catch {
            throw .generic(error.message)
        }
    }

    /// `device_del`: DeviceNotFound for an id the guest does not have (or no guest).
    func deviceDel(_ id: String) throws(QMPFailure) {
        let guest = self.guest
        do throws(APError) {
            _ = try runtime.perform("qmp:device_del") { (host: inout APHost) throws(APError) in try host.unplugDevice(guest, id: id) }
        } catch {
            if error.errno.symbol == "ENOENT" { throw QMPFailure(errorClass: "DeviceNotFound", desc: "Device '\(id)' not found") }
            throw .generic(error.message)
        }
    }
}

/// A command's arguments, checked the way QEMU's generated marshallers do:
/// members in schema order (missing or mistyped first), then anything left
/// over is unexpected.
struct Args {
    enum Kind: String { case string, integer, array, boolean }
    let members: [(String, QJSON)]
    private var used: Set<String> = []

    init(_ members: [(String, QJSON)]) { self.members = members }

    mutating func optional(_ name: String, _ kind: Kind) throws(QMPFailure) -> QJSON? {
        guard let v = members.first(where: { $0.0 == name })?.1 else { return nil }
        used.insert(name)
        let ok: Bool
        switch (kind, v) {
        case (.string, .string): ok = true
        case (.integer, .number): ok = v.intValue != nil
        case (.array, .array): ok = true
        case (.boolean, .bool): ok = true
        default: ok = false
        }
        guard ok else { throw .generic("Invalid parameter type for '\(name)', expected: \(kind.rawValue)") }
        return v
    }

    mutating func required(_ name: String, _ kind: Kind) throws(QMPFailure) -> QJSON {
        guard let v = try optional(name, kind) else { throw .generic("Parameter '\(name)' is missing") }
        return v
    }

    func done() throws(QMPFailure) {
        if let extra = members.first(where: { !used.contains($0.0) }) {
            throw .generic("Parameter '\(extra.0)' is unexpected")
        }
    }
}
