import APMatrixModel
import SystemPackage

/// A card device as sysfs shows it. `type` and `online` exist only while the
/// card is bound to the default driver (kernel-reference §2.6).
public struct CardInfo: Hashable, Sendable {
    public let apid: APID
    public var type: String?
    public var hwtype: Int?
    public var config: Bool?
    public var online: Bool?
    public var driver: String?
    /// `ap_functions`: the `AP_FUNC_*` bits, which tell the card's mode while `type` is gone.
    public var functions: UInt32?
}

/// A queue device as sysfs shows it (`online` only while bound to cex4queue).
public struct QueueInfo: Hashable, Sendable {
    public let apqn: APQN
    public var config: Bool?
    public var online: Bool?
    public var driver: String?
    /// `interrupt` says `Interrupts enabled.`; nil when it cannot be read.
    public var interruptsEnabled: Bool?
    /// vfio_ap's `status` (upstream): `unassigned`, `assigned` or `in use`.
    public var status: String?
    /// `driver_override` (Linux 6.19): "" when none is set, nil when the kernel has no such file.
    public var driverOverride: String?
    /// `request_count` reads `-`: the queue's state is uninitiated (its last driver let it go).
    public var uninitiated = false

    /// The override set on the queue, if any.
    public var override: String? { driverOverride.flatMap { $0.isEmpty ? nil : $0 } }
}

/// What an mdev's `guest_matrix` says.
public enum GuestMatrixReading: Hashable, Sendable {
    /// ENODEV: no guest uses the mdev.
    case none
    /// A guest uses the mdev and has these APQNs (its shadow CRYCB).
    case matrix(Matrix)
    /// The kernel has no `guest_matrix` attribute (before dynamic configuration).
    case unknown
}

/// A matrix mdev as sysfs shows it.
public struct MdevInfo: Hashable, Sendable {
    public let uuid: MdevUUID
    /// `matrix` and `control_domains`: M.
    public var matrix: Matrix
    public var guest: GuestMatrixReading
    public var iommuGroup: Int?

    /// Whether a guest uses the mdev; nil when the kernel cannot tell.
    public var hasGuest: Bool? {
        switch guest {
        case .none: return false
        case .matrix: return true
        case .unknown: return nil
        }
    }

    /// The shadow when a guest uses the mdev.
    public var guestMatrix: Matrix? {
        if case .matrix(let s) = guest { return s }
        return nil
    }
}

/// Why a directory cannot be read as sysfs with an AP bus.
public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The AP configuration of a host, read from sysfs alone: the AP bus masks
/// and maxima, the host AP configuration (QCI masks), cards, queues, driver
/// bindings, and the matrix mdevs. Optional files a real host may lack are
/// nil or derived, and `notes` says which.
public struct Snapshot: Hashable, Sendable {
    public var root: String
    public var apmask: Bitmap256<APID>
    public var aqmask: Bitmap256<APQI>
    /// `ap_max_adapter_id` / `ap_max_domain_id`: also vfio_ap's maxima.
    public var maxAdapter: APID
    public var maxDomain: APQI
    /// `features` lists APXA.
    public var apxa: Bool
    /// `bus/ap/features` as it reads (`-` without QCI); nil on kernels without it.
    public var features: String?
    /// `bus/ap/ap_interrupts`: whether the bus uses AP adapter interrupts; nil without the file.
    public var apInterrupts: Bool?
    /// `ap_domain`, when readable and set.
    public var apDomain: APQI?
    /// `bus/ap/scans`: how many times the host's AP bus scanned; nil on kernels without it.
    public var busScans: Int?
    /// H: `ap_adapter_mask`, `ap_usage_domain_mask`, `ap_control_domain_mask`.
    public var hostConfiguration: Matrix
    public var cards: [APID: CardInfo]
    public var queues: [APQN: QueueInfo]
    /// Sorted by UUID (sysfs does not show creation order).
    public var mdevs: [MdevInfo]
    public var availableInstances: Int?
    /// What had to be assumed because a file was missing.
    public var notes: [String]
    /// Which kernel the tree comes from: `devices/vfio_ap/matrix/features`
    /// listing `ap_config` is Linux 6.x (upstream); without it, the seed design.
    public var profile: Profile

