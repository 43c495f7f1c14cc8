import APMatrixEmulator
import APMatrixModel
import Hummingbird

/// `POST /guests/{name}/state`: the guest puts state into one of its queues (held state).
public struct HeldStateRequest: Codable, Sendable {
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
        let held = h.firmware.records.filter { $0.value.holdsStateOf == guest && $0.value.heldState != nil }
        return held.isEmpty ? nil : Dictionary(uniqueKeysWithValues: held.map { ($0.key.description, $0.value.heldState!) })
    }

    public func putHeldState(_ name: String, _ r: HeldStateRequest) throws(APError) -> GuestDTO {
        guard let apqn = APQN(sysfsName: r.apqn) else {
            throw APError(.invalidArgument, "apqn '\(r.apqn)': write it as the queue device is named, such as 05.0004")
        }
        try emulator.perform { (h: inout APHost) throws(APError) in try h.putHeldState(name, apqn, r.state) }
        return try guestDTO(name)
    }

    public func check() -> CheckDTO {
        let h = emulator.snapshot
        return CheckDTO(violations: h.checkInvariants().map(\.description), mdevs: h.vfio.mdevs.count,
                        guests: h.guests.count, queues: h.bus.queues.count, stateFile: emulator.store?.path)
    }
}

extension ControlAPI {
    static func addStateRoutes(_ api: RouterGroup<BasicRequestContext>, _ daemon: Daemon) {
        api.get("check") { _, _ in json(daemon.check()) }
        api.post("guests/:name/state") { request, context in
            await respondAsync {
                let r = try await decode(HeldStateRequest.self, request, context)
                return json(try daemon.putHeldState(try parameter("name", context), r))
            }
        }
    }
}
