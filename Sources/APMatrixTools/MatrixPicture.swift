import APMatrixModel

/// `apmatrix matrix [UUID]`: adapters across, usage domains down (so the
/// default host's 8 adapters × 85 domains fit 80 columns), cropped to the ids
/// in use; runs of consecutive domains with identical rows share one line.
public struct MatrixPicture: Sendable {
    public let snapshot: Snapshot
    /// The model rebuilt from the snapshot: each cell is its `APQNState`.
    public let model: PlanHost
    public let only: MdevInfo?
    public let colour: Bool

    public init(_ s: Snapshot, only: MdevInfo? = nil, colour: Bool = false) throws(PlanError) {
        snapshot = s
        model = try PlanHost(s)
        self.only = only
        self.colour = colour
    }

    /// What a cell shows: its symbol and colour, for its state.
    struct Glyph: Hashable {
        let symbol: String
        /// ANSI SGR: dim host/absent, green free, yellow unbound, cyan
        /// assigned, bold blue in a guest, red filtered, magenta over-provisioned.
        let sgr: String
    }

    /// mdevs are named a, b, c … in UUID order (`#` after z).
    func letter(_ uuid: MdevUUID) -> String {
        guard let i = snapshot.mdevs.firstIndex(where: { $0.uuid == uuid }), i < 26 else { return "#" }
        return String(UnicodeScalar(UInt8(97 + i)))
    }

    func glyph(_ c: APQNState) -> Glyph {
        switch c {
        case .host: return Glyph(symbol: "H", sgr: "2")
        case .free: return Glyph(symbol: ".", sgr: "32")
        case .unbound: return Glyph(symbol: "u", sgr: "33")
        case .absent: return Glyph(symbol: "-", sgr: "2")
        case .assigned(let u): return Glyph(symbol: letter(u), sgr: "36")
        case .inGuest(let u, _): return Glyph(symbol: letter(u).uppercased(), sgr: "1;34")
        case .filtered(let u, _): return Glyph(symbol: letter(u) + "!", sgr: "31")
        case .overProvisioned(let u): return Glyph(symbol: letter(u) + "+", sgr: "35")
        }
    }

    func paint(_ g: Glyph, _ text: String) -> String { colour ? "\u{1B}[\(g.sgr)m\(text)\u{1B}[0m" : text }

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
        out += String(repeating: " ", count: label + 2) + adapters.map(\.description).joined(separator: "  ") + "\n"
        func row(_ q: APQI) -> [Glyph] { adapters.map { glyph(model.state(of: APQN($0, q))) } }
        var used: [Glyph] = []
        var i = 0
        while i < domains.count {
            let cells = row(domains[i])
            var j = i
            while j + 1 < domains.count, domains[j + 1].value == domains[j].value + 1, row(domains[j + 1]) == cells { j += 1 }
            let name = j == i ? domains[i].description : "\(domains[i])-\(domains[j])"
            out += pad(name, label) + "  " + trimmedRight(cells.map { paint($0, pad($0.symbol, 2)) }.joined(separator: "  ")) + "\n"
            for c in cells where !used.contains(c) { used.append(c) }
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

    func legend(_ used: [Glyph]) -> String {
        var lines: [String] = []
        let kinds: [(APQNState, String)] = [
            (.host, "reserved for the host (bound to cex4queue by apmask/aqmask)"),
            (.free, "free for vfio_ap (bound to vfio_ap, not assigned)"),
            (.unbound, "unbound (the queue is bound to no driver)"),
            (.absent(.noQueue), "no queue (not in the LPAR, deconfigured, or no queue for that domain)"),
        ]
        for (c, text) in kinds where used.contains(glyph(c)) { lines.append(paint(glyph(c), pad(glyph(c).symbol)) + text) }
        // Which of the per-mdev kinds appear, whatever the mdev: by colour.
        let perMdev: [(String, String, String)] = [
            ("a", "36", "assigned to mdev a"),
            ("A", "1;34", "in the guest of mdev a"),
            ("a!", "31", "assigned to mdev a, filtered out of its guest (apmatrix explain)"),
            ("a+", "35", "assigned to mdev a, not in the LPAR (over-provisioned)"),
        ]
        for (sym, sgr, text) in perMdev where used.contains(where: { $0.sgr == sgr }) { lines.append(pad(sym) + text) }
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
            "adapters": adapters.map(\.value),
            "domains": domains.map(\.value),
            "cells": domains.flatMap { q in adapters.map { a -> [String: Any] in
                let c = model.state(of: APQN(a, q))
                return ["apqn": APQN(a, q).description, "state": c.name, "mdev": Output.orNull(c.mdev?.description)]
            } },
            "mdevs": snapshot.mdevs.filter { only == nil || only?.uuid == $0.uuid }.map { m -> [String: Any] in
                ["uuid": m.uuid.description, "letter": letter(m.uuid), "guest": Output.orNull(m.hasGuest),
                 "controlDomains": m.matrix.adm.map(\.value)]
            },
        ]
    }

    public var json: String { Output.json(jsonObject) }
}
