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
            for uuid in host.mdevs.keys { d[uuid] = .directory }
            return d
        }
        if first == "mdev_supported_types" { return supportedTypes(Array(c.dropFirst()), host) }
        guard c.count == 1, let m = host.mdevs[String(first)] else { return nil }
        return mdevDirectory(m, host)
    }

    /// The matrix device's entries other than its mdevs.
    static func fixedEntries(_ host: APHost) -> Directory {
        var d: Directory = [
            "mdev_supported_types": .directory,
            "driver": .symlink("../../../bus/matrix/drivers/vfio_ap"),
            "subsystem": .symlink("../../../bus/matrix"),
        ]
        if host.hasUpstreamAttributes { d["features"] = .attribute(.constant("guest_matrix hotplug ap_config\n")) }
        return d
    }

    /// `mdev_supported_types/vfio_ap-passthrough/devices/<uuid>`.
    static func typeDeviceLink(_ uuid: String) -> Node { .symlink("../../../\(uuid)") }

    static func supportedTypes(_ c: [Substring], _ host: APHost) -> Directory? {
        switch c.count {
        case 0: return [typeName: .directory]
        case 1 where c[0] == typeName:
            return [
                "create": .attribute(.wo { try $0.createMdev($1) }),
                "name": .attribute(.constant("VFIO AP Passthrough Device\n")),
                "device_api": .attribute(.constant("vfio-ap\n")),
                "available_instances": .attribute(.ro { line($0.availableInstances) }),
                "devices": .directory,
            ]
        case 2 where c[0] == typeName && c[1] == "devices":
            return host.mdevs.keys.reduce(into: Directory()) { $0[$1] = typeDeviceLink($1) }
        default: return nil
        }
    }

    static func mdevDirectory(_ m: Mdev, _ host: APHost) -> Directory {
        let uuid = m.uuid
        var d: Directory = [
            "matrix": .attribute(.ro { host in
                try host.mdev(uuid).matrix.matrixText(maxAPID: host.mdevMaxAPID, maxAPQI: host.mdevMaxAPQI, limit: SysfsTree.readLimit)
            }),
            "guest_matrix": .attribute(.ro { host in
                try host.guestMatrix(uuid).matrixText(maxAPID: host.mdevMaxAPID, maxAPQI: host.mdevMaxAPQI, limit: SysfsTree.readLimit)
            }),
            "control_domains": .attribute(.ro { host in
                try host.mdev(uuid).matrix.controlDomainsText(maxAPQI: host.mdevMaxAPQI)
            }),
            "remove": .attribute(.wo { try $0.removeMdev(uuid, $1) }),
            "mdev_type": .symlink("../mdev_supported_types/\(typeName)"),
            "iommu_group": .symlink("../../../../kernel/iommu_groups/\(m.iommuGroup)"),
            "driver": .symlink("../../../../bus/mdev/drivers/vfio_mdev"),
            "subsystem": .symlink("../../../../bus/mdev"),
        ]
        if host.hasUpstreamAttributes {
            d["ap_config"] = .attribute(.rw({ host in
                let a = try host.mdev(uuid).matrix
                return [a.apm, a.aqm, a.adm].map(\.hexString).joined(separator: ",") + "\n"
            }, { try $0.storeAPConfig(mdev: uuid, $1) }))
        }
        for target in AssignTarget.allCases {
            d["assign_" + target.rawValue] = .attribute(.wo { try $0.assign(target, mdev: uuid, $1) })
            d["unassign_" + target.rawValue] = .attribute(.wo { try $0.unassign(target, mdev: uuid, $1) })
        }
        return d
    }
}
