import SystemPackage

/// A kernel object action, as `lib/kobject_uevent.c` names them (`kobject_actions`).
public enum UeventAction: String, Sendable, CaseIterable, Codable {
    case add, remove, change, move, online, offline, bind, unbind
}

/// One uevent as the kernel sends it (`kobject_uevent_env`): `ACTION`,
/// `DEVPATH` and `SUBSYSTEM`, then the other variables in order, each
/// `KEY=value` (a value may hold any byte but NUL, a newline included, as
/// the AP bus's `APMASK=` does). `SEQNUM` is the sender's: it numbers what
/// goes out on the netlink socket, so it is not part of the event.
public struct Uevent: Hashable, Sendable, Codable {
    public var action: UeventAction
    /// `/devices/ap/card05`
    public var devpath: String
    public var subsystem: String
    /// The variables after `SUBSYSTEM`, `KEY=value`, in the kernel's order.
    public var properties: [String]

    public init(action: UeventAction, devpath: String, subsystem: String, properties: [String]) {
        self.action = action
        self.devpath = devpath
        self.subsystem = subsystem
        self.properties = properties
    }

    /// `change /devices/ap (ap): BINDINGS=complete COMPLETECOUNT=1`, newlines in values shown as `\n`.
    public var summary: String {
        let vars = properties.map { $0.replacing("\n", with: "\\n") }.joined(separator: " ")
        return "\(action.rawValue) \(devpath) (\(subsystem))" + (vars.isEmpty ? "" : ": " + vars)
    }
}

/// A device with a `uevent` file: its devpath, subsystem and the variables
/// `dev_uevent` gives it (docs/udev-libvirt.md §2.2).
public enum KernelDevice: Hashable, Sendable {
    /// `/devices/ap`, the AP bus's root device: no variables of its own.
    case apRoot
    case card(APID)
    case queue(APQN)
    /// `/devices/vfio_ap`, vfio_ap's root device: no bus and no class, so
    /// the kernel's filter (`dev_uevent_filter`) drops its events.
    case vfioRoot
    /// `/devices/vfio_ap/matrix`, the matrix device on bus `matrix`, bound to `vfio_ap`.
    case matrix
    /// `/devices/vfio_ap/matrix/<uuid>`, on bus `mdev`, bound to the profile's mdev driver.
    case mdev(MdevUUID)

    /// `kobject_get_path`: `/devices/ap/card05/05.0004`.
    public var devpath: String {
        switch self {
        case .apRoot: return "/devices/ap"
        case .card(let id): return "/devices/ap/\(id.cardName)"
        case .queue(let q): return "/devices/ap/\(q.apid.cardName)/\(q)"
        case .vfioRoot: return "/devices/vfio_ap"
        case .matrix: return "/devices/vfio_ap/matrix"
        case .mdev(let uuid): return "/devices/vfio_ap/matrix/\(uuid)"
        }
    }

    /// The name `dev_name` gives, for the kernel's `dev_err` prefixes.
    var name: String {
        switch self {
        case .apRoot: return "ap"
        case .card(let id): return id.cardName
        case .queue(let q): return q.description
        case .vfioRoot: return "vfio_ap"
        case .matrix: return "matrix"
        case .mdev(let uuid): return uuid.description
        }
    }

    /// Whether the kernel sends this device's events at all (`dev_uevent_filter`:
    /// only devices on a bus or in a class).
    public var sendsUevents: Bool { self != .vfioRoot }
}

/// A device's uevent environment as its kernel computes it.
public struct UeventEnvironment: Hashable, Sendable {
    /// The bus (`SUBSYSTEM=`); empty for a device on none.
    public var subsystem: String
    /// `DEVTYPE=`, `DRIVER=` (when bound), then the bus's own keys.
    public var properties: [String]
    /// The bound driver's name, if any (`dev_driver_string`).
    public var driver: String?

    /// What the device's `uevent` file shows: each variable and a newline.
    public var fileText: String { properties.map { $0 + "\n" }.joined() }
}

extension APHost {
    /// The uevent environment of a device of the host, nil if it does not
    /// exist: for AP devices `DEVTYPE=ap_card`/`ap_queue`, `DRIVER=` when
    /// bound, then the profile's `ap_uevent` keys (`ProfileRules.apUeventKeys`);
    /// the matrix device `DRIVER=vfio_ap`; an mdev `DRIVER=` its driver.
    ///
    /// The corresponding kernel functions are `dev_uevent` and `ap_uevent`.
    public func ueventEnvironment(_ d: KernelDevice) -> UeventEnvironment? {
        ueventEnvironment(d, in: firmware)
    }

