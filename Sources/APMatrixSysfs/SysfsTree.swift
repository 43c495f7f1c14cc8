import APMatrixModel
import SystemPackage

/// A sysfs attribute: its permission bits and what reading or writing it does.
/// The closures only ever throw `APError` (the model's operations); Swift
/// cannot infer typed throws for closure literals, so `typed` restores the type.
/// Both take the time of the request: a few attributes (a guest bus's
/// `scans`) depend on it, the rest ignore it.
public struct Attribute: Sendable {
    public let mode: UInt16
    let show: (@Sendable (APHost, Uptime) throws -> String)?
    let store: (@Sendable (inout APHost, [UInt8], Uptime) throws -> Void)?

    public var isReadable: Bool { show != nil }
    public var isWritable: Bool { store != nil }

    static func ro(_ show: @escaping @Sendable (APHost) throws -> String) -> Attribute {
        Attribute(mode: 0o444, show: { h, _ in try show(h) }, store: nil)
    }
    static func wo(_ store: @escaping @Sendable (inout APHost, [UInt8]) throws -> Void) -> Attribute {
        Attribute(mode: 0o200, show: nil, store: { h, b, _ in try store(&h, b) })
    }
    static func rw(_ show: @escaping @Sendable (APHost) throws -> String,
                   _ store: @escaping @Sendable (inout APHost, [UInt8]) throws -> Void) -> Attribute {
        Attribute(mode: 0o644, show: { h, _ in try show(h) }, store: { h, b, _ in try store(&h, b) })
    }
    /// An attribute whose text or store depends on the time.
    static func timed(_ show: @escaping @Sendable (APHost, Uptime) throws -> String,
                      _ store: (@Sendable (inout APHost, [UInt8], Uptime) throws -> Void)? = nil) -> Attribute {
        Attribute(mode: store == nil ? 0o444 : 0o644, show: show, store: store)
    }
    static func constant(_ text: String) -> Attribute { .ro { _ in text } }
}

/// One node of the tree.
public enum Node: Sendable {
    case directory
    case attribute(Attribute)
    case symlink(String)
}

/// A sysfs tree as a view of the model: the directories it has, built from
/// the `APHost` it is given. Lookups, listings, reads and writes are the
/// same for every tree (the host's `/sys`, a guest's `/sys`).
public protocol SysfsView: Sendable {
    /// The entries of the directory with these path components, or nil.
    func entries(_ c: [Substring], _ host: APHost) -> [String: Node]?
    /// One entry of that directory; a view answers it without listing the
    /// directory where that would cost as much as the model is large.
    func entry(_ name: String, in c: [Substring], _ host: APHost) -> Node?
}

extension SysfsView {
    public func entry(_ name: String, in c: [Substring], _ host: APHost) -> Node? {
        entries(c, host)?[name]
    }

    /// The node at `path`, or nil (ENOENT).
    public func node(_ path: String, in host: APHost) -> Node? {
        let c = SysfsTree.components(path)
        guard let last = c.last else { return .directory }
        return entry(String(last), in: Array(c.dropLast()), host)
    }

    /// The names in the directory at `path`, sorted; nil if it is not a directory.
    public func children(_ path: String, in host: APHost) -> [String]? {
        entries(SysfsTree.components(path), host).map { $0.keys.sorted() }
    }

    /// Renders an attribute (`show`) at `now`, cut at one page less one byte.
    public func read(_ path: String, in host: APHost, at now: Uptime) throws(APError) -> [UInt8] {
        guard case .attribute(let a)? = node(path, in: host) else {
            throw APError(.noSuchDevice, "\(path): the attribute is gone (its device was removed)")
        }
        guard let show = a.show else { throw APError(.permissionDenied, "\(path) is write-only") }
        return Array(try typed { try show(host, now) }.utf8.prefix(SysfsTree.readLimit))
    }

    /// The attribute at `path` and its name; ENODEV when there is none
    /// (its device was removed while the file was open).
    public func attribute(_ path: String, in host: APHost) throws(APError) -> (name: String, attribute: Attribute) {
        let c = SysfsTree.components(path)
        guard let last = c.last, case .attribute(let a)? = entry(String(last), in: Array(c.dropLast()), host) else {
            throw APError(.noSuchDevice, "\(path): the attribute is gone (its device was removed)")
        }
        return (String(last), a)
    }

