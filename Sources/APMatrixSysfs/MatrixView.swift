import APMatrixModel
import SystemPackage

/// `devices/vfio_ap/matrix`: the matrix device, its mdev type and the mdevs
/// (kernel-reference §3, §7; SPEC §2).
enum MatrixView {
    typealias Directory = SysfsTree.Directory

    static let typeName = "vfio_ap-passthrough"

    static func directory(_ c: [Substring], _ host: APHost) -> Directory? {
        guard let first = c.first else {
            var d = fixedEntries(host)
            for uuid in host.vfio.mdevs.keys { d[uuid.description] = .directory }
            return d
        }
        if first == "mdev_supported_types" { return supportedTypes(Array(c.dropFirst()), host) }
        guard c.count == 1, let m = SysfsTree.mdev(String(first), host) else { return nil }
        return mdevDirectory(m, host)
    }

    /// The matrix device's entries other than its mdevs.
    static func fixedEntries(_ host: APHost) -> Directory {
        var d: Directory = [
            "mdev_supported_types": .directory,
            "driver": .symlink("../../../bus/matrix/drivers/vfio_ap"),
            "subsystem": .symlink("../../../bus/matrix"),
            "uevent": SysfsTree.uevent(.matrix),
        ]
        if let features = host.matrixFeatures { d["features"] = .attribute(.constant(features)) }
        return d
    }

    /// `mdev_supported_types/vfio_ap-passthrough/devices/<uuid>`.
    static func typeDeviceLink(_ uuid: MdevUUID) -> Node { .symlink("../../../\(uuid)") }

    static func supportedTypes(_ c: [Substring], _ host: APHost) -> Directory? {
        switch c.count {
        case 0: return [typeName: .directory]
        case 1 where c[0] == typeName:
            return [
                "create": .attribute(.wo { try Store.create($1, in: &$0) }),
                "name": .attribute(.constant("VFIO AP Passthrough Device\n")),
                "device_api": .attribute(.constant("vfio-ap\n")),
                "available_instances": .attribute(.ro { line($0.vfio.availableInstances) }),
                "devices": .directory,
            ]
        case 2 where c[0] == typeName && c[1] == "devices":
            return host.vfio.mdevs.keys.reduce(into: Directory()) { $0[$1.description] = typeDeviceLink($1) }
        default: return nil
        }
    }

    /// The names in an mdev's directory.
    static func mdevNames(_ host: APHost) -> [String] {
        ["matrix", "guest_matrix", "control_domains", "remove", "mdev_type", "iommu_group", "driver", "subsystem", "uevent"]
            + AssignTarget.allCases.flatMap { ["assign_" + $0.rawValue, "unassign_" + $0.rawValue] }
            + (host.hasUpstreamAttributes ? ["ap_config"] : [])
    }

    static func mdevDirectory(_ m: Mdev, _ host: APHost) -> Directory {
        mdevNames(host).reduce(into: Directory()) { $0[$1] = mdevNode($1, m, host) }
    }

    /// One entry of an mdev's directory, built alone: writes to an mdev's
    /// attributes are the hot path of every client.
    static func mdevNode(_ name: String, _ m: Mdev, _ host: APHost) -> Node? {
        let uuid = m.uuid
        switch name {
        case "matrix":
            return .attribute(.ro { host in matrixText(try host.vfio.mdev(uuid).matrix, host) })
        case "guest_matrix":
            return .attribute(.ro { host in matrixText(try host.guestMatrix(uuid), host) })
        case "control_domains":
            return .attribute(.ro { host in try host.vfio.mdev(uuid).matrix.controlDomainsText(maxAPQI: host.firmware.mdevMaxAPQI) })
        case "remove": return .attribute(.wo { try Store.remove(uuid, $1, in: &$0) })
        case "mdev_type": return .symlink("../mdev_supported_types/\(typeName)")
        case "iommu_group": return .symlink("../../../../kernel/iommu_groups/\(m.iommuGroup)")
        case "driver": return .symlink("../../../../bus/mdev/drivers/" + host.mdevDriver)
        case "subsystem": return .symlink("../../../../bus/mdev")
        case "uevent": return SysfsTree.uevent(.mdev(uuid))
        case "ap_config" where host.hasUpstreamAttributes:
            return .attribute(.rw({ host in
                let a = try host.vfio.mdev(uuid).matrix
                return [a.apm.hexString, a.aqm.hexString, a.adm.hexString].joined(separator: ",") + "\n"
            }, { try Store.apConfig(mdev: uuid, $1, in: &$0) }))
        default:
            for target in AssignTarget.allCases {
                if name == "assign_" + target.rawValue { return .attribute(.wo { try Store.assign(target, mdev: uuid, $1, in: &$0) }) }
                if name == "unassign_" + target.rawValue { return .attribute(.wo { try Store.unassign(target, mdev: uuid, $1, in: &$0) }) }
            }
            return nil
        }
    }

    /// `matrix` and `guest_matrix`: ids up to vfio_ap's maxima, one page at most.
    static func matrixText(_ m: Matrix, _ host: APHost) -> String {
        m.matrixText(maxAPID: host.firmware.mdevMaxAPID, maxAPQI: host.firmware.mdevMaxAPQI, limit: SysfsTree.readLimit)
    }
}
