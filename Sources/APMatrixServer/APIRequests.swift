import APMatrixModel

// The JSON bodies of the control API's requests (openapi.yaml's schemas of
// the same names). Decoding refuses what the schema refuses (400); what
// the schema allows goes on to the runtime, whose refusals keep their errno.

/// `POST /guests`: a guest to start.
public struct StartGuestRequest: Codable, Sendable, RequestBody {
    public var name: String
    /// A QEMU `-cpu` value; default `host`.
    public var cpu: String?
    /// A QEMU `-device` value: `vfio-ap,sysfsdev=PATH,id=ID`.
    public var device: String?
    /// A unix socket path for the guest's QMP monitor.
    public var qmp: String?
    /// An absolute directory where to mount the guest's own `/sys`.
    public var sysfsMount: String?
    /// A Secure Execution guest; the same as `object` and `machine` below.
    public var secure: Bool?
    /// A QEMU `-object` value: `s390-pv-guest,id=ID`.
    public var object: String?
    /// A QEMU `-machine` value naming that object: `confidential-guest-support=ID`.
    public var machine: String?
    /// A migration destination: QEMU's `-incoming tcp:HOST:PORT` (port 0 picks one), or `defer` (QMP `migrate-incoming` gives the address).
    public var incoming: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case name, cpu, device, qmp, sysfsMount, secure, object, machine, incoming }

    public init(name: String, cpu: String? = nil, device: String? = nil, qmp: String? = nil, sysfsMount: String? = nil,
                secure: Bool? = nil, object: String? = nil, machine: String? = nil, incoming: String? = nil) {
        self.incoming = incoming
        self.name = name
        self.cpu = cpu
        self.device = device
        self.qmp = qmp
        self.sysfsMount = sysfsMount
        self.secure = secure
        self.object = object
        self.machine = machine
    }

    func validate() throws(APIError) {
        try check("name", name, .guestName)
        try check("sysfsMount", sysfsMount, .absolutePath)
        try check("incoming", incoming, .migrationURI)
    }
}

/// `POST /guests/{name}/mount`.
public struct GuestMountRequest: Codable, Sendable, RequestBody {
    /// An absolute directory; created if missing.
    public var dir: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case dir }

    public init(dir: String) { self.dir = dir }

    func validate() throws(APIError) { try check("dir", dir, .absolutePath) }
}

/// `POST /guests/{name}/devices`: QMP `device_add`.
public struct PlugRequest: Codable, Sendable, RequestBody {
    public var sysfsdev: String
    public var id: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case sysfsdev, id }

    public init(sysfsdev: String, id: String) {
        self.sysfsdev = sysfsdev
        self.id = id
    }

    func validate() throws(APIError) { try check("id", id, .deviceID) }
}

/// `POST /guests/{name}/state`: the guest puts state into one of its queues.
public struct HeldStateRequest: Codable, Sendable, RequestBody {
    /// `05.0004`
    public var apqn: String
    public var state: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case apqn, state }

    public init(apqn: String, state: String) {
        self.apqn = apqn
        self.state = state
    }

    func validate() throws(APIError) {
        try check("apqn", apqn, .apqn)
        try check("state", state, .guestState)
    }

    var queue: APQN { APQN(sysfsName: apqn)! }
}

/// `POST /guests/{name}/migrate`.
public struct MigrateRequest: Codable, Sendable, RequestBody {
    /// The target daemon's API URL.
    public var to: String
    /// A QMP socket for the guest on the target.
    public var qmp: String?
    /// The target's write token, when it is on another machine (on this one the daemon finds it).
    public var token: String?
    /// Live migration with the vfio-ap device attached (`--preview
    /// vfio-ap-migration`): the target starts the guest with `-incoming`,
    /// then this daemon's QEMU migrates it over TCP, as QMP `migrate` does.
    public var live: Bool?

    public enum CodingKeys: String, CodingKey, CaseIterable { case to, qmp, token, live }

    public init(to: String, qmp: String? = nil, token: String? = nil, live: Bool? = nil) {
        self.to = to
        self.qmp = qmp
        self.token = token
        self.live = live
    }

    func validate() throws(APIError) {
        try check("to", to, .server)
        try check("token", token, .token)
    }
}

/// `POST /host/adapters`: firmware adds an adapter to the LPAR.
public struct AdapterRequest: Codable, Sendable, RequestBody {
    public var id: Int
    public var type: String
    /// The adapter's own usage-domain restriction: `0-15,0x47`.
    public var domains: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case id, type, domains }

    public init(id: Int, type: String, domains: String? = nil) {
        self.id = id
        self.type = type
        self.domains = domains
    }

    func validate() throws(APIError) {
        try check("id", id: id)
        guard AdapterType.supportedNames.contains(type) else {
            throw .badRequest("type '\(type)': one of \(AdapterType.supportedNames.joined(separator: ", "))")
        }
    }
}

/// `POST /host/domains`, `POST /host/control-domains`.
public struct DomainRequest: Codable, Sendable, RequestBody {
    public var id: Int

    public enum CodingKeys: String, CodingKey, CaseIterable { case id }

    public init(id: Int) { self.id = id }

    func validate() throws(APIError) { try check("id", id: id) }
}

/// `POST /sysfs`: one `write()` to an attribute.
public struct SysfsWriteRequest: Codable, Sendable, RequestBody {
    /// A path below the mount, such as `bus/ap/apmask`.
    public var path: String
    /// The bytes of one `write()`, as text.
    public var value: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case path, value }

    public init(path: String, value: String) {
        self.path = path
        self.value = value
    }

    func validate() throws(APIError) { try check("path", path, .sysfsPath) }
}