    /// Stores one `write()` into attribute `a` at `path`, at `now`. An empty
    /// write does nothing and more than a page is E2BIG, as in kernfs.
    public func store(_ a: Attribute, _ path: String, _ bytes: [UInt8], in host: inout APHost, at now: Uptime) throws(APError) {
        guard let store = a.store else { throw APError(.permissionDenied, "\(path) is read-only") }
        guard bytes.count <= SysfsTree.attributeSize else {
            throw APError(.argListTooLong, "\(path): a sysfs write takes at most \(SysfsTree.attributeSize) bytes")
        }
        guard !bytes.isEmpty else { return }
        try typed { try store(&host, bytes, now) }
    }

    /// Stores one `write()` into the attribute at `path`, at `now`.
    public func write(_ path: String, _ bytes: [UInt8], in host: inout APHost, at now: Uptime) throws(APError) {
        try store(try attribute(path, in: host).attribute, path, bytes, in: &host, at: now)
    }
}

/// The host's sysfs tree (SPEC §2): the mount point stands for `/sys`.
/// Nothing is stored here; every lookup, listing, read and write is answered
/// from the `APHost` it is given.
public enum SysfsTree {
    /// The size every attribute reports, like sysfs.
    public static let attributeSize = 4096
    /// A read is cut at this many bytes (`sysfs_emit_at` into one page).
    public static let readLimit = 4095

    /// The host's tree as a `SysfsView`.
    public static let hostView: any SysfsView = HostView()

    struct HostView: SysfsView {
        func entries(_ c: [Substring], _ host: APHost) -> [String: Node]? { SysfsTree.entries(c, host) }

        /// The directories with one entry per mdev or per queue are looked
        /// into by name, so that an operation's cost does not grow with them.
        func entry(_ name: String, in c: [Substring], _ host: APHost) -> Node? {
            switch c {
            case ["devices", "vfio_ap", "matrix"]:
                return SysfsTree.mdev(name, host) != nil ? .directory : MatrixView.fixedEntries(host)[name]
            case ["bus", "mdev", "devices"]:
                return SysfsTree.mdev(name, host).map { SysfsTree.mdevLink($0.uuid, up: 3) }
            case ["devices", "vfio_ap", "matrix", "mdev_supported_types", "vfio_ap-passthrough", "devices"]:
                return SysfsTree.mdev(name, host).map { MatrixView.typeDeviceLink($0.uuid) }
            case ["bus", "ap", "devices"]:
                return APBusView.deviceLink(name, host, up: 3)
            case ["kernel", "iommu_groups"]:
                guard let n = Int(name), String(n) == name, host.vfio.isIOMMUGroupInUse(n) else { return nil }
                return .directory
            default:
                if c.count == 4, c[0] == "devices", c[1] == "vfio_ap", c[2] == "matrix", let m = SysfsTree.mdev(String(c[3]), host) {
                    return MatrixView.mdevNode(name, m, host)
                }
                if c.count == 4, c[0] == "bus", c[1] == "mdev", c[2] == "drivers", c[3] == host.mdevDriver {
                    return SysfsTree.mdev(name, host).map { SysfsTree.mdevLink($0.uuid, up: 4) }
                }
                if c.count == 4, c[0] == "bus", c[1] == "ap", c[2] == "drivers", name != "bind", name != "unbind" {
                    return APBusView.boundDeviceLink(name, driver: String(c[3]), host)
                }
                return entries(c, host)?[name]
            }
        }
    }

    /// The mdev a directory name stands for.
    static func mdev(_ name: String, _ host: APHost) -> Mdev? {
        MdevUUID(sysfsName: name).flatMap { host.vfio.mdevs[$0] }
    }

    /// A symlink `up` levels below the root to an mdev's directory.
    static func mdevLink(_ uuid: MdevUUID, up: Int) -> Node {
        .symlink(String(repeating: "../", count: up) + "devices/vfio_ap/matrix/\(uuid)")
    }

    /// A device's `uevent` file: its variables to read, a synthetic event to write.
    static func uevent(_ device: KernelDevice) -> Node {
        .attribute(.rw({ $0.ueventEnvironment(device)?.fileText ?? "" }, { try Store.uevent(device, $1, in: &$0) }))
    }

    /// Splits `/bus/ap/apmask` into its components.
    public static func components(_ path: String) -> [Substring] {
        path.split(separator: "/")
    }

    public static func node(_ path: String, in host: APHost) -> Node? { hostView.node(path, in: host) }

    public static func children(_ path: String, in host: APHost) -> [String]? { hostView.children(path, in: host) }

    // Only the bus's `scans` and `config_time` depend on the time; a
    // caller without a clock reads and writes at boot.