    static let matrixDir = "devices/vfio_ap/matrix"
    static let typeDir = "devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough"

    /// Reads the tree under `dir`.
    public static func read(_ dir: SysfsDirectory) throws(SnapshotError) -> Snapshot {
        func mask<ID>(_ rel: String) -> Bitmap256<ID>? {
            guard let t = dir.text(rel), case .success(let m) = KernelParse.apMask(Array(t.trimmedSpaces.utf8), current: Bitmap256<ID>()) else { return nil }
            return m
        }
        func id<ID: APIdentifier>(_ rel: String) -> ID? { dir.int(rel).flatMap { ID(exactly: $0) } }
        guard let apmask: Bitmap256<APID> = mask("bus/ap/apmask"), let aqmask: Bitmap256<APQI> = mask("bus/ap/aqmask") else {
            let why: String
            switch dir.read("bus/ap/apmask") {
            case .failure(let e): why = "\(e.symbol) (\(e))"
            case .success: why = "not a mask"
            }
            throw SnapshotError(description: "\(dir.root) is not a sysfs tree with an AP bus: \(dir.path("bus/ap/apmask")): \(why); pass the mount with --sysfs DIR or APMATRIX_SYSFS")
        }
        var notes: [String] = []
        let features = dir.text("bus/ap/features")
        let apxa = features?.split(separator: " ").contains("APXA") ?? false
        let maxAdapter: APID = id("bus/ap/ap_max_adapter_id") ?? HostDescription.idLimit(apxa: apxa)
        let maxDomain: APQI = id("bus/ap/ap_max_domain_id") ?? HostDescription.idLimit(apxa: apxa)

        var cards: [APID: CardInfo] = [:]
        var queues: [APQN: QueueInfo] = [:]
        for name in dir.list("devices/ap") ?? [] {
            guard let id = APID(cardName: name) else { continue }
            let c = "devices/ap/" + name
            cards[id] = CardInfo(apid: id, type: dir.text(c + "/type")?.trimmedSpaces, hwtype: dir.int(c + "/hwtype"),
                                 config: dir.int(c + "/config").map { $0 == 1 }, online: dir.int(c + "/online").map { $0 == 1 },
                                 driver: dir.linkName(c + "/driver"),
                                 functions: dir.text(c + "/ap_functions").flatMap { UInt32($0.trimmedSpaces.dropFirst(2), radix: 16) })
            for qname in dir.list(c) ?? [] {
                guard let apqn = APQN(sysfsName: qname), apqn.apid == id else { continue }
                let q = c + "/" + qname
                queues[apqn] = QueueInfo(apqn: apqn, config: dir.int(q + "/config").map { $0 == 1 },
                                         online: dir.int(q + "/online").map { $0 == 1 }, driver: dir.linkName(q + "/driver"),
                                         interruptsEnabled: dir.text(q + "/interrupt").map { $0 == "Interrupts enabled." },
                                         status: dir.text(q + "/status"), driverOverride: dir.text(q + "/driver_override"),
                                         uninitiated: dir.text(q + "/request_count") == "-")
            }
        }

        var host = Matrix()
        if let apm: Bitmap256<APID> = mask("bus/ap/ap_adapter_mask"), let aqm: Bitmap256<APQI> = mask("bus/ap/ap_usage_domain_mask") {
            host = Matrix(apm: apm, aqm: aqm, adm: mask("bus/ap/ap_control_domain_mask") ?? aqm)
        } else {
            // Kernels before 5.x lack the QCI masks: what has devices is the best guess.
            for (id, c) in cards where c.config != false { host.apm.insert(id) }
            for apqn in queues.keys { host.aqm.insert(apqn.apqi) }
            host.adm = host.aqm
            notes.append("bus/ap/ap_adapter_mask is missing: the LPAR's configuration is taken from the card and queue devices")
        }

        var mdevs: [MdevInfo] = []
        for name in dir.list(matrixDir) ?? [] {
            guard let uuid = MdevUUID(sysfsName: name) else { continue }
            let d = matrixDir + "/" + name
            guard let m = dir.text(d + "/matrix").flatMap(parseMatrix) else { continue }
            var matrix = m
            matrix.adm = dir.text(d + "/control_domains").flatMap(parseControlDomains) ?? Bitmap256()
            let guest: GuestMatrixReading
            switch dir.read(d + "/guest_matrix") {
            case .success(let t): guest = parseMatrix(t).map { .matrix($0) } ?? .unknown
            case .failure(let e) where e == .noSuchDevice: guest = .none
            case .failure: guest = .unknown
            }
            mdevs.append(MdevInfo(uuid: uuid, matrix: matrix, guest: guest,
                                  iommuGroup: dir.linkName(d + "/iommu_group").flatMap { Int($0) }))
        }
        return Snapshot(root: dir.root, apmask: apmask, aqmask: aqmask, maxAdapter: maxAdapter, maxDomain: maxDomain,
                        apxa: apxa, features: features, apInterrupts: dir.int("bus/ap/ap_interrupts").map { $0 == 1 },
                        apDomain: id("bus/ap/ap_domain"), busScans: dir.int("bus/ap/scans"), hostConfiguration: host,
                        cards: cards, queues: queues, mdevs: mdevs,
                        availableInstances: dir.int(typeDir + "/available_instances"), notes: notes,
                        profile: (dir.text(matrixDir + "/features") ?? "").contains("ap_config") ? .upstream : .seed)
    }

