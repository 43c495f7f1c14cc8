import APMatrixModel

/// `apmatrix ls`: every card and queue with its type, state, driver, the mdev
/// that has it assigned and whether a guest has it now.
public struct LsReport: Sendable {
    public struct Filter: Sendable {
        public var adapter: APID?
        public var domain: APQI?
        public var mdev: MdevUUID?
        public init(adapter: APID? = nil, domain: APQI? = nil, mdev: MdevUUID? = nil) {
            self.adapter = adapter
            self.domain = domain
            self.mdev = mdev
        }
    }

    public let snapshot: Snapshot
    public let cards: [CardInfo]
    public let queues: [QueueInfo]

    /// Cards are listed unless a domain or mdev narrows the list to queues.
    public init(_ s: Snapshot, filter f: Filter = Filter()) {
        snapshot = s
        cards = f.domain == nil && f.mdev == nil
            ? s.cards.values.filter { f.adapter == nil || $0.apid == f.adapter }.sorted { $0.apid < $1.apid } : []
        queues = s.queues.values.filter { q in
            (f.adapter == nil || q.apqn.apid == f.adapter) && (f.domain == nil || q.apqn.apqi == f.domain)
                && (f.mdev == nil || s.owner(of: q.apqn)?.uuid == f.mdev)
        }.sorted { $0.apqn < $1.apqn }
    }

    /// Whether the queue is in a guest now: nil when the kernel cannot tell.
    func inGuest(_ apqn: APQN) -> Bool? {
        guard let m = snapshot.owner(of: apqn) else { return false }
        switch m.guest {
        case .none: return false
        case .matrix(let s): return s.contains(apqn)
        case .unknown: return nil
        }
    }

    static func flag(_ b: Bool?) -> String { b.map { $0 ? "1" : "0" } ?? "-" }

    /// The table; an OVERRIDE column (`driver_override`) when the kernel has one.
    public var text: String {
        let overrides = snapshot.hasDriverOverride
        var rows = [["DEVICE", "TYPE", "HWTYPE", "CONFIG", "ONLINE", "DRIVER"] + (overrides ? ["OVERRIDE"] : []) + ["MDEV", "GUEST"]]
        var byCard: [APID: [QueueInfo]] = Dictionary(grouping: queues, by: \.apqn.apid)
        func queueRows(_ list: [QueueInfo]) {
            for q in list {
                let card = snapshot.cards[q.apqn.apid]
                let g = inGuest(q.apqn).map { $0 ? "yes" : "no" } ?? "?"
                rows.append([q.apqn.description, card?.type ?? "-", card?.hwtype.map(String.init) ?? "-", Self.flag(q.config),
                             Self.flag(q.online), q.driver ?? "-"] + (overrides ? [q.override ?? "-"] : [])
                            + [snapshot.owner(of: q.apqn)?.uuid.description ?? "-", g])
            }
        }
        for c in cards {
            rows.append([c.apid.cardName, c.type ?? "-", c.hwtype.map(String.init) ?? "-", Self.flag(c.config),
                         Self.flag(c.online), c.driver ?? "-"] + (overrides ? ["-"] : []) + ["-", "-"])
            queueRows(byCard.removeValue(forKey: c.apid) ?? [])
        }
        queueRows(byCard.values.joined().sorted { $0.apqn < $1.apqn })
        return "AP devices of \(snapshot.root) (\(snapshot.profileName))\n" + Output.table(rows)
    }

    /// Schema `apmatrix.ls/1`: see README "JSON output".
    public var jsonObject: [String: Any] {
        [
            "schema": "apmatrix.ls/1",
            "sysfs": snapshot.root,
            "profile": snapshot.profile.rawValue,
            "cards": cards.map { c -> [String: Any] in
                ["apid": c.apid.value, "name": c.apid.cardName, "type": Output.orNull(c.type),
                 "hwtype": Output.orNull(c.hwtype), "config": Output.orNull(c.config), "online": Output.orNull(c.online),
                 "driver": Output.orNull(c.driver)]
            },
            "queues": queues.map { q -> [String: Any] in
                let card = snapshot.cards[q.apqn.apid]
                return ["apqn": q.apqn.description, "apid": q.apqn.apid.value, "apqi": q.apqn.apqi.value,
                        "type": Output.orNull(card?.type), "hwtype": Output.orNull(card?.hwtype),
                        "config": Output.orNull(q.config), "online": Output.orNull(q.online),
                        "driver": Output.orNull(q.driver), "driverOverride": Output.orNull(q.override),
                        "reserved": snapshot.isReserved(q.apqn),
                        "mdev": Output.orNull(snapshot.owner(of: q.apqn)?.uuid.description), "inGuest": Output.orNull(inGuest(q.apqn))]
            },
        ]
    }

    public var json: String { Output.json(jsonObject) }
}
