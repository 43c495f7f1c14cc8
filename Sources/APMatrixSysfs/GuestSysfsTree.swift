import APMatrixModel
import SystemPackage

/// A guest's own `/sys` (SPEC §4 "The guest's view"): the AP bus as the
/// guest's kernel sees it after its last scan (`GuestBus`), not the CRYCB
/// itself. `ap=off`: no AP bus at all; `apft=off`: a bus without devices;
/// `apqci=off`: no QCI masks (`not supported`), ids up to the legacy maxima only.
/// A Secure Execution guest's queues bind and associate (`GuestSESysfs.swift`).
public struct GuestSysfsTree: SysfsView {
    public let guest: String

    public init(guest: String) { self.guest = guest }

    typealias Directory = SysfsTree.Directory

    public func entries(_ c: [Substring], _ host: APHost) -> [String: Node]? {
        guard let g = host.guests[guest] else { return nil }
        let ap: Directory = g.hasAPBus ? ["ap": .directory] : [:]
        guard let first = c.first else { return ["bus": .directory, "devices": .directory] }
        switch (first, c.count) {
        case ("bus", 1), ("devices", 1): return ap
        case ("bus", _) where g.hasAPBus && c[1] == "ap": return busDirectory(Array(c.dropFirst(2)), g, host)
        case ("devices", _) where g.hasAPBus && c[1] == "ap": return deviceDirectory(Array(c.dropFirst(2)), g, host)
        default: return nil
        }
    }

    /// The guest at the time of a read; ENODEV once it is gone.
    func running(_ host: APHost) throws(APError) -> Guest {
        guard let g = host.guests[guest] else { throw APError(.noSuchDevice, "guest \(guest) is not running") }
        return g
    }

    /// The guest's bus state at the time of a read.
    func bus(_ host: APHost) throws(APError) -> GuestBus { try running(host).bus }

    /// A QCI mask as `ap_*_mask_show` prints it: `not supported` without QCI.
    func mask(_ axis: @escaping @Sendable (Matrix) -> String) -> Attribute {
        .ro { [self] host in try bus(host).qci.map { axis($0) + "\n" } ?? "not supported\n" }
    }

    func busDirectory(_ c: [Substring], _ g: Guest, _ host: APHost) -> Directory? {
        let name = guest
        let maxima = host.guestBusMaxima(g.cpu)
        switch c.first {
        case nil:
            return [
                "ap_adapter_mask": .attribute(mask { $0.apm.hexString }),
                "ap_usage_domain_mask": .attribute(mask { $0.aqm.hexString }),
                "ap_control_domain_mask": .attribute(mask { $0.adm.hexString }),
                "ap_max_adapter_id": .attribute(.constant(line(maxima.adapter.value))),
                "ap_max_domain_id": .attribute(.constant(line(maxima.domain.value))),
                "ap_domain": .attribute(.rw({ [self] in line(try bus($0).domain) },
                                            { try Store.guestAPDomain(name, $1, in: &$0) })),
                "ap_interrupts": .attribute(.constant(line(g.apInterrupts ? 1 : 0))),
                "features": .attribute(.constant(g.cpu.apqci ? APBusView.features(host.firmware.qciFeatures + (g.hasAPSB ? ["APSB"] : [])) : "-\n")),
                "poll_thread": .attribute(.rw({ [self] in line(try bus($0).timers.pollThread ? 1 : 0) },
                                              { try Store.guestPollThread(name, $1, in: &$0) })),
                "poll_timeout": .attribute(.rw({ [self] in "\(try bus($0).timers.pollTimeout)\n" },
                                               { try Store.guestPollTimeout(name, $1, in: &$0) })),
                "scans": .attribute(.timed({ [self] h, now in line(try running(h).busScans(at: now)) },
                                           { h, _, now in try Store.guestScans(name, in: &h, at: now) })),
                "bindings": .attribute(.timed { [self] h, now in try running(h).bindingsText(at: now) }),
                "config_time": .attribute(.timed({ [self] h, _ in line(try bus(h).timers.configTime) },
                                                 { h, b, now in try Store.guestConfigTime(name, b, in: &h, at: now) })),
                "devices": .directory,
                "drivers": .directory,
            ]
        case "devices" where c.count == 1:
            var d = Directory()
            for id in g.bus.cards.keys { d[id.cardName] = APBusView.cardLink(id, up: 3) }
            for apqn in g.bus.queues { d[apqn.description] = APBusView.queueLink(apqn, up: 3) }
            return d
        case "drivers" where c.count == 1:
            return ["cex4card": .directory, "cex4queue": .directory]
        case "drivers" where c.count == 2 && c[1] == "cex4card":
            return g.bus.cards.keys.reduce(into: Directory()) { $0[$1.cardName] = APBusView.cardLink($1, up: 4) }
        case "drivers" where c.count == 2 && c[1] == "cex4queue":
            return g.bus.queues.reduce(into: Directory()) { $0[$1.description] = APBusView.queueLink($1, up: 4) }
        default: return nil
        }
    }

    func deviceDirectory(_ c: [Substring], _ g: Guest, _ host: APHost) -> Directory? {
        let name = guest
        guard let first = c.first else {
            return g.bus.cards.keys.reduce(into: Directory()) { $0[$1.cardName] = .directory }
        }
        guard let id = APID(cardName: String(first)), let type = g.bus.cards[id] else { return nil }
        if c.count == 1 {
            var d = APBusView.cardConstants(type, apxa: host.firmware.apxa)
            d["config"] = .attribute(.rw({ _ in "1\n" }, { _, _ in
                throw APError(.ioError, "\(id.cardName)/config: the guest's firmware (QEMU's SCLP) cannot configure or deconfigure AP adapters; use the host's card config")
            }))
            d["driver"] = .symlink("../../../bus/ap/drivers/cex4card")
            d["type"] = .attribute(.constant(type.description + "\n"))
            d["online"] = .attribute(.rw({ [self] in line(try bus($0).offlineCards.contains(id) ? 0 : 1) },
                                         { try Store.guestOnline(name, card: id, queue: nil, $1, in: &$0) }))
            for apqn in g.bus.queues where apqn.apid == id { d[apqn.description] = .directory }
            return d
        }
        guard c.count == 2, let apqn = APQN(sysfsName: String(c[1])), apqn.apid == id,
              g.bus.queues.contains(apqn) else { return nil }
        var d = APBusView.queueConstants(type, apxa: host.firmware.apxa, interrupts: g.apInterrupts, initiated: true)
        d.merge(queueFunctions(apqn, type, g)) { $1 }
        d["driver"] = .symlink("../../../../bus/ap/drivers/cex4queue")
        d["online"] = .attribute(.rw({ [self] in line(try bus($0).offlineQueues.contains(apqn) ? 0 : 1) },
                                     { try Store.guestOnline(name, card: id, queue: apqn, $1, in: &$0) }))
        return d
    }
}
