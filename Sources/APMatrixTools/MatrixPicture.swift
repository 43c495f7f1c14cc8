import APMatrixModel

/// What one APQN is, as the matrix picture shows it.
public enum Cell: Hashable, Sendable {
    /// The queue is bound to a host driver (cex4queue): reserved for the host.
    case host
    /// Bound to vfio_ap and assigned to no mdev.
    case free
    /// The queue device exists but is bound to no driver.
    case unbound
    /// No queue device and no assignment: the LPAR lacks it, the adapter is
    /// deconfigured, or the adapter has no queue for that domain.
    case absent
    /// Assigned to the mdev with this UUID; no guest uses it (or the kernel cannot tell).
    case assigned(String)
    /// In the guest of that mdev (in `guest_matrix`).
    case inGuest(String)
    /// Assigned, a guest uses the mdev, but filtering left it out.
    case filtered(String)
    /// Assigned but not in the LPAR's configuration (over-provisioning).
    case overProvisioned(String)
}

extension Snapshot {
    public func cell(_ apqn: APQN) -> Cell {
        if let m = owner(of: apqn) {
            if !hostConfiguration.contains(apqn) { return .overProvisioned(m.uuid) }
            switch m.guest {
            case .matrix(let s): return s.contains(apqn) ? .inGuest(m.uuid) : .filtered(m.uuid)
            case .none, .unknown: return .assigned(m.uuid)
            }
        }
        guard let q = queues[apqn] else { return .absent }
        switch q.driver {
        case nil: return .unbound
        case QueueDriver.vfioAP.rawValue?: return .free
        default: return .host
        }
    }
}

/// `apmatrix matrix [UUID]`: adapters across, usage domains down (so the
/// default host's 8 adapters × 85 domains fit 80 columns), cropped to the ids
/// in use; runs of consecutive domains with identical rows share one line.
public struct MatrixPicture: Sendable {
    public let snapshot: Snapshot
    public let only: MdevInfo?
    public let colour: Bool

    public init(_ s: Snapshot, only: MdevInfo? = nil, colour: Bool = false) {
        snapshot = s
        self.only = only
        self.colour = colour
    }

    /// mdevs are named a, b, c … in UUID order (`#` after z).
    func letter(_ uuid: String) -> String {
        guard let i = snapshot.mdevs.firstIndex(where: { $0.uuid == uuid }), i < 26 else { return "#" }
        return String(UnicodeScalar(UInt8(97 + i)))
    }

    func symbol(_ c: Cell) -> String {
        switch c {
        case .host: return "H"
        case .free: return "."
        case .unbound: return "u"
        case .absent: return "-"
        case .assigned(let u): return letter(u)
        case .inGuest(let u): return letter(u).uppercased()
        case .filtered(let u): return letter(u) + "!"
        case .overProvisioned(let u): return letter(u) + "+"
        }
    }

    /// ANSI SGR per state: dim host/absent, green free, yellow unbound, cyan
    /// assigned, bold blue in a guest, red filtered, magenta over-provisioned.
    func sgr(_ c: Cell) -> String {
        switch c {
        case .host, .absent: return "2"
        case .free: return "32"
        case .unbound: return "33"
        case .assigned: return "36"
        case .inGuest: return "1;34"
        case .filtered: return "31"
        case .overProvisioned: return "35"
        }
    }

    func paint(_ c: Cell, _ text: String) -> String { colour ? "\u{1B}[\(sgr(c))m\(text)\u{1B}[0m" : text }

    /// The adapters and domains shown.
    var axes: (adapters: [APID], domains: [APQI]) {
        if let m = only { return (Array(m.matrix.apm), Array(m.matrix.aqm)) }
        var apm = snapshot.hostConfiguration.apm, aqm = snapshot.hostConfiguration.aqm
        for id in snapshot.cards.keys { apm.insert(id) }
        for q in snapshot.queues.keys { aqm.insert(q.apqi) }
        for m in snapshot.mdevs { apm = apm | m.matrix.apm; aqm = aqm | m.matrix.aqm }
        return (Array(apm), Array(aqm))
    }

