import APMatrixModel
import APMatrixServer
import Foundation

/// Text views of a guest for the terminal.
enum GuestReport {
    static func matrix(_ m: MatrixDTO) -> Matrix {
        Matrix(apm: Bitmap256(m.apm), aqm: Bitmap256(m.aqm), adm: Bitmap256(m.adm))
    }

    /// One line: name, CPU model, device, CRYCB.
    static func summary(_ g: GuestDTO) -> String {
        let device = g.device.map { "\($0.id) -> mdev \($0.mdev)" } ?? "no vfio-ap device"
        return "\(g.name)  -cpu \(g.cpu)\(g.secure == true ? "  Secure Execution" : "")  \(device)  CRYCB \(matrix(g.crycb).summary)"
    }

    static func mode(_ type: String) -> String {
        switch type.last {
        case "C": return "CCA-Coproc"
        case "P": return "EP11-Coproc"
        default: return "Accelerator"
        }
    }

    static func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }

    /// Per APQN: assigned to the guest's mdev (host view), in its CRYCB, and
    /// seen by the guest's own AP bus at its last scan (guest view).
    static func views(_ g: GuestDTO, assigned: MatrixDTO?) -> [String] {
        let m = assigned.map(matrix) ?? Matrix()
        let c = matrix(g.crycb)
        let seen = Set(g.bus?.queues ?? [])
        let all = Set(m.apqns).union(c.apqns).union(seen).sorted()
        var out = ["Host view vs guest view"
                   + (g.bus.map { " (the guest's AP bus after scan \($0.scans))" } ?? " (the guest has no AP bus: \(g.secure == true ? "ap=off or appv=off" : "ap=off"))") + ":"]
        guard !all.isEmpty || !m.adm.isEmpty || !c.adm.isEmpty else { return out + ["  no APQN assigned, in the CRYCB or seen"] }
        func mark(_ b: Bool) -> String { b ? "yes" : "-" }
        out.append("APQN     assigned  in CRYCB  seen by guest")
        for apqn in all {
            out.append(pad(apqn.description, 9) + pad(mark(m.contains(apqn)), 10) + pad(mark(c.contains(apqn)), 10)
                       + mark(seen.contains(apqn)))
        }
        func ids(_ b: Bitmap256<APQI>) -> String { b.isEmpty ? "-" : b.description }
        let qciADM = g.bus?.qci.map { ids(matrix($0).adm) } ?? "not supported (apqci=off)"
        out.append("control domains: assigned \(ids(m.adm)); in CRYCB \(ids(c.adm)); guest ap_control_domain_mask \(qciADM)")
        return out
    }

    /// The SE state of each queue in the CRYCB, as TAPQ gives it to the guest
    /// now (lszcrypt -V shows it in its SESTAT column after the guest's next scan).
    static func secureExecution(_ queues: [SEQueueDTO], _ g: GuestDTO) -> [String] {
        var out = ["Secure Execution state of the queues in the CRYCB (lszcrypt -V SESTAT in the guest):"]
        guard !queues.isEmpty else { return out + ["  no queues"] }
        let types = Dictionary(uniqueKeysWithValues: g.view.cards.map { ($0.id, $0.type) })
        out.append("APQN     TYPE   SESTAT   ASSOCIATION")
        for q in queues {
            let association = q.association.map { "\($0)\(q.associationPending == true ? " (pending)" : "")" } ?? "-"
            out.append(pad(q.apqn.description, 9) + pad(types[q.apqn.apid] ?? "?", 7) + pad(q.state, 9) + association)
        }
        return out
    }

    /// QEMU's run state and the guest's migration, when there is something to say.
    static func migration(_ g: GuestDTO) -> [String] {
        guard let m = g.migration, m.status != "none" || g.runState != "running" || !m.blockedReasons.isEmpty else { return [] }
        var line = "  run      \(g.runState)"
        if m.status != "none" {
            line += "; \(m.incoming ? "incoming " : "")migration \(m.status)" + (m.uri.map { " (\($0))" } ?? "")
                + (m.transferred > 0 ? ", \(m.transferred) bytes of device state" : "") + (m.errorDesc.map { ": \($0)" } ?? "")
        }
        return [line] + m.blockedReasons.map { "  blocked  \($0)" }
    }

    /// The guest's CPU model, device, CRYCB masks, what it sees (lszcrypt-like), host vs guest view, and its changes.
    static func full(_ g: GuestDTO, assigned: MatrixDTO?, changes: [EventDTO]) -> String {
        let c = matrix(g.crycb)
        var out = ["guest \(g.name)", "  cpu      \(g.cpu)"]
        if g.secure == true { out.append("  secure   Secure Execution guest") }
        if let d = g.device {
            out.append("  device   \(d.id): vfio-ap, mdev \(d.mdev), sysfsdev \(d.sysfsdev)")
        } else {
            out.append("  device   none")
        }
        if let irqs = g.vfioIRQs {
            out.append("  irqs     " + irqs.map { "\($0.index) \($0.name) (\($0.wired ? "wired" : "not available"))" }.joined(separator: ", "))
        }
        if let q = g.qmp { out.append("  qmp      \(q)") }
        out += migration(g)
        if let dir = g.sysfsMount { out.append("  sysfs    \(dir) (the guest's own /sys)") }
        for (apqn, state) in (g.heldState ?? [:]).sorted(by: { $0.key < $1.key }) {
            out.append("  state    queue \(apqn) holds \(state.debugDescription)")
        }
        out.append("  CRYCB    APM \(c.apm.hexString) (\(c.apm.isEmpty ? "-" : c.apm.description))")
        out.append("           AQM \(c.aqm.hexString) (\(c.aqm.isEmpty ? "-" : c.aqm.description))")
        out.append("           ADM \(c.adm.hexString) (\(c.adm.isEmpty ? "-" : c.adm.description))")
        out.append("")
        out.append("What the guest sees (lszcrypt in the guest):")
        if g.view.cards.isEmpty {
            out.append(g.bus == nil || g.cpu.contains("apft=off")
                       ? "  no AP devices (the CPU model turns off ap or apft\(g.secure == true ? ", or appv" : ""))" : "  no AP devices")
        } else {
            out.append("CARD.DOMAIN TYPE  MODE        STATUS  REQUESTS")
            out.append("----------------------------------------------")
            let types = Dictionary(uniqueKeysWithValues: g.view.cards.map { ($0.id, $0.type) })
            for card in g.view.cards {
                out.append(pad(card.id.description, 12) + pad(card.type, 6) + pad(mode(card.type), 12) + "online         0")
                for q in g.view.queues where q.apid == card.id {
                    let t = types[card.id] ?? card.type
                    out.append(pad(q.description, 12) + pad(t, 6) + pad(mode(t), 12) + "online         0")
                }
            }
            let usage = g.view.usageDomains.map(\.description).joined(separator: " ")
            out.append("usage domains:   \(usage.isEmpty ? "-" : usage)")
        }
        let control = g.view.controlDomains.map(\.description).joined(separator: " ")
        out.append("control domains: \(control.isEmpty ? "-" : control)")
        out.append("")
        out.append(contentsOf: views(g, assigned: assigned))
        if let se = g.seQueues {
            out.append("")
            out.append(contentsOf: secureExecution(se, g))
        }
        if !changes.isEmpty {
            out.append("")
            out.append("CRYCB changes, the guest's AP bus scans and SE changes:")
            out.append(contentsOf: changes.map { "  " + $0.dmesg })
        }
        return out.joined(separator: "\n")
    }
}

enum JSONText {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }
}
