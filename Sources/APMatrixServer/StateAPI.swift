import APMatrixRuntime
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
    /// With a state file: SQLite's `PRAGMA integrity_check`, `["ok"]` when sound.
    public var stateIntegrity: [String]?
}

extension ControlAPI {
    static func addStateRoutes(_ api: RouterGroup<BasicRequestContext>, _ runtime: Runtime) {
        api.get("check") { _, _ in json(HostViews.check(runtime.snapshot, runtime)) }
        api.post("guests/:name/state") { request, context in
            await respondAsync {
                let name = try parameter("name", context)
                let r = try await decode(HeldStateRequest.self, request, context)
                guard let apqn = APQN(sysfsName: r.apqn) else {
                    throw APError(.invalidArgument, "apqn '\(r.apqn)': write it as the queue device is named, such as 05.0004")
                }
                try runtime.perform("guest_state") { (h: inout APHost) throws(APError) in try h.putHeldState(name, apqn, r.state) }
                let h = runtime.snapshot
                return json(HostViews.guest(h, name, runtime, at: runtime.clock.now()))
            }
        }
    }
}
