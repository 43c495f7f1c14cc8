import APMatrixModel
import APMatrixSysfs

/// `apmatrix capture`: a host read from sysfs as an emulated host. The LPAR
/// (a host file's content) and the host as it is now (the state a `serve
/// --state` starts from) are both rebuilt by `PlanHost`, the tools' one
/// reader of sysfs; the file formats are the caller's.
public struct HostCapture: Sendable {
    /// The LPAR, with the masks it has now as boot values.
    public let description: HostDescription
    /// The host as sysfs shows it: bindings, online states, `ap_domain`, mdevs, guests.
    public let host: APHost
    /// What sysfs could not tell and what was assumed instead, one line each.
    public let notes: [String]
    /// mdevctl's definitions of vfio_ap devices: file name (the UUID) and text, verbatim.
    public let definitions: [(name: String, text: String)]

    /// Reads `s`, and with `mdevctlEtc` the definitions in its `matrix/` directory.
    public init(_ s: Snapshot, mdevctlEtc: String? = nil) throws(PlanError) {
        var s = s
        if s.profile == .upstream {
            // Upstream shows guest_matrix without a guest; a guest has a queue `in use`.
            for i in s.mdevs.indices where !(s.mdevs[i].guestMatrix?.apqns ?? []).contains(where: { s.queues[$0]?.status == "in use" }) {
                s.mdevs[i].guest = .none
            }
        }
        var notes: [String] = []
        description = PlanHost.description(of: s, notes: &notes)
        _ = PlanHost.facilities(of: s, notes: &notes)
        let rebuilt = try PlanHost(s)
        host = rebuilt.host
        notes += rebuilt.assumptions.filter { !notes.contains($0) }
        if s.profile == .upstream {
            notes.append("the tree is a Linux 6.x kernel's (matrix/features lists ap_config): serve it with --profile upstream")
        }
        notes.append("apmask and aqmask are the masks at capture time, written as boot values (ap.apmask= and ap.aqmask= on the kernel command line are not in sysfs)")
        if s.mdevs.count > 1 {
            notes.append("mdevs are created in the order of their iommu groups: sysfs does not show the creation order, which orders log lines")
        }
        for m in s.mdevs where m.guestMatrix != nil {
            notes.append("mdev \(m.uuid) is used by a guest: it runs as \(PlanHost.guestName(m.uuid)) with -cpu host (sysfs shows neither its name nor its CPU model)")
        }
        let boot: APHost
        do { boot = try APHost(description, profile: s.profile) } catch {
            throw PlanError("cannot build the host that \(s.root) describes: \(error)")
        }
        var stateOnly: [String] = []
        if !s.mdevs.isEmpty { stateOnly.append("\(s.mdevs.count) mdev(s)") }
        if Self.busFiles(boot) != Self.busFiles(host) {
            stateOnly.append("driver bindings, online states, ap_domain, the bus's scan count or uninitiated queues that differ from a fresh boot")
        }
        for (id, card) in s.cards.sorted(by: { $0.key < $1.key }) where card.config == false && s.hostConfiguration.apm.contains(id) {
            notes.append("\(id.cardName) is deconfigured but in ap_adapter_mask: apmatrix's firmware drops a deconfigured adapter from QCI (SPEC §1), so its ap_adapter_mask lacks it")
        }
        if !stateOnly.isEmpty { notes.append("only a state file (--state) keeps: " + stateOnly.joined(separator: "; ")) }
        var definitions: [(String, String)] = []
        if let etc = mdevctlEtc {
            let dir = SysfsDirectory(etc)
            guard let names = dir.list("matrix") else {
                throw PlanError("\(dir.path("matrix")): cannot list it; --mdevctl-etc takes mdevctl's directory, such as /etc/mdevctl.d")
            }
            for name in names {
                guard MdevUUID(sysfsName: name) != nil, case .success(let text) = dir.read("matrix/" + name) else { continue }
                do throws(PlanError) { _ = try MdevctlConfig.parse(text) } catch {
                    notes.append("\(dir.path("matrix/" + name)) is not copied: \(error)")
                    continue
                }
                definitions.append((name, text))
            }
        }
        self.notes = notes
        self.definitions = definitions
    }

    /// What the AP bus's part of the tree shows (`bus/ap`, `devices/ap`):
    /// path to content or link target, write-only files left out.
    static func busFiles(_ h: APHost) -> [String: String] {
        var out: [String: String] = [:]
        func visit(_ path: String) {
            for name in SysfsTree.children(path, in: h) ?? [] {
                let p = path + "/" + name
                switch SysfsTree.node(p, in: h) {
                case .directory?: visit(p)
                case .symlink(let target)?: out[p] = "-> " + target
                case .attribute(let a)? where a.isReadable:
                    out[p] = (try? SysfsTree.read(p, in: h)).map { String(decoding: $0, as: UTF8.self) } ?? "<error>"
                default: break
                }
            }
        }
        visit("bus/ap")
        visit("devices/ap")
        return out
    }
}
