import APMatrixModel
import SystemPackage

/// `bus/ap` and `devices/ap`: the AP bus, its drivers, cards and queues
/// (kernel-reference §2, SPEC §2).
enum APBusView {
    typealias Directory = SysfsTree.Directory

    /// `bus/ap`.
    static func root(_ host: APHost) -> Directory {
        [
            "apmask": .attribute(.rw({ $0.apmask.hexString + "\n" }, { try $0.storeMask(.apmask, $1) })),
            "aqmask": .attribute(.rw({ $0.aqmask.hexString + "\n" }, { try $0.storeMask(.aqmask, $1) })),
            "ap_max_adapter_id": .attribute(.ro { line($0.busMaxAdapter) }),
            "ap_max_domain_id": .attribute(.ro { line($0.busMaxDomain) }),
            "ap_domain": .attribute(.rw({ line($0.apDomain) }, { try $0.storeAPDomain($1) })),
            "ap_adapter_mask": .attribute(.ro { $0.hostConfiguration.apm.hexString + "\n" }),
            "ap_usage_domain_mask": .attribute(.ro { $0.hostConfiguration.aqm.hexString + "\n" }),
            "ap_control_domain_mask": .attribute(.ro { $0.hostConfiguration.adm.hexString + "\n" }),
            "features": .attribute(.ro { features(apxa: $0.apxa) }),
            "devices": .directory,
            "drivers": .directory,
        ]
    }

    /// Below `bus/ap`: `devices/` and `drivers/…`.
    static func directory(_ c: [Substring], _ host: APHost) -> Directory? {
        switch (c.count, c[0]) {
        case (1, "devices"):
            var d = Directory()
            for id in host.cards.keys { d[cardName(id)] = deviceLink(cardName(id), host, up: 3) }
            for apqn in host.queues.keys { d[apqn.description] = deviceLink(apqn.description, host, up: 3) }
            return d
        case (1, "drivers"):
            return APHost.apDriverNames.reduce(into: Directory()) { $0[$1] = .directory }
        case (2, "drivers"):
            let driver = String(c[1])
            guard APHost.apDriverNames.contains(driver) else { return nil }
            var d: Directory = [
                "bind": .attribute(.wo { try $0.bind(driver: driver, $1) }),
                "unbind": .attribute(.wo { try $0.unbind(driver: driver, $1) }),
            ]
            let names = driver == "cex4card"
                ? host.cards.filter { $0.value.bound }.keys.map(cardName)
                : host.queues.filter { $0.value.driver?.rawValue == driver }.keys.map(\.description)
            for name in names { d[name] = boundDeviceLink(name, driver: driver, host) }
            return d
        default: return nil
        }
    }

    static func cardName(_ id: APID) -> String { "card" + hex(id, width: 2) }

    /// A symlink `up` levels below the root to the card or queue device `name`, if it exists.
    static func deviceLink(_ name: String, _ host: APHost, up: Int) -> Node? {
        let prefix = String(repeating: "../", count: up) + "devices/ap/"
        if let id = host.cardID(name), host.cards[id] != nil { return .symlink(prefix + name) }
        guard let apqn = APQN(sysfsName: name), host.queues[apqn] != nil else { return nil }
        return .symlink(prefix + cardName(apqn.apid) + "/" + name)
    }

    /// The link in `bus/ap/drivers/<driver>/` to a device bound to that driver.
    static func boundDeviceLink(_ name: String, driver: String, _ host: APHost) -> Node? {
        if driver == "cex4card" {
            guard let id = host.cardID(name), host.cards[id]?.bound == true else { return nil }
        } else {
            guard let apqn = APQN(sysfsName: name), host.queues[apqn]?.driver?.rawValue == driver else { return nil }
        }
        return deviceLink(name, host, up: 4)
    }

    /// `devices/ap`, a card, or a queue.
    static func deviceDirectory(_ c: [Substring], _ host: APHost) -> Directory? {
        guard let first = c.first else {
            return host.cards.keys.reduce(into: Directory()) { $0[cardName($1)] = .directory }
        }
        guard let id = host.cardID(String(first)), let card = host.cards[id], let adapter = host.adapters[id] else {
            return nil
        }
        if c.count == 1 { return cardDirectory(id, card, adapter, host) }
        guard c.count == 2, let apqn = APQN(sysfsName: String(c[1])), apqn.apid == id,
              let queue = host.queues[apqn] else { return nil }
        return queueDirectory(apqn, queue, adapter, host)
    }

