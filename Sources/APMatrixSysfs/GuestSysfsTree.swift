import APMatrixModel
import SystemPackage

/// A guest's own `/sys` (SPEC §4 "The guest's view"): the AP bus as the
/// guest's kernel sees it after its last scan (`GuestBus`), not the CRYCB
/// itself. `ap=off`: no AP bus at all; `apft=off`: a bus without devices;
/// `apqci=off`: no QCI masks (`not supported`), ids up to 63/15 only.
public struct GuestSysfsTree: SysfsView {
    public let guest: String

    public init(guest: String) { self.guest = guest }

    typealias Directory = SysfsTree.Directory

    public func entries(_ c: [Substring], _ host: APHost) -> [String: Node]? {
        guard let g = host.guests[guest] else { return nil }
        let ap: Directory = g.cpu.ap ? ["ap": .directory] : [:]
        guard let first = c.first else { return ["bus": .directory, "devices": .directory] }
        switch (first, c.count) {
        case ("bus", 1), ("devices", 1): return ap
        case ("bus", _) where g.cpu.ap && c[1] == "ap": return busDirectory(Array(c.dropFirst(2)), g, host)
        case ("devices", _) where g.cpu.ap && c[1] == "ap": return deviceDirectory(Array(c.dropFirst(2)), g, host)
        default: return nil
        }
    }

    /// The guest's bus state at the time of a read; ENODEV once the guest is gone.
    func bus(_ host: APHost) throws(APError) -> GuestBus {
        guard let g = host.guests[guest] else { throw APError(.noSuchDevice, "guest \(guest) is not running") }
        return g.bus
    }

    /// A QCI mask as `ap_*_mask_show` prints it: `not supported` without QCI.
    func mask(_ axis: @escaping @Sendable (Matrix) -> Bitmap256) -> Attribute {
        .ro { [self] host in try bus(host).qci.map { axis($0).hexString + "\n" } ?? "not supported\n" }
    }

    func busDirectory(_ c: [Substring], _ g: Guest, _ host: APHost) -> Directory? {
        let name = guest
        let maxima = host.guestBusMaxima(g.cpu)
        switch c.first {
        case nil:
            return [
                "ap_adapter_mask": .attribute(mask { $0.apm }),
                "ap_usage_domain_mask": .attribute(mask { $0.aqm }),
                "ap_control_domain_mask": .attribute(mask { $0.adm }),
                "ap_max_adapter_id": .attribute(.constant(line(maxima.adapter))),
                "ap_max_domain_id": .attribute(.constant(line(maxima.domain))),
                "ap_domain": .attribute(.rw({ [self] in line(try bus($0).domain) },
                                            { try $0.storeGuestAPDomain(name, $1) })),
                "ap_interrupts": .attribute(.constant(line(g.cpu.apqi ? 1 : 0))),
                "features": .attribute(.constant(g.cpu.apqci ? APBusView.features(apxa: host.apxa) : "-\n")),
                "scans": .attribute(.rw({ [self] in line(try bus($0).scans) },
                                        { h, _ in try h.scanGuestBus(name, cause: "write to scans") })),
                "bindings": .attribute(.ro { [self] in try bus($0).bindingsText }),
                "config_time": .attribute(.rw({ [self] in line(try bus($0).configTime) },
                                              { try $0.storeGuestConfigTime(name, $1) })),
                "devices": .directory,
                "drivers": .directory,
            ]
        case "devices" where c.count == 1:
            var d = Directory()
            for id in g.bus.cards.keys { d[APBusView.cardName(id)] = .symlink("../../../devices/ap/\(APBusView.cardName(id))") }
            for apqn in g.bus.queues {
                d[apqn.description] = .symlink("../../../devices/ap/\(APBusView.cardName(apqn.apid))/\(apqn)")
            }
            return d
        case "drivers" where c.count == 1:
            return ["cex4card": .directory, "cex4queue": .directory]
        case "drivers" where c.count == 2 && c[1] == "cex4card":
            return g.bus.cards.keys.reduce(into: Directory()) {
                $0[APBusView.cardName($1)] = .symlink("../../../../devices/ap/\(APBusView.cardName($1))")
            }
        case "drivers" where c.count == 2 && c[1] == "cex4queue":
            return g.bus.queues.reduce(into: Directory()) {
                $0[$1.description] = .symlink("../../../../devices/ap/\(APBusView.cardName($1.apid))/\($1)")
            }
        default: return nil
        }
    }

    func deviceDirectory(_ c: [Substring], _ g: Guest, _ host: APHost) -> Directory? {
        let name = guest
        guard let first = c.first else {
            return g.bus.cards.keys.reduce(into: Directory()) { $0[APBusView.cardName($1)] = .directory }
        }
        guard let id = host.cardID(String(first)), let type = g.bus.cards[id] else { return nil }
        if c.count == 1 {
            var d = APBusView.cardConstants(type, apxa: host.apxa)
            d["config"] = .attribute(.rw({ _ in "1\n" }, { _, _ in
                throw APError(.ioError, "card\(hex(id, width: 2))/config: the guest's firmware (QEMU's SCLP) cannot configure or deconfigure AP adapters; use the host's card config")
            }))
            d["driver"] = .symlink("../../../bus/ap/drivers/cex4card")
            d["type"] = .attribute(.constant(type.description + "\n"))
            d["online"] = .attribute(.rw({ [self] in line(try bus($0).offlineCards.contains(id) ? 0 : 1) },
                                         { try $0.storeGuestOnline(name, card: id, queue: nil, $1) }))
            for apqn in g.bus.queues where apqn.apid == id { d[apqn.description] = .directory }
            return d
        }
        guard c.count == 2, let apqn = APQN(sysfsName: String(c[1])), apqn.apid == id,
              g.bus.queues.contains(apqn) else { return nil }
        var d = APBusView.queueConstants(type, apxa: host.apxa, interrupts: g.cpu.apqi)
        d["driver"] = .symlink("../../../../bus/ap/drivers/cex4queue")
        d["online"] = .attribute(.rw({ [self] in line(try bus($0).offlineQueues.contains(apqn) ? 0 : 1) },
                                     { try $0.storeGuestOnline(name, card: id, queue: apqn, $1) }))
        return d
    }
}
