import APMatrixRuntime
import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

// Shared helpers of the sysfs tests: they drive the host through sysfs paths
// and texts (SysfsTree.read/write), exactly as a client of the mount would.

let matrixDir = "/devices/vfio_ap/matrix"
let typeDir = "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough"

/// A host from a host file (SPEC §1).
func host(_ json: String, profile: Profile = .seed) throws -> APHost {
    try APHost(HostFile.parse(b(json)), profile: profile)
}

/// The target of a symlink node, or "" for anything else.
func linkTarget(_ n: Node) -> String {
    if case .symlink(let t) = n { return t }
    return ""
}

extension APHost {
    /// `cat PATH` at `now`: the text, or the errno symbol.
    func cat(_ path: String, at now: Uptime = .boot) -> String {
        do { return String(decoding: try SysfsTree.read(path, in: self, at: now), as: UTF8.self) } catch {
            return error.errno.symbol
        }
    }

    /// One `write()` of `text` to PATH at `now`: nil, or the errno symbol.
    @discardableResult
    mutating func echo(_ text: String, _ path: String, at now: Uptime = .boot) -> String? {
        do {
            try SysfsTree.write(path, b(text), in: &self, at: now)
            return nil
        } catch {
            return error.errno.symbol
        }
    }

    /// The host without its event list: what a failed write must leave unchanged.
    var settled: APHost {
        var h = self
        _ = h.takeEvents()
        return h
    }

    /// The uevents since the last `takeEvents()`, as `dmesg` shows them.
    var ueventLines: [String] { events.filter { $0.kind == "uevent" }.map(\.line) }

    /// The uevents of the AP bus itself (`/devices/ap`), without its devices' own.
    var busUeventLines: [String] { uevents.filter { $0.devpath == "/devices/ap" }.map { "uevent " + $0.summary } }

    /// The uevents since the last `takeEvents()`.
    var uevents: [Uevent] { events.compactMap { if case .uevent(let u) = $0 { return u } else { return nil } } }

    /// The directory listing at PATH, without the bind/unbind attributes.
    func ls(_ path: String) -> [String] {
        (SysfsTree.children(path, in: self) ?? ["ENOENT"]).filter { $0 != "bind" && $0 != "unbind" }
    }

    /// Starts a guest using mdev `uuid` (guests are not part of sysfs).
    mutating func start(_ name: String, mdev uuid: String) throws {
        try startGuest(name, cpu: CPUModel(parsing: "host", facilities: firmware.facilities),
                       device: device(uuid), at: .boot)
    }

    /// The kernel's log lines since the last `takeEvents()`.
    var kernelLines: [String] { events.filter(\.isKernelText).map(\.line) }
}

/// The vfio-ap device of a guest that uses mdev `uuid`.
func device(_ uuid: String) -> VfioAPDevice {
    VfioAPDevice(id: "hostdev0", mdev: MdevUUID(parsing: uuid)!, sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuid)")
}