    public var text: String {
        let (adapters, domains) = axes
        var out = "AP matrix of \(snapshot.root) (\(snapshot.profileName))\(only.map { " for mdev \($0.uuid)" } ?? "")\n"
            + "adapters across, usage domains down (hex)\n"
        guard !adapters.isEmpty, !domains.isEmpty else { return out + "(no adapter or no domain to show)\n" }
        let label = 9
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        out += String(repeating: " ", count: label + 2) + adapters.map { hex($0, width: 2) }.joined(separator: "  ") + "\n"
        var used: [Cell] = []
        var i = 0
        while i < domains.count {
            let row = adapters.map { snapshot.cell(APQN($0, domains[i])) }
            var j = i
            while j + 1 < domains.count, domains[j + 1] == domains[j] + 1,
                  adapters.map({ snapshot.cell(APQN($0, domains[j + 1])) }) == row { j += 1 }
            let name = j == i ? hex(domains[i], width: 4) : hex(domains[i], width: 4) + "-" + hex(domains[j], width: 4)
            let cells = row.map { paint($0, pad(symbol($0), 2)) }.joined(separator: "  ")
            out += pad(name, label) + "  " + trimmedRight(cells) + "\n"
            for c in row where !used.contains(c) { used.append(c) }
            i = j + 1
        }
        out += legend(used)
        return out
    }

    func trimmedRight(_ s: String) -> String {
        var t = Substring(s)
        while t.last == " " { t = t.dropLast() }
        return String(t)
    }

    func legend(_ used: [Cell]) -> String {
        var lines: [String] = []
        let kinds: [(Cell, String)] = [
            (.host, "reserved for the host (bound to cex4queue by apmask/aqmask)"),
            (.free, "free for vfio_ap (bound to vfio_ap, not assigned)"),
            (.unbound, "unbound (the queue is bound to no driver)"),
            (.absent, "no queue (not in the LPAR, deconfigured, or no queue for that domain)"),
        ]
        for (c, text) in kinds where used.contains(c) { lines.append(paint(c, pad(symbol(c))) + text) }
        let perMdev: [(String, (String) -> Cell, String)] = [
            ("a", Cell.assigned, "assigned to mdev a"),
            ("A", Cell.inGuest, "in the guest of mdev a"),
            ("a!", Cell.filtered, "assigned to mdev a, filtered out of its guest (apmatrix explain)"),
            ("a+", Cell.overProvisioned, "assigned to mdev a, not in the LPAR (over-provisioned)"),
        ]
        for (sym, make, text) in perMdev where snapshot.mdevs.contains(where: { used.contains(make($0.uuid)) }) {
            lines.append(pad(sym) + text)
        }
        var out = "\n" + lines.joined(separator: "\n") + "\n"
        let shown = snapshot.mdevs.filter { m in only == nil || only?.uuid == m.uuid }
        if !shown.isEmpty { out += "\n" }
        for m in shown {
            let guest: String
            switch m.guest {
            case .none: guest = "no guest"
            case .unknown: guest = "guest unknown"
            case .matrix(let s): guest = "guest has \(s.apqns.count) of \(m.matrix.apqns.count) APQNs"
            }
            out += "\(letter(m.uuid))  \(m.uuid)  \(guest), control domains \(m.matrix.adm.isEmpty ? "-" : m.matrix.adm.description)\n"
        }
        return out
    }

    func pad(_ s: String) -> String { s + String(repeating: " ", count: max(1, 3 - s.count)) }

    /// Schema `apmatrix.matrix/1`: see README "JSON output".
    public var jsonObject: [String: Any] {
        let (adapters, domains) = axes
        return [
            "schema": "apmatrix.matrix/1",
            "sysfs": snapshot.root,
            "profile": snapshot.profile.rawValue,
            "adapters": adapters,
            "domains": domains,
            "cells": domains.flatMap { q in adapters.map { a -> [String: Any] in
                let c = snapshot.cell(APQN(a, q))
                var o: [String: Any] = ["apqn": APQN(a, q).description, "state": Self.stateName(c)]
                switch c {
                case .assigned(let u), .inGuest(let u), .filtered(let u), .overProvisioned(let u): o["mdev"] = u
                default: o["mdev"] = Output.orNull(nil)
                }
                return o
            } },
            "mdevs": snapshot.mdevs.filter { only == nil || only?.uuid == $0.uuid }.map { m -> [String: Any] in
                ["uuid": m.uuid, "letter": letter(m.uuid), "guest": Output.orNull(m.hasGuest),
                 "controlDomains": Array(m.matrix.adm)]
            },
        ]
    }

    static func stateName(_ c: Cell) -> String {
        switch c {
        case .host: return "host"
        case .free: return "free"
        case .unbound: return "unbound"
        case .absent: return "absent"
        case .assigned: return "assigned"
        case .inGuest: return "in-guest"
        case .filtered: return "filtered"
        case .overProvisioned: return "over-provisioned"
        }
    }

    public var json: String { Output.json(jsonObject) }
}
