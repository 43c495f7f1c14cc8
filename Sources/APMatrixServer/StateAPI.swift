import APMatrixEmulator
import APMatrixModel
import Hummingbird

/// `POST /guests/{name}/state`: the guest puts state into one of its queues.
public struct GuestStateRequest: Codable, Sendable {
    /// `05.0004`
    public var apqn: String
    public var state: String
    public init(apqn: String, state: String) {
        self.apqn = apqn
        self.state = state
    }
}

/// `GET /check`: the invariant checker's verdict on the host as it is now.
public struct CheckDTO: Codable, Sendable, Equatable {
    /// `rule: detail` per broken invariant; empty when the host is sound.
    public var violations: [String]
    public var mdevs: Int
    public var guests: Int
    public var queues: Int
    /// The state file, when the daemon has one.
    public var stateFile: String?
}

extension Daemon {
    /// The queues holding state `guest` put into them.
    static func heldState(_ h: APHost, _ guest: String) -> [String: String]? {
        let held = h.records.filter { $0.value.holdsStateOf == guest && $0.value.guestState != nil }
        return held.isEmpty ? nil : Dictionary(uniqueKeysWithValues: held.map { ($0.key.description, $0.value.guestState!) })
    }

    public func putGuestState(_ name: String, _ r: GuestStateRequest) throws(APError) -> GuestDTO {
        guard let apqn = APQN(sysfsName: r.apqn) else {
            throw APError(.invalidArgument, "apqn '\(r.apqn)': write it as the queue device is named, such as 05.0004")
        }
        try emulator.perform { (h: inout APHost) throws(APError) in try h.putGuestState(name, apqn, r.state) }
        return try guestDTO(name)
    }

    public func check() -> CheckDTO {
        let h = emulator.snapshot
        return CheckDTO(violations: h.checkInvariants().map(\.description), mdevs: h.mdevs.count,
                        guests: h.guests.count, queues: h.queues.count, stateFile: emulator.store?.path)
    }
}

extension ControlAPI {
    static func addStateRoutes(_ api: RouterGroup<BasicRequestContext>, _ daemon: Daemon) {
        api.get("check") { _, _ in json(daemon.check()) }
        api.post("guests/:name/state") { request, context in
            await respondAsync {
                let r = try await decode(GuestStateRequest.self, request, context)
                return json(try daemon.putGuestState(try parameter("name", context), r))
            }
        }
    }
}