    /// As `ueventEnvironment(_:)`, with the card types of `fw`: a device
    /// the firmware just took away is announced with its type.
    func ueventEnvironment(_ d: KernelDevice, in fw: Firmware) -> UeventEnvironment? {
        switch d {
        case .apRoot: return UeventEnvironment(subsystem: "ap", properties: [], driver: nil)
        case .card(let id):
            guard let card = bus.cards[id], let type = fw.adapters[id]?.type else { return nil }
            return apEnvironment(isCard: true, type: type, driver: card.bound ? "cex4card" : nil)
        case .queue(let apqn):
            guard let q = bus.queues[apqn], let type = fw.adapters[apqn.apid]?.type else { return nil }
            return apEnvironment(isCard: false, type: type, driver: q.driver?.rawValue)
        case .vfioRoot: return UeventEnvironment(subsystem: "", properties: [], driver: nil)
        case .matrix: return UeventEnvironment(subsystem: "matrix", properties: ["DRIVER=vfio_ap"], driver: "vfio_ap")
        case .mdev(let uuid):
            guard vfio.mdevs[uuid] != nil else { return nil }
            return UeventEnvironment(subsystem: "mdev", properties: ["DRIVER=" + mdevDriver], driver: mdevDriver)
        }
    }

    /// The driver every mdev is bound to (`<uuid>/driver`), by profile.
    public var mdevDriver: String { rules.mdevDriver }

    /// The variables of an AP card or queue of `type` bound to `driver`.
    func apEnvironment(isCard: Bool, type: AdapterType, driver: String?) -> UeventEnvironment {
        let head = ["DEVTYPE=" + (isCard ? "ap_card" : "ap_queue")] + (driver.map { ["DRIVER=" + $0] } ?? [])
        return UeventEnvironment(subsystem: "ap", properties: head + rules.apUeventKeys(isCard: isCard, type: type), driver: driver)
    }

    /// A write to a device's `uevent` file: the kernel sends a synthetic
    /// event with `SYNTH_UUID` (`0` without arguments) and `SYNTH_ARG_KEY=value`
    /// before the device's own variables. A text that is not an action, or
    /// whose arguments are malformed, is EINVAL and logged as the kernel logs it.
    /// A device the kernel's filter drops (`/devices/vfio_ap`) takes the
    /// write and sends nothing (`kobject_uevent_env` returns 0).
    ///
    /// The corresponding kernel functions are `uevent_store` (drivers/base/core.c)
    /// and `kobject_synth_uevent`.
    public mutating func synthesizeUevent(_ d: KernelDevice, _ request: Result<SyntheticUevent, SyntheticUevent.Refusal>) throws(APError) {
        guard let env = ueventEnvironment(d) else { throw APError(.noSuchDevice, "\(d.devpath)/uevent: the device is gone") }
        switch request {
        case .success where !d.sendsUevents: return
        case .success(let s):
            let synth = ["SYNTH_UUID=" + (s.uuid ?? "0")] + s.arguments.map { "SYNTH_ARG_\($0.key)=\($0.value)" }
            events.append(.uevent(Uevent(action: s.action, devpath: d.devpath, subsystem: env.subsystem,
                                         properties: synth + env.properties)))
        case .failure(let why):
            events.append(.kernel("synth uevent: \(d.devpath): \(why.rawValue)"))
            events.append(.kernel("\(env.driver ?? env.subsystem) \(d.name): uevent: failed to send synthetic uevent: -22"))
            throw APError(.invalidArgument, "uevent: \(why.rawValue): write an action (\(UeventAction.allCases.map(\.rawValue).joined(separator: ", "))), optionally a UUID and KEY=value pairs of letters and digits")
        }
    }
}

/// What a write to a `uevent` file asks for.
public struct SyntheticUevent: Hashable, Sendable {
    public var action: UeventAction
    /// The UUID argument as written (36 characters), nil without arguments.
    public var uuid: String?
    public var arguments: [(key: String, value: String)]

    public static func == (l: Self, r: Self) -> Bool {
        l.action == r.action && l.uuid == r.uuid && l.arguments.map(\.key) == r.arguments.map(\.key)
            && l.arguments.map(\.value) == r.arguments.map(\.value)
    }
    public func hash(into h: inout Hasher) { h.combine(action); h.combine(uuid) }

    /// Why the kernel refuses a synthetic uevent, in the words it logs.
    public enum Refusal: String, Error, Sendable {
        case unknownAction = "unknown uevent action string"
        case badArguments = "incorrect uevent action arguments"
    }
}
