import APMatrixModel
import SystemPackage

/// `bus/ap` and `devices/ap`: the AP bus, its drivers, cards and queues
/// (kernel-reference §2, SPEC §2).
enum APBusView {
    typealias Directory = SysfsTree.Directory

    /// `bus/ap`.
    static func root(_ host: APHost) -> Directory {
        var d: Directory = [
            "apmask": .attribute(.rw({ $0.bus.apmask.hexString + "\n" }, { try Store.mask(.apmask, $1, in: &$0) })),
            "aqmask": .attribute(.rw({ $0.bus.aqmask.hexString + "\n" }, { try Store.mask(.aqmask, $1, in: &$0) })),
            "ap_max_adapter_id": .attribute(.ro { line($0.firmware.busMaxAdapter.value) }),
            "ap_max_domain_id": .attribute(.ro { line($0.firmware.busMaxDomain.value) }),
            "ap_domain": .attribute(.rw({ line($0.bus.apDomain) }, { try Store.apDomain($1, in: &$0) })),
            "ap_adapter_mask": .attribute(.ro { $0.firmware.hostConfiguration.apm.hexString + "\n" }),
            "ap_usage_domain_mask": .attribute(.ro { $0.firmware.usageDomains.hexString + "\n" }),
            "ap_control_domain_mask": .attribute(.ro { $0.firmware.controlDomains.hexString + "\n" }),
            "features": .attribute(.ro { features($0.firmware.qciFeatures) }),
            "ap_interrupts": .attribute(.ro { line($0.apInterrupts ? 1 : 0) }),
            "config_time": .attribute(.timed({ h, _ in line(h.bus.timers.configTime) },
                                             { h, b, now in try Store.configTime(b, in: &h, at: now) })),
            "poll_thread": .attribute(.rw({ line($0.bus.timers.pollThread ? 1 : 0) }, { try Store.pollThread($1, in: &$0) })),
            "poll_timeout": .attribute(.rw({ "\($0.bus.timers.pollTimeout)\n" }, { try Store.pollTimeout($1, in: &$0) })),
            "scans": .attribute(.timed({ h, now in line(h.busScans(at: now)) }, { h, _, now in Store.scans(in: &h, at: now) })),
            "bindings": .attribute(.ro { $0.bindingsText }),
            "devices": .directory,
            "drivers": .directory,
        ]
        if host.hasLinux619BusInterfaces {
            d["bindings_complete_count"] = .attribute(.ro { line($0.bus.bindingsCompleteCount) })
        }
        return d
    }

    /// Below `bus/ap`: `devices/` and `drivers/…`.
    static func directory(_ c: [Substring], _ host: APHost) -> Directory? {
        switch (c.count, c[0]) {
        case (1, "devices"):
            var d = Directory()
            for id in host.bus.cards.keys { d[id.cardName] = cardLink(id, up: 3) }
            for apqn in host.bus.queues.keys { d[apqn.description] = queueLink(apqn, up: 3) }
            return d
        case (1, "drivers"):
            return APBus.driverNames.reduce(into: Directory()) { $0[$1] = .directory }
        case (2, "drivers"):
            let driver = String(c[1])
            guard APBus.driverNames.contains(driver) else { return nil }
            var d: Directory = [
                "bind": .attribute(.wo { try Store.bind(driver: driver, $1, in: &$0) }),
                "unbind": .attribute(.wo { try Store.unbind(driver: driver, $1, in: &$0) }),
            ]
            let names = driver == "cex4card"
                ? host.bus.cards.filter { $0.value.bound }.keys.map(\.cardName)
                : host.bus.queues.filter { $0.value.driver?.rawValue == driver }.keys.map(\.description)
            for name in names { d[name] = boundDeviceLink(name, driver: driver, host) }
            return d
        default: return nil
        }
    }

    /// A symlink `up` levels below a tree's root to a card device.
    static func cardLink(_ id: APID, up: Int) -> Node {
        .symlink(String(repeating: "../", count: up) + "devices/ap/" + id.cardName)
    }

    /// A symlink `up` levels below a tree's root to a queue device.
    static func queueLink(_ apqn: APQN, up: Int) -> Node {
        .symlink(String(repeating: "../", count: up) + "devices/ap/" + apqn.apid.cardName + "/" + apqn.description)
    }

    /// A symlink `up` levels below the root to the card or queue device `name`, if it exists.
    static func deviceLink(_ name: String, _ host: APHost, up: Int) -> Node? {
        if let id = APID(cardName: name), host.bus.cards[id] != nil { return cardLink(id, up: up) }
        guard let apqn = APQN(sysfsName: name), host.bus.queues[apqn] != nil else { return nil }
        return queueLink(apqn, up: up)
    }

    /// The link in `bus/ap/drivers/<driver>/` to a device bound to that driver.
    static func boundDeviceLink(_ name: String, driver: String, _ host: APHost) -> Node? {
        if driver == "cex4card" {
            guard let id = APID(cardName: name), host.bus.cards[id]?.bound == true else { return nil }
        } else {
            guard let apqn = APQN(sysfsName: name), host.bus.queues[apqn]?.driver?.rawValue == driver else { return nil }
        }
        return deviceLink(name, host, up: 4)
    }