    public static func read(_ path: String, in host: APHost, at now: Uptime = .boot) throws(APError) -> [UInt8] {
        try hostView.read(path, in: host, at: now)
    }

    public static func write(_ path: String, _ bytes: [UInt8], in host: inout APHost, at now: Uptime = .boot) throws(APError) {
        try hostView.write(path, bytes, in: &host, at: now)
    }

    // MARK: the directories

    typealias Directory = [String: Node]

    /// The entries of the directory with these components, or nil.
    static func entries(_ c: [Substring], _ host: APHost) -> Directory? {
        switch c.count {
        case 0: return ["bus": .directory, "class": .directory, "devices": .directory, "kernel": .directory]
        default: break
        }
        switch c[0] {
        case "bus": return bus(Array(c.dropFirst()), host)
        case "class":
            if c.count == 1 { return ["mdev_bus": .directory] }
            if c.count == 2 && c[1] == "mdev_bus" { return ["matrix": .symlink("../../devices/vfio_ap/matrix")] }
            return nil
        case "devices": return devices(Array(c.dropFirst()), host)
        case "kernel": return kernel(Array(c.dropFirst()), host)
        default: return nil
        }
    }

    static func bus(_ c: [Substring], _ host: APHost) -> Directory? {
        switch c.count {
        case 0: return ["ap": .directory, "mdev": .directory, "matrix": .directory]
        case 1:
            switch c[0] {
            case "ap": return APBusView.root(host)
            case "mdev", "matrix": return ["devices": .directory, "drivers": .directory]
            default: return nil
            }
        default: break
        }
        switch (c[0], c[1]) {
        case ("ap", _): return APBusView.directory(Array(c.dropFirst()), host)
        case ("mdev", "devices") where c.count == 2:
            return host.vfio.mdevs.keys.reduce(into: Directory()) { $0[$1.description] = mdevLink($1, up: 3) }
        case ("mdev", "drivers") where c.count == 2: return [host.mdevDriver: .directory]
        case ("mdev", "drivers") where c.count == 3 && c[2] == host.mdevDriver:
            return host.vfio.mdevs.keys.reduce(into: Directory()) { $0[$1.description] = mdevLink($1, up: 4) }
        case ("matrix", "devices") where c.count == 2: return ["matrix": .symlink("../../../devices/vfio_ap/matrix")]
        case ("matrix", "drivers") where c.count == 2: return ["vfio_ap": .directory]
        case ("matrix", "drivers") where c.count == 3 && c[2] == "vfio_ap":
            return ["matrix": .symlink("../../../../devices/vfio_ap/matrix")]
        default: return nil
        }
    }

    static func devices(_ c: [Substring], _ host: APHost) -> Directory? {
        switch c.first {
        case nil: return ["ap": .directory, "vfio_ap": .directory]
        case "ap": return APBusView.deviceDirectory(Array(c.dropFirst()), host)
        case "vfio_ap":
            if c.count == 1 { return ["matrix": .directory, "uevent": uevent(.vfioRoot)] }
            guard c[1] == "matrix" else { return nil }
            return MatrixView.directory(Array(c.dropFirst(2)), host)
        default: return nil
        }
    }

    static func kernel(_ c: [Substring], _ host: APHost) -> Directory? {
        switch c.count {
        case 0: return ["iommu_groups": .directory]
        case 1 where c[0] == "iommu_groups":
            return host.vfio.mdevs.values.reduce(into: Directory()) { $0[String($1.iommuGroup)] = .directory }
        case 2, 3:
            guard c[0] == "iommu_groups", let n = Int(c[1]), String(n) == c[1],
                  let m = host.vfio.mdevs.values.first(where: { $0.iommuGroup == n }) else { return nil }
            if c.count == 2 { return ["devices": .directory] }
            guard c[2] == "devices" else { return nil }
            return [m.uuid.description: mdevLink(m.uuid, up: 4)]
        default: return nil
        }
    }
}

/// Runs an attribute closure, whose errors are always `APError`.
func typed<T>(_ body: () throws -> T) throws(APError) -> T {
    do { return try body() } catch let e as APError { throw e } catch {
        preconditionFailure("an attribute threw \(error), which is not an APError")
    }
}

/// `%d\n`, the commonest sysfs format.
func line(_ n: Int) -> String { "\(n)\n" }

/// A default domain as `%d\n`: -1 for none.
func line(_ d: APQI?) -> String { line(d?.value ?? -1) }