    // MARK: questions the tools ask

    /// reserved(a,q): apmask bit a and aqmask bit q.
    public func isReserved(_ apqn: APQN) -> Bool { apmask.contains(apqn.apid) && aqmask.contains(apqn.apqi) }

    /// `seed profile` / `upstream profile`, for the headers of the tools' texts.
    public var profileName: String { "\(profile.rawValue) profile" }

    /// Whether the kernel has `driver_override` on queues (6.19).
    public var hasDriverOverride: Bool { queues.values.contains { $0.driverOverride != nil } }

    /// The mdev that has `apqn` assigned.
    public func owner(of apqn: APQN) -> MdevInfo? { mdevs.first { $0.matrix.contains(apqn) } }

    public func mdev(_ uuid: MdevUUID) -> MdevInfo? { mdevs.first { $0.uuid == uuid } }
}

/// Parses the `matrix` / `guest_matrix` format (`aa.qqqq`, `aa.`, `.qqqq`
/// lines) back into APM and AQM; nil if a line is not in that format.
public func parseMatrix(_ text: String) -> Matrix? {
    var m = Matrix()
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 2, parts[1].utf8.count <= 4 else { return nil }
        if !parts[0].isEmpty {
            guard let a: APID = hexID(parts[0]) else { return nil }
            m.apm.insert(a)
        }
        if !parts[1].isEmpty {
            guard let q: APQI = hexID(parts[1]) else { return nil }
            m.aqm.insert(q)
        }
    }
    return m
}

/// Parses `control_domains` (`%04lx` lines).
func parseControlDomains(_ text: String) -> Bitmap256<APQI>? {
    var adm = Bitmap256<APQI>()
    for line in text.split(separator: "\n") {
        guard let d: APQI = hexID(line) else { return nil }
        adm.insert(d)
    }
    return adm
}

/// An id printed in hex by a `show` function.
func hexID<ID: APIdentifier>(_ text: Substring) -> ID? { Int(text, radix: 16).flatMap { ID(exactly: $0) } }
