/// How QEMU names and finds a vfio-ap device: `-device
/// vfio-ap,sysfsdev=PATH,id=ID` on the command line, `device_add` over QMP,
/// and a libvirt hostdev. One rule for every edge.
extension VfioAPDevice {
    /// QEMU's `id_wellformed`: a letter, then letters, digits, `-`, `.`, `_`.
    public static func isWellFormedID(_ id: String) -> Bool {
        let u = Array(id.utf8)
        guard let f = u.first, (f | 0x20) >= 0x61, (f | 0x20) <= 0x7a else { return false }
        return u.allSatisfy { ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x2e || $0 == 0x5f }
    }

    /// The UUID of the mdev a `sysfsdev` path names, or nil when the path is
    /// not one of the mdev forms. QEMU accepts any path that resolves to the
    /// mdev's directory; people write `/sys/devices/vfio_ap/matrix/<uuid>`,
    /// libvirt `/sys/bus/mdev/devices/<uuid>`, users of the emulator the same
    /// paths under its mount: the last component must be a UUID, below
    /// `devices/vfio_ap/matrix`, `bus/mdev/devices` or the type's `devices`.
    public static func mdev(sysfsdev: String) -> MdevUUID? {
        let parts = sysfsdev.split(separator: "/").map(String.init)
        guard let last = parts.last, let uuid = MdevUUID(parsing: last) else { return nil }
        if parts.count == 1 { return uuid }
        let forms: [[String]] = [["devices", "vfio_ap", "matrix"], ["bus", "mdev", "devices"],
                                 ["mdev_supported_types", "vfio_ap-passthrough", "devices"]]
        return forms.contains(Array(parts.dropLast().suffix(3))) ? uuid : nil
    }

    /// A device for an mdev path; the id must be well formed (QEMU's rule).
    public init(sysfsdev: String, id: String) throws(APError) {
        guard Self.isWellFormedID(id) else {
            throw APError(.invalidArgument, "device id '\(id)': QEMU ids start with a letter, then letters, digits, '-', '.', '_'")
        }
        guard let uuid = Self.mdev(sysfsdev: sysfsdev) else {
            throw APError(.noSuchFileOrDirectory,
                          "vfio-ap sysfsdev \(sysfsdev): not an mdev path (…/devices/vfio_ap/matrix/UUID or …/bus/mdev/devices/UUID)")
        }
        self.init(id: id, mdev: uuid, sysfsdev: sysfsdev)
    }

    /// A device with QEMU's migration properties (the series' QEMU; a host
    /// without it refuses them when the device is plugged, as released QEMU
    /// has no such property): `enable-migration` takes `on|off|auto`,
    /// `migration-events` QEMU's bool spellings.
    public init(sysfsdev: String, id: String, properties: [(String, String)]) throws(APError) {
        try self.init(sysfsdev: sysfsdev, id: id)
        for (key, value) in properties {
            switch key {
            case "enable-migration":
                guard let v = OnOffAuto(rawValue: value) else {
                    throw APError(.invalidArgument, "Parameter 'enable-migration' does not accept value '\(value)'")
                }
                enableMigration = v
            case "migration-events":
                guard let v = Self.qemuBool(value) else {
                    throw APError(.invalidArgument, "Parameter 'migration-events' expects 'on' or 'off'")
                }
                migrationEvents = v
            default:
                throw APError(.invalidArgument, "Property 'vfio-ap.\(key)' not found")
            }
        }
    }

    /// QEMU's `qapi_bool_parse`: on/yes/true/y and off/no/false/n.
    static func qemuBool(_ s: String) -> Bool? {
        switch s {
        case "on", "yes", "true", "y": return true
        case "off", "no", "false", "n": return false
        default: return nil
        }
    }

    /// Parses a QEMU `-device` value for vfio-ap: `vfio-ap,sysfsdev=PATH,id=ID`
    /// with optional `enable-migration=on|off|auto` and `migration-events=on|off`.
    public init(qemuDevice text: String) throws(APError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "vfio-ap" || parts.first == "driver=vfio-ap" else {
            throw APError(.invalidArgument, "-device \(text): only vfio-ap devices are emulated (vfio-ap,sysfsdev=PATH,id=ID)")
        }
        var sysfsdev: String?, id: String?, properties: [(String, String)] = []
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw APError(.invalidArgument, "-device \(text): '\(p)' is not property=value") }
            switch kv[0] {
            case "sysfsdev": sysfsdev = kv[1]
            case "id": id = kv[1]
            case "enable-migration", "migration-events": properties.append((kv[0], kv[1]))
            default: throw APError(.invalidArgument, "-device \(text): vfio-ap has no property '\(kv[0])'")
            }
        }
        guard let sysfsdev else { throw APError(.invalidArgument, "-device \(text): sysfsdev=PATH of the mdev is required") }
        guard let id else { throw APError(.invalidArgument, "-device \(text): id=ID is required, so that device_del can name it") }
        do throws(APError) { try self.init(sysfsdev: sysfsdev, id: id, properties: properties) } catch {
            throw APError(error.errno, "-device \(text): \(error.message)")
        }
    }
}
