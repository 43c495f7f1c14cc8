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
    /// The rescan and poll timers (`config_time`, `scans`, `poll_thread`, `poll_timeout`).
    public internal(set) var timers = BusTimers()
    /// `ap_bindings_complete_count`: the `BINDINGS=complete` uevents sent so far.
    public internal(set) var bindingsCompleteCount = 0
    /// The bindings-complete completion is re-armed (not done): a probe or
    /// new adapters or domains since the last `BINDINGS=complete`.
    public internal(set) var bindingsRearmed = true
    /// `ap_driver_override_ctr`: overrides set minus overrides cleared. A
    /// queue device that goes away keeps its count (the kernel's release
    /// does not decrement it), so it can exceed the overrides one sees.
    public internal(set) var driverOverrideCount = 0
    /// No `driver_override` was ever set: the masks alone decided every
    /// binding since boot. Once one was, bindings and assignments may differ
    /// from what the masks say (a cleared override does not rebind), and the
    /// invariants that compare them to the masks no longer apply.
    public internal(set) var bindingsFollowMasks = true

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

    /// The driver `ap_device_probe` accepts for the queue: the one its
    /// `driver_override` names (none if that is no queue driver), else the
    /// one the masks give it (reserved: the default driver).
    func fittingDriver(_ apqn: APQN) -> QueueDriver? {
        if let name = queues[apqn]?.driverOverride { return QueueDriver(rawValue: name) }
        return isReserved(apqn) ? .cex4queue : .vfioAP
    }

    /// Sets a queue device's driver and keeps `vfioBound` in step. Binding
    /// is a probe that passed the checks, which re-arms the bindings-complete
    /// completion (`ap_device_probe`).
    mutating func setDriver(_ apqn: APQN, _ driver: QueueDriver?) {
        if let old = queues[apqn]?.driver, old != driver { queues[apqn]?.initiated = false }
        if driver == .cex4queue { queues[apqn]?.initiated = true }
        queues[apqn]?.driver = driver
        if driver == .vfioAP { vfioBound[apqn.apid.value].insert(apqn.apqi) } else { vfioBound[apqn.apid.value].remove(apqn.apqi) }
        if driver != nil { bindingsRearmed = true }
    }

    /// `bindings`: queue devices bound to any driver / all queue devices.
    public var boundQueues: (bound: Int, total: Int) {
        (queues.values.reduce(0) { $0 + ($1.driver == nil ? 0 : 1) }, queues.count)
    }

    /// Whether both masks are all ones (`!ap_apmask_aqmask_in_use`), the only
    /// time a `driver_override` may be written.
    public var masksAreDefault: Bool { apmask == .all && aqmask == .all }
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
    /// `driver_override` (6.19): the only driver the next probe accepts.
    public var driverOverride: String?
    /// The queue's state is past uninitiated: set when the bus creates the
    /// device and when zcrypt probes it (`ap_queue_init_state`), cleared when
    /// a driver lets it go (`ap_queue_remove`); vfio_ap does not initiate
    /// it. Its `request_count` reads `-` while it is not.
    public var initiated = true
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
    /// scan): removes devices that no longer exist (queues, then their
    /// cards, announced with the types `before` had), creates and binds new
    /// ones (cards, then queues), each with the driver core's uevents.
    /// Devices are created bound to the driver the masks give them. The
    /// caller ends the scan (`endOfScan`) once the drivers heard of it.
    ///
    /// The corresponding kernel function is `ap_scan_bus`.
    mutating func scanBus(before: Firmware? = nil) {
        let old = before ?? firmware
        var removed: [APQN] = []
        for (apqn, _) in bus.queues where !firmware.queueDomains(of: apqn.apid).contains(apqn.apqi) { removed.append(apqn) }
        for apqn in removed.sorted() { removeQueueDevice(apqn, announcedWith: old) }
        if !removed.isEmpty { events.append(.note("ap: \(removed.count) queue device(s) removed")) }
        for id in bus.cards.keys.sorted() where !(firmware.adapters[id]?.type.hasDevices ?? false) {
            removeCardDevice(id, announcedWith: old)
            events.append(.note("ap: \(id.cardName) removed"))
        }
        for (id, a) in firmware.adapters.sorted(by: { $0.key < $1.key }) where a.type.hasDevices && bus.cards[id] == nil {
            addCardDevice(id)
        }
        var created = 0
        for a in firmware.adapters.keys.sorted() {
            for q in firmware.queueDomains(of: a) where bus.queues[APQN(a, q)] == nil {
                addQueueDevice(APQN(a, q))
                created += 1
            }
        }
        if created > 0 { events.append(.note("ap: \(created) queue device(s) created and bound")) }
    }

    /// The end of a bus scan: it is counted and, with its time, re-arms the
    /// rescan timer (a firmware change is applied at once, outside the
    /// timer's schedule, so it only counts); then the bindings are checked.
    mutating func endOfScan(at now: Uptime?) {
        if let now { bus.timers.recordScan(bus.timers.scans(at: now) + 1, at: now) } else { bus.timers.scansWhenArmed += 1 }
        checkBindingsComplete()
    }

    /// Sends `BINDINGS=complete` once all queue devices are bound, once per
    /// re-arming of the completion (6.x; the seed era sent it after every
    /// scan and probe: this project sends it once per re-arming in both
    /// profiles, docs/upstream-ap-bus.md §2.3).
    ///
    /// The corresponding kernel function is `ap_check_bindings_complete`.
    mutating func checkBindingsComplete() {
        let b = bus.boundQueues
        guard bus.bindingsRearmed, b.bound == b.total else { return }
        bus.bindingsRearmed = false
        bus.bindingsCompleteCount += 1
        events.append(.uevent(Uevent(action: .change, devpath: KernelDevice.apRoot.devpath, subsystem: "ap",
                                     properties: rules.bindingsCompleteProperties(count: bus.bindingsCompleteCount))))
    }
}