    /// Attributes every AP device has with no state behind them.
    static func counters(_ d: inout Directory) {
        d["request_count"] = .attribute(.rw({ _ in "0\n" }, { _, _ in }))
        d["requestq_count"] = .attribute(.constant("0\n"))
        d["pendingq_count"] = .attribute(.constant("0\n"))
        d["chkstop"] = .attribute(.constant("0\n"))
    }

    /// `features` (`ap_bus` `features_show`, the QCI flags this host has).
    static func features(apxa: Bool) -> String { apxa ? "APXA QACT\n" : "QACT\n" }

    static func functions(_ type: AdapterType, apxa: Bool) -> Attribute {
        let f = type.apFunctions(apxa: apxa)
        let digits = String(f, radix: 16, uppercase: true)
        return .constant("0x" + String(repeating: "0", count: 8 - digits.utf8.count) + digits + "\n")
    }

    /// The attributes of a card that follow from its type alone.
    static func cardConstants(_ type: AdapterType, apxa: Bool) -> Directory {
        var d: Directory = [
            "hwtype": .attribute(.constant(line(type.hwtype))),
            "raw_hwtype": .attribute(.constant(line(type.hwtype))),
            "depth": .attribute(.constant("8\n")),
            "ap_functions": .attribute(functions(type, apxa: apxa)),
            "modalias": .attribute(.constant("ap:t" + String(type.hwtype, radix: 16, uppercase: true)
                .leftPadded(2) + "\n")),
        ]
        counters(&d)
        d["subsystem"] = .symlink("../../../bus/ap")
        return d
    }

    static func cardDirectory(_ id: APID, _ card: Card, _ adapter: Adapter, _ host: APHost) -> Directory {
        var d = cardConstants(adapter.type, apxa: host.apxa)
        d["config"] = .attribute(.rw({ line($0.adapters[id]?.configured == true ? 1 : 0) },
                                     { try $0.storeCardConfig(id, $1) }))
        if card.bound {
            d["driver"] = .symlink("../../../bus/ap/drivers/cex4card")
            d["type"] = .attribute(.constant(adapter.type.description + "\n"))
            d["online"] = .attribute(.rw({ host in
                line(host.adapters[id]?.configured == true && host.cards[id]?.online == true ? 1 : 0)
            }, { try $0.storeCardOnline(id, $1) }))
        }
        for q in host.queueDomains(of: id) { d[APQN(id, q).description] = .directory }
        return d
    }

    /// The attributes of a queue that follow from its card's type and whether its driver enabled interrupts.
    static func queueConstants(_ type: AdapterType, apxa: Bool, interrupts: Bool) -> Directory {
        var d: Directory = [
            "config": .attribute(.constant("1\n")),
            "ap_functions": .attribute(functions(type, apxa: apxa)),
            "interrupt": .attribute(.constant(interrupts ? "Interrupts enabled.\n" : "Interrupts disabled.\n")),
        ]
        counters(&d)
        d["subsystem"] = .symlink("../../../../bus/ap")
        return d
    }

    static func queueDirectory(_ apqn: APQN, _ queue: QueueDevice, _ adapter: Adapter, _ host: APHost) -> Directory {
        var d = queueConstants(adapter.type, apxa: host.apxa,
                               interrupts: queue.driver == .cex4queue && host.facilities.aiv)
        if let driver = queue.driver {
            d["driver"] = .symlink("../../../../bus/ap/drivers/\(driver.rawValue)")
        }
        if queue.driver == .vfioAP && host.hasUpstreamAttributes {
            d["status"] = .attribute(.ro { $0.queueStatus(apqn) + "\n" })
        }
        if queue.driver == .cex4queue {
            d["online"] = .attribute(.rw({ line($0.queues[apqn]?.online == true ? 1 : 0) },
                                         { try $0.storeQueueOnline(apqn, $1) }))
        }
        return d
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        String(repeating: "0", count: Swift.max(0, width - utf8.count)) + self
    }
}
