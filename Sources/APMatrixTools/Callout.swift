import APMatrixModel
import APMatrixSysfs

/// The mdevctl callout for `vfio_ap-passthrough` (mdevctl(8) "CALL-OUT EVENT
/// SCRIPTS"): on `pre start`, `pre define` and `pre modify` it refuses a
/// config that would fail or take queues another device holds, by playing
/// the config's writes on a private copy of the host (`PlanHost`) on which
/// every other active device and every autostart-defined device is present.
public enum MdevctlCallout {
    public static let type = "vfio_ap-passthrough"
    /// mdevctl: "not our type".
    public static let notOurType: Int32 = 2

    /// The device configs mdevctl keeps for the matrix parent (`ETC/matrix/UUID`).
    public static func definedConfigs(etc: String) -> [(uuid: MdevUUID, config: MdevctlConfig)] {
        let dir = SysfsDirectory(etc)
        return (dir.list("matrix") ?? []).compactMap { name in
            guard let uuid = MdevUUID(parsing: name), let text = dir.text("matrix/" + name),
                  let c = try? MdevctlConfig.parse(text), c.type == type else { return nil }
            return (uuid, c)
        }
    }

    /// The problems of `config` for device `uuid` on `action`; empty = go ahead.
    public static func problems(action: String, uuid: MdevUUID, config: MdevctlConfig, snapshot s: Snapshot,
                                defined: [(uuid: MdevUUID, config: MdevctlConfig)], etc: String) throws(PlanError) -> [String] {
        var host = try PlanHost(s).host
        var problems: [String] = []
        let active = host.vfio.mdevs[uuid] != nil
        // Autostart devices that are not active take their queues at boot: they count as assigned.
        var autostart: [MdevUUID: String] = [:]
        for d in defined where d.uuid != uuid && d.config.start == "auto" && host.vfio.mdevs[d.uuid] == nil {
            for w in d.config.writes(uuid: d.uuid) { _ = PlanHost.simulate(w, on: &host) }
            autostart[d.uuid] = "\(etc)/matrix/\(d.uuid)"
        }
        // define/modify judge the new config alone: the device's current assignment is cleared first.
        if active && action != "start", let m = host.vfio.mdevs[uuid] {
            for a in m.matrix.apm { try? host.unassign(.adapter(a), from: uuid) }
            for q in m.matrix.aqm { try? host.unassign(.domain(q), from: uuid) }
            for q in m.matrix.adm { try? host.unassign(.controlDomain(q), from: uuid) }
        }
        for w in config.writes(uuid: uuid, create: action == "start" || !active) {
            guard let e = PlanHost.simulate(w, on: &host) else { continue }
            var line = "\(w.path.split(separator: "/").last ?? "") \(w.value): \(e)"
            for (other, file) in autostart.sorted(by: { $0.key < $1.key }) where e.message.contains(other.description) {
                line += "\n  mdev \(other) is not active, but it is defined with start=auto (\(file)) and takes these queues at boot"
            }
            problems.append(line)
        }
        if action == "start", let m = host.vfio.mdevs[uuid], m.matrix.aqm.isEmpty {
            problems.append("the config assigns no usage domain: a guest would get no queue; add one (mdevctl modify -u \(uuid) --addattr assign_domain --value ID)")
        }
        return problems
    }
}
