import APMatrixModel

/// The `sysfsdev=` of a vfio-ap device names an mdev by path. QEMU accepts
/// any path that resolves to the mdev's directory; people write
/// `/sys/devices/vfio_ap/matrix/<uuid>`, libvirt `/sys/bus/mdev/devices/<uuid>`,
/// and users of the emulator the same paths under its mount.
public enum SysfsDev {
    /// The UUID of the mdev a `sysfsdev` path names, or nil when the path is
    /// not one of the mdev forms (the last component must be a UUID, below
    /// `devices/vfio_ap/matrix`, `bus/mdev/devices` or the type's `devices`).
    public static func uuid(_ sysfsdev: String) -> MdevUUID? {
        let parts = sysfsdev.split(separator: "/").map(String.init)
        guard let last = parts.last, let uuid = MdevUUID(parsing: last) else { return nil }
        let parent = parts.dropLast().suffix(3)
        let forms: [[String]] = [["devices", "vfio_ap", "matrix"], ["bus", "mdev", "devices"],
                                 ["mdev_supported_types", "vfio_ap-passthrough", "devices"]]
        if parts.count == 1 { return uuid }
        return forms.contains(Array(parent)) ? uuid : nil
    }
}
