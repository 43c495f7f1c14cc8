/// The vfio_ap driver: its matrix mediated devices, what each has assigned
/// and its shadow CRYCB, and the bookkeeping that answers "who has this
/// APQN" in a few word operations whatever the number of mdevs.
public struct VfioAP: Hashable, Sendable {
    public internal(set) var mdevs = TrackedMap<MdevUUID, Mdev>()
    /// How many mdevs may exist at once (`available_instances` at boot).
    public internal(set) var maxMdevs: Int
    /// The driver has the migration series (`--preview vfio-ap-migration`);
    /// fixed at boot, like `maxMdevs`.
    public internal(set) var migration = false
    var nextSerial = 0
    /// Per APID, the APQIs assigned to some mdev. Exact, because no APQN is
    /// assigned twice; it makes the sharing check a few word operations
    /// whatever the number of mdevs.
    var assignedDomains = [Bitmap256<APQI>](repeating: Bitmap256(), count: 256)
    /// The IOMMU group numbers in use, one bit each, without trailing empty
    /// words (equal hosts have equal bookkeeping).
    var iommuGroupsInUse: [UInt64] = []

    init(maxMdevs: Int, migration: Bool = false) {
        self.maxMdevs = maxMdevs
        self.migration = migration
    }

    /// `available_instances`.
    public var availableInstances: Int { maxMdevs - mdevs.count }

    /// mdevs in creation order.
    public var mdevsInOrder: [Mdev] { mdevs.values.sorted { $0.serial < $1.serial } }

    /// The mdev with this UUID; ENODEV if there is none.
    public func mdev(_ uuid: MdevUUID) throws(APError) -> Mdev {
        guard let m = mdevs[uuid] else { throw APError(.noSuchDevice, "no mdev \(uuid)") }
        return m
    }

    /// The mdev that has `apqn` assigned, if any.
    public func owner(of apqn: APQN) -> Mdev? {
        guard assignedDomains[apqn.apid.value].contains(apqn.apqi) else { return nil }
        return mdevs.values.first { $0.matrix.contains(apqn) }
    }

    /// Whether some mdev has an APQN of `apqns` assigned.
    func anyAssigned(_ apqns: Matrix) -> Bool {
        apqns.apm.contains { assignedDomains[$0.value].intersects(apqns.aqm) }
    }

    /// The mdevs (other than `uuid`) whose assignment shares APQNs with
    /// `apqns`, in creation order, with those APQNs ascending.
    func conflicts(with apqns: Matrix, except uuid: MdevUUID?) -> [MdevConflict] {
        mdevs.values.compactMap { o -> MdevConflict? in
            guard o.uuid != uuid, o.matrix.apm.intersects(apqns.apm), o.matrix.aqm.intersects(apqns.aqm) else { return nil }
            return MdevConflict(mdev: o, apqns: Matrix(apm: o.matrix.apm & apqns.apm, aqm: o.matrix.aqm & apqns.aqm).apqns)
        }.sorted { $0.mdev.serial < $1.mdev.serial }
    }

    /// The group the next mdev gets: the lowest free one (`iommu_group_alloc`).
    public var lowestFreeIOMMUGroup: Int {
        let word = iommuGroupsInUse.firstIndex { $0 != .max } ?? iommuGroupsInUse.count
        return word << 6 | (word < iommuGroupsInUse.count ? (~iommuGroupsInUse[word]).trailingZeroBitCount : 0)
    }

    /// Whether an mdev has IOMMU group `n`.
    public func isIOMMUGroupInUse(_ n: Int) -> Bool {
        n >= 0 && n >> 6 < iommuGroupsInUse.count && iommuGroupsInUse[n >> 6] & (1 << UInt64(n & 63)) != 0
    }

    /// The lowest free IOMMU group number, now taken.
    mutating func takeIOMMUGroup() -> Int {
        let n = lowestFreeIOMMUGroup
        markIOMMUGroup(n)
        return n
    }

