import APMatrixModel
import Testing

// Shared helpers of the model tests. Expected values in the tests are
// literals from SPEC.md, the seed and kernel-reference.md; these helpers only
// drive the model and format what it did.

/// The bytes of a sysfs write.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The two UUIDs of the seed's EADDRINUSE example (A is created first).
let uuidA = "62177883-f1bb-47f0-914d-32a22e3a8804"
let uuidB = "cef03c3c-903d-4ecc-9a83-40694cb8aee4"
let uuidC = "4ab2c9b1-0c35-4f6a-9d0e-6e8a1f2b3c4d"

/// The seed's conflict log line (SPEC §3 "Masks").
func inUse(_ apqn: String, _ owner: String) -> String {
    "Userspace may not re-assign queue \(apqn) already assigned to \(owner)"
}

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
func ids(_ list: [Int]) -> Bitmap256 { Bitmap256(list) }

/// `0x` + the given hex digits, right-padded with `fill` to 64 digits: a
/// mask as sysfs shows it.
func mask(_ digits: String, fill: Character = "0") -> String {
    "0x" + digits + String(repeating: fill, count: 64 - digits.count)
}

/// Builds a host. By default nothing is reserved for the host (both masks
/// zero), so every queue of a CEX4+ adapter is bound to vfio_ap.
func makeHost(adapters: [Int], domains: [Int], control: [Int]? = nil,
              types: [Int: String] = [:], restrictions: [Int: [Int]] = [:],
              deconfigured: Set<Int> = [],
              apmask: Bitmap256 = Bitmap256(), aqmask: Bitmap256 = Bitmap256(),
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
    var apmask, aqmask: Bitmap256
    var apDomain: Int
    var adapters: [APID: Adapter]
    var usageDomains, controlDomains: Bitmap256
    var cards: [APID: Card]
    var queues: [APQN: QueueDevice]
    var vfio: [Bitmap256]
    var records: [APQN: QueueRecord]
    var mdevs: [String: Mdev]
    var guests: [String: Guest]
    var available: Int
    var hostConfiguration: Matrix

    init(_ h: APHost) {
        apmask = h.apmask
        aqmask = h.aqmask
        apDomain = h.apDomain
        adapters = h.adapters
        usageDomains = h.usageDomains
        controlDomains = h.controlDomains
        cards = h.cards
        queues = h.queues
        vfio = (0..<256).map { h.vfioBoundDomains(of: $0) }
        records = h.records
        mdevs = h.mdevs
        guests = h.guests
        available = h.availableInstances
        hostConfiguration = h.hostConfiguration
    }
}

extension APHost {
    /// `echo <uuid> > create`, then assigns ids (decimal writes, one per id).
    mutating func mk(_ uuid: String, adapters: [Int] = [], domains: [Int] = [], control: [Int] = []) throws(APError) {
        try createMdev(b(uuid + "\n"))
        for a in adapters { try assign(.adapter, mdev: uuid, b("\(a)\n")) }
        for q in domains { try assign(.domain, mdev: uuid, b("\(q)\n")) }
        for c in control { try assign(.controlDomain, mdev: uuid, b("\(c)\n")) }
    }

    /// Starts guest `name` with a vfio-ap device on mdev `uuid`.
    mutating func start(_ name: String, mdev uuid: String, cpu: String = "host") throws(APError) {
        let model = try CPUModel(parsing: cpu, facilities: facilities)
        try startGuest(name, cpu: model, device: VfioAPDevice(
            id: "hostdev0", mdev: uuid, sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuid)"))
    }

    /// `guest_matrix` text, or the errno symbol when it cannot be read.
    func gm(_ uuid: String) -> String {
        do { return try guestMatrix(uuid).matrixText() } catch { return error.errno.symbol }
    }

    /// `matrix` text.
    func mx(_ uuid: String) -> String {
        mdevs[uuid]?.matrix.matrixText() ?? "no mdev"
    }

    /// The shadow of an mdev.
    func shadow(_ uuid: String) -> Matrix { mdevs[uuid]?.shadow ?? Matrix() }

    /// The lines the kernel logged (dmesg) since the last `takeEvents()`.
    var kernelLines: [String] { events.filter(\.isKernelText).map(\.line) }

    /// How often queue (a,q) was reset.
    func resets(_ a: Int, _ q: Int) -> Int { records[APQN(a, q)]?.resets ?? 0 }

    /// The driver of queue (a,q): "vfio_ap", "cex4queue", "none" (unbound) or "absent".
    func drv(_ a: Int, _ q: Int) -> String {
        guard let qd = queues[APQN(a, q)] else { return "absent" }
        return qd.driver?.rawValue ?? "none"
    }

    /// The APQNs bound to a driver, as sysfs names, ascending.
    func bound(to driver: QueueDriver) -> [String] {
        queues.filter { $0.value.driver == driver }.keys.sorted().map(\.description)
    }
}
