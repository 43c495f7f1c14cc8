/// The host's AP bus: the masks that reserve queues for the host, the card
/// and queue devices it created from the firmware's configuration, and
/// which driver each device is bound to.
public struct APBus: Hashable, Sendable {
    public internal(set) var apmask: Bitmap256<APID>
    public internal(set) var aqmask: Bitmap256<APQI>
    /// `ap_domain`: the default domain of zcrypt, nil when none (sysfs shows -1).
    public internal(set) var apDomain: APQI?
    public internal(set) var cards = TrackedMap<APID, Card>()
    public internal(set) var queues = TrackedMap<APQN, QueueDevice>()
    /// Per APID, the APQIs whose queue device is bound to vfio_ap.
    var vfioBound = [Bitmap256<APQI>](repeating: Bitmap256(), count: 256)

    init(apmask: Bitmap256<APID>, aqmask: Bitmap256<APQI>) {
        self.apmask = apmask
        self.aqmask = aqmask
    }

    /// Driver names under `bus/ap/drivers`.
    public static let driverNames = ["cex4card"] + QueueDriver.allCases.map(\.rawValue)

    /// reserved(a,q): apmask bit a and aqmask bit q, so only the default driver may have it.
    public func isReserved(_ apqn: APQN) -> Bool {
        apmask.contains(apqn.apid) && aqmask.contains(apqn.apqi)
    }

    /// bound(a,q): the queue device exists and is bound to vfio_ap.
    public func isBoundToVfio(_ apqn: APQN) -> Bool { vfioBound[apqn.apid.value].contains(apqn.apqi) }

    /// The APQIs of adapter `a` whose queues are bound to vfio_ap.
    public func vfioBoundDomains(of a: APID) -> Bitmap256<APQI> { vfioBound[a.value] }

    /// The driver whose masks fit the queue (`ap_device_probe`).
    func fittingDriver(_ apqn: APQN) -> QueueDriver { isReserved(apqn) ? .cex4queue : .vfioAP }

    /// Sets a queue device's driver and keeps `vfioBound` in step.
    mutating func setDriver(_ apqn: APQN, _ driver: QueueDriver?) {
        queues[apqn]?.driver = driver
        if driver == .vfioAP { vfioBound[apqn.apid.value].insert(apqn.apqi) } else { vfioBound[apqn.apid.value].remove(apqn.apqi) }
    }
}

/// A card device (`devices/ap/cardXX`): exists for every adapter of type 10–14 in the LPAR.
public struct Card: Hashable, Sendable {
    /// Bound to the default card driver `cex4card` (then `type`/`online` exist).
    public var bound = true
    /// The zcrypt `online` flag.
    public var online = true
}

/// A queue device (`devices/ap/cardXX/XX.YYYY`): exists for every usage
/// domain of a configured adapter of type 10–14.
public struct QueueDevice: Hashable, Sendable {
    /// nil: bound to no driver (after `unbind`).
    public var driver: QueueDriver?
    /// The zcrypt `online` flag (shown while bound to cex4queue).
    public var online = true
}

/// The drivers a queue device can be bound to.
public enum QueueDriver: String, Sendable, CaseIterable, Codable {
    /// The default (zcrypt) queue driver: the host uses the queue.
    case cex4queue
    /// The vfio_ap device driver: the queue can be passed to a guest.
    case vfioAP = "vfio_ap"
}

extension APHost {
    /// Brings card and queue devices in line with the firmware (the AP bus
    /// scan): removes devices that no longer exist, creates and binds new
    /// ones. Devices are created bound to the driver the masks give them.
    ///
    /// The corresponding kernel function is `ap_scan_bus`.
    mutating func scanBus() {
        for id in bus.cards.keys where !(firmware.adapters[id]?.type.hasDevices ?? false) {
            bus.cards[id] = nil
            events.append(.note("ap: \(id.cardName) removed"))
        }
        for (id, a) in firmware.adapters.sorted(by: { $0.key < $1.key }) where a.type.hasDevices && bus.cards[id] == nil {
            bus.cards[id] = Card()
        }
        var removed: [APQN] = []
        for (apqn, _) in bus.queues where !firmware.queueDomains(of: apqn.apid).contains(apqn.apqi) { removed.append(apqn) }
        for apqn in removed.sorted() {
            bus.setDriver(apqn, nil)
            bus.queues[apqn] = nil
        }
        if !removed.isEmpty { events.append(.note("ap: \(removed.count) queue device(s) removed")) }
        var created = 0
        for a in firmware.adapters.keys.sorted() {
            for q in firmware.queueDomains(of: a) where bus.queues[APQN(a, q)] == nil {
                let apqn = APQN(a, q)
                bus.queues[apqn] = QueueDevice(driver: nil)
                bus.setDriver(apqn, bus.fittingDriver(apqn))
                created += 1
            }
        }
        if created > 0 { events.append(.note("ap: \(created) queue device(s) created and bound")) }
    }
}