    /// Marks IOMMU group `n` as used.
    mutating func markIOMMUGroup(_ n: Int) {
        while iommuGroupsInUse.count <= n >> 6 { iommuGroupsInUse.append(0) }
        iommuGroupsInUse[n >> 6] |= 1 << UInt64(n & 63)
    }

    mutating func releaseIOMMUGroup(_ n: Int) {
        iommuGroupsInUse[n >> 6] &= ~(1 << UInt64(n & 63))
        while iommuGroupsInUse.last == 0 { iommuGroupsInUse.removeLast() }
    }

    /// Adds an mdev with the next creation serial.
    mutating func add(_ uuid: MdevUUID, iommuGroup: Int) {
        mdevs[uuid] = Mdev(uuid: uuid, iommuGroup: iommuGroup, serial: nextSerial)
        nextSerial += 1
    }

    /// Replaces an mdev's assignment and keeps `assignedDomains` exact.
    mutating func setMatrix(_ uuid: MdevUUID, _ new: Matrix) {
        guard let old = mdevs[uuid]?.matrix else { return }
        for a in old.apm { assignedDomains[a.value] = assignedDomains[a.value].subtracting(old.aqm) }
        for a in new.apm { assignedDomains[a.value] = assignedDomains[a.value] | new.aqm }
        mdevs[uuid]?.matrix = new
    }
}

/// A matrix mediated device (`devices/vfio_ap/matrix/<uuid>`).
public struct Mdev: Hashable, Sendable {
    public let uuid: MdevUUID
    /// M: what is assigned through the sysfs attributes.
    public internal(set) var matrix = Matrix()
    /// S: the shadow CRYCB, what the guest has.
    public internal(set) var shadow = Matrix()
    /// The guest using the mdev (it has the VFIO device open).
    public internal(set) var guest: String?
    /// The VFIO device's migration state while it is open, when the driver
    /// has the migration series (`mig_data->mig_state`); nil otherwise.
    public internal(set) var migrationState: VfioMigrationState?
    /// `iommu_group` number.
    public let iommuGroup: Int
    /// Creation order: mdevs are reported in this order.
    public let serial: Int
}

/// An mdev that has some of the APQNs asked about assigned, and which.
public struct MdevConflict: Hashable, Sendable {
    public let mdev: Mdev
    public let apqns: [APQN]
}

/// One id of an mdev's assignment, typed by its kind.
public enum Assignment: Hashable, Sendable {
    case adapter(APID)
    case domain(APQI)
    case controlDomain(APQI)

    public var target: AssignTarget {
        switch self {
        case .adapter: return .adapter
        case .domain: return .domain
        case .controlDomain: return .controlDomain
        }
    }

    /// The id as the hardware numbers it.
    var rawID: UInt8 {
        switch self {
        case .adapter(let a): return a.rawValue
        case .domain(let q), .controlDomain(let q): return q.rawValue
        }
    }

    /// `adapter 05`, `domain 0047`, for causes in the log.
    public var name: String {
        switch self {
        case .adapter(let a): return "adapter \(a)"
        case .domain(let q): return "domain \(q)"
        case .controlDomain(let q): return "control_domain \(q)"
        }
    }
}

/// The assignment attributes of an mdev.
public enum AssignTarget: String, Sendable, CaseIterable {
    case adapter, domain, controlDomain = "control_domain"
}

extension Matrix {
    /// This matrix with the id set (`true`) or cleared.
    func with(_ a: Assignment, _ present: Bool) -> Matrix {
        var m = self
        switch (a, present) {
        case (.adapter(let id), true): m.apm.insert(id)
        case (.adapter(let id), false): m.apm.remove(id)
        case (.domain(let id), true): m.aqm.insert(id)
        case (.domain(let id), false): m.aqm.remove(id)
        case (.controlDomain(let id), true): m.adm.insert(id)
        case (.controlDomain(let id), false): m.adm.remove(id)
        }
        return m
    }
}