    /// `devices/ap`, a card, or a queue.
    static func deviceDirectory(_ c: [Substring], _ host: APHost) -> Directory? {
        guard let first = c.first else {
            return host.bus.cards.keys.reduce(into: ["uevent": SysfsTree.uevent(.apRoot)]) { $0[$1.cardName] = .directory }
        }
        guard let id = APID(cardName: String(first)), let card = host.bus.cards[id], let adapter = host.firmware.adapters[id] else {
            return nil
        }
        if c.count == 1 { return cardDirectory(id, card, adapter, host) }
        guard c.count == 2, let apqn = APQN(sysfsName: String(c[1])), apqn.apid == id,
              let queue = host.bus.queues[apqn] else { return nil }
        return queueDirectory(apqn, queue, adapter, host)
    }

    /// Attributes every AP device has with no state behind them.
    static func counters(_ d: inout Directory) {
        d["request_count"] = .attribute(.rw({ _ in "0\n" }, { _, _ in }))
        d["requestq_count"] = .attribute(.constant("0\n"))
        d["pendingq_count"] = .attribute(.constant("0\n"))
        d["chkstop"] = .attribute(.constant("0\n"))
    }

    /// `features` (`features_show`): the QCI flags, one blank between them;
    /// none at all reads as 0 bytes (the kernel returns the length before its newline).
    static func features(_ flags: [String]) -> String { flags.isEmpty ? "" : flags.joined(separator: " ") + "\n" }

    static func functions(_ type: AdapterType, apxa: Bool) -> Attribute {
        .constant(functionsText(type.apFunctions(apxa: apxa)))
    }

    /// `ap_functions`: `0x%08X\n`.
    static func functionsText(_ f: UInt32) -> String {
        let digits = String(f, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: 8 - digits.utf8.count) + digits + "\n"
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
        var d = cardConstants(adapter.type, apxa: host.firmware.apxa)
        d["config"] = .attribute(.rw({ line($0.firmware.adapters[id]?.configured == true ? 1 : 0) },
                                     { try Store.cardConfig(id, $1, in: &$0) }))
        d["uevent"] = SysfsTree.uevent(.card(id))
        if card.bound {
            d["driver"] = .symlink("../../../bus/ap/drivers/cex4card")
            d["type"] = .attribute(.constant(adapter.type.description + "\n"))
            d["online"] = .attribute(.rw({ host in
                line(host.firmware.adapters[id]?.configured == true && host.bus.cards[id]?.online == true ? 1 : 0)
            }, { try Store.cardOnline(id, $1, in: &$0) }))
        }
        for q in host.firmware.queueDomains(of: id) { d[APQN(id, q).description] = .directory }
        return d
    }

    /// The attributes of a queue that follow from its card's type, whether
    /// its driver enabled interrupts and whether its state is initiated
    /// (`request_count` reads `-` before).
    static func queueConstants(_ type: AdapterType, apxa: Bool, interrupts: Bool, initiated: Bool) -> Directory {
        var d: Directory = [
            "config": .attribute(.constant("1\n")),
            "ap_functions": .attribute(functions(type, apxa: apxa)),
            "interrupt": .attribute(.constant(interrupts ? "Interrupts enabled.\n" : "Interrupts disabled.\n")),
        ]
        counters(&d)
        if !initiated { d["request_count"] = .attribute(.rw({ _ in "-\n" }, { _, _ in })) }
        d["subsystem"] = .symlink("../../../../bus/ap")
        return d
    }

    static func queueDirectory(_ apqn: APQN, _ queue: QueueDevice, _ adapter: Adapter, _ host: APHost) -> Directory {
        var d = queueConstants(adapter.type, apxa: host.firmware.apxa,
                               interrupts: queue.driver == .cex4queue && host.apInterrupts, initiated: queue.initiated)
        if let driver = queue.driver {
            d["driver"] = .symlink("../../../../bus/ap/drivers/\(driver.rawValue)")
        }
        d["uevent"] = SysfsTree.uevent(.queue(apqn))
        if host.hasLinux619BusInterfaces {
            d["driver_override"] = .attribute(.rw({ ($0.bus.queues[apqn]?.driverOverride ?? "") + "\n" },
                                                  { try Store.driverOverride(apqn, $1, in: &$0) }))
        }
        if queue.driver == .vfioAP && host.hasUpstreamAttributes {
            d["status"] = .attribute(.ro { $0.queueStatus(apqn) + "\n" })
        }
        if queue.driver == .cex4queue {
            d["online"] = .attribute(.rw({ line($0.bus.queues[apqn]?.online == true ? 1 : 0) },
                                         { try Store.queueOnline(apqn, $1, in: &$0) }))
        }
        return d
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        String(repeating: "0", count: Swift.max(0, width - utf8.count)) + self
    }
}
