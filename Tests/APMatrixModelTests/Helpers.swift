import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

// Shared helpers of the model tests. Expected values in the tests are
// literals from SPEC.md, the seed and kernel-reference.md; these helpers only
// drive the model and format what it did.

/// The errno symbol an operation fails with, or nil when it succeeds.
/// (Closure literals cannot infer typed throws, so the body is untyped and
/// anything but an `APError` is reported as such.)
func errnoOf(_ body: () throws -> Void) -> String? {
    errorOf(body)?.errno.symbol
}

/// The full error of an operation, or nil.
func errorOf(_ body: () throws -> Void) -> APError? {
    do {
        try body()
        return nil
    } catch let e as APError {
        return e
    } catch {
        Issue.record("not an APError: \(error)")
        return APError(.ioError, "not an APError")
    }
}

/// A set of ids.
func ids<ID: APIdentifier>(_ list: [ID]) -> Bitmap256<ID> { Bitmap256(list) }

/// Builds a host. By default nothing is reserved for the host (both masks
/// zero), so every queue of a CEX4+ adapter is bound to vfio_ap.
func makeHost(adapters: [APID], domains: [APQI], control: [APQI]? = nil,
              types: [APID: String] = [:], restrictions: [APID: [APQI]] = [:],
              deconfigured: Set<APID> = [],
              apmask: Bitmap256<APID> = Bitmap256(), aqmask: Bitmap256<APQI> = Bitmap256(),
              apxa: Bool = true, maxMdevs: Int = 65536,
              facilities: Facilities = Facilities(), profile: Profile = .seed) throws -> APHost {
    let list = adapters.map { id in
        AdapterDescription(id: id, type: AdapterType(types[id] ?? "CEX8C")!,
                           configured: !deconfigured.contains(id),
                           domains: restrictions[id].map { Bitmap256($0) })
    }
    let d = HostDescription(apxa: apxa, facilities: facilities, usageDomains: Bitmap256(domains),
                            controlDomains: control.map { Bitmap256($0) }, apmask: apmask, aqmask: aqmask,
                            maxMdevs: maxMdevs, adapters: list)
    return try APHost(d, profile: profile)
}

/// Everything observable about a host except its event list.
struct HostState: Equatable {
    let host: APHost

    init(_ h: APHost) {
        var settled = h
        _ = settled.takeEvents()
        host = settled
    }

    var records: TrackedMap<APQN, QueueRecord> { host.firmware.records }
}

// Writes as a sysfs client makes them: each goes through the store function
// of its attribute (APMatrixSysfs.Store), which parses the bytes as the
// kernel does and calls the typed model operation. The errno paths of SPEC §3
// start at the parser, so the tests write text.
extension APHost {
    mutating func storeMask(_ axis: MaskAxis, _ input: [UInt8]) throws(APError) { try Store.mask(axis, input, in: &self) }
    mutating func storeAPDomain(_ input: [UInt8]) throws(APError) { try Store.apDomain(input, in: &self) }
    mutating func bind(driver: String, _ input: [UInt8]) throws(APError) { try Store.bind(driver: driver, input, in: &self) }
    mutating func unbind(driver: String, _ input: [UInt8]) throws(APError) { try Store.unbind(driver: driver, input, in: &self) }
    mutating func storeCardConfig(_ id: APID, _ input: [UInt8]) throws(APError) { try Store.cardConfig(id, input, in: &self) }
    mutating func storeCardOnline(_ id: APID, _ input: [UInt8]) throws(APError) { try Store.cardOnline(id, input, in: &self) }
    mutating func createMdev(_ input: [UInt8]) throws(APError) { try Store.create(input, in: &self) }
    mutating func removeMdev(_ uuid: MdevUUID, _ input: [UInt8]) throws(APError) { try Store.remove(uuid, input, in: &self) }
    mutating func assign(_ t: AssignTarget, mdev uuid: MdevUUID, _ input: [UInt8]) throws(APError) {
        try Store.assign(t, mdev: uuid, input, in: &self)
    }
    mutating func unassign(_ t: AssignTarget, mdev uuid: MdevUUID, _ input: [UInt8]) throws(APError) {
        try Store.unassign(t, mdev: uuid, input, in: &self)
    }
    mutating func storeAPConfig(mdev uuid: MdevUUID, _ input: [UInt8]) throws(APError) { try Store.apConfig(mdev: uuid, input, in: &self) }
    mutating func storeGuestConfigTime(_ name: String, _ input: [UInt8], at now: Uptime = .boot) throws(APError) {
        try Store.guestConfigTime(name, input, in: &self, at: now)
    }
    mutating func storeGuestAPDomain(_ name: String, _ input: [UInt8]) throws(APError) { try Store.guestAPDomain(name, input, in: &self) }
    mutating func storeGuestOnline(_ name: String, card: APID, queue: APQN?, _ input: [UInt8]) throws(APError) {
        try Store.guestOnline(name, card: card, queue: queue, input, in: &self)
    }
}

extension APHost {
    /// `echo <uuid> > create`, then assigns ids (decimal writes, one per id).
    mutating func mk(_ uuid: MdevUUID, adapters: [APID] = [], domains: [APQI] = [], control: [APQI] = []) throws(APError) {
        try createMdev(b("\(uuid)\n"))
        for a in adapters { try assign(.adapter, mdev: uuid, b("\(a.value)\n")) }
        for q in domains { try assign(.domain, mdev: uuid, b("\(q.value)\n")) }
        for c in control { try assign(.controlDomain, mdev: uuid, b("\(c.value)\n")) }
    }

    /// Starts guest `name` at `now` with a vfio-ap device on mdev `uuid`.
    mutating func start(_ name: String, mdev uuid: MdevUUID, cpu: String = "host", secure: Bool = false,
                        at now: Uptime = .boot) throws(APError) {
        let model = try CPUModel(parsing: cpu, facilities: firmware.facilities)
        try startGuest(name, cpu: model, device: VfioAPDevice(
            id: "hostdev0", mdev: uuid, sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuid)"), secure: secure, at: now)
    }

    /// `guest_matrix` text, or the errno symbol when it cannot be read.
    func gm(_ uuid: MdevUUID) -> String {
        do { return try guestMatrix(uuid).matrixText() } catch { return error.errno.symbol }
    }

    /// `matrix` text.
    func mx(_ uuid: MdevUUID) -> String {
        vfio.mdevs[uuid]?.matrix.matrixText() ?? "no mdev"
    }

    /// The shadow of an mdev.
    func shadow(_ uuid: MdevUUID) -> Matrix { vfio.mdevs[uuid]?.shadow ?? Matrix() }

    /// The lines the kernel logged (dmesg) since the last `takeEvents()`.
    var kernelLines: [String] { events.filter(\.isKernelText).map(\.line) }

    /// How often queue (a,q) was reset.
    func resets(_ a: APID, _ q: APQI) -> Int { firmware.records[APQN(a, q)]?.resets ?? 0 }

    /// The driver of queue (a,q): "vfio_ap", "cex4queue", "none" (unbound) or "absent".
    func drv(_ a: APID, _ q: APQI) -> String {
        guard let qd = bus.queues[APQN(a, q)] else { return "absent" }
        return qd.driver?.rawValue ?? "none"
    }

    /// The APQNs bound to a driver, as sysfs names, ascending.
    func bound(to driver: QueueDriver) -> [String] {
        bus.queues.filter { $0.value.driver == driver }.keys.sorted().map(\.description)
    }
}
