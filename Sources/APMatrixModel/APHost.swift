/// Which kernel the host behaves like. Every rule on which the profiles
/// differ is chosen in `ProfileRules.swift`, nowhere else.
public enum Profile: String, Sendable, CaseIterable, Codable {
    /// The v10 dynamic-configuration design (the seed; SPEC §3).
    case seed
    /// Linux 6.19 with QEMU 10.1, as merged, to the 7.0 sources
    /// (kernel-reference §4.2–4.5, §9; docs/upstream-ap-bus.md).
    case upstream
}

/// One emulated s390 host: firmware (LPAR), AP bus, vfio_ap, guests.
///
/// A value type with no I/O: every operation is a mutating method that either
/// throws an `APError` and changes nothing, or succeeds and appends `events`.
/// Copying the value gives a private copy to plan with.
///
/// The state is split along the kernel's objects, one nested value per
/// object, so that what each one holds is visible at a glance and each file
/// is one room:
/// - `firmware`: the LPAR and its QCI configuration, and the hardware
///   queues behind the APQNs (`Firmware.swift`, changes in `FirmwareChanges.swift`);
/// - `bus`: the AP bus, its masks, devices and driver bindings (`APBus.swift`,
///   operations in `APBusOperations.swift`);
/// - `vfio`: the vfio_ap driver, its mdevs and their shadows (`VfioAP.swift`,
///   `VfioAPMdevs.swift`, and `VfioAPDriver.swift`, the driver callbacks
///   through which the bus talks to it, as `ap_driver` does in the kernel);
/// - `guests`: the KVM guests, their CPU model, device and own AP bus
///   (`Guests.swift`, `GuestBus.swift`).
/// Operations that cross rooms (a mask change rebinds queues, which vfio_ap
/// plugs into guests) are `APHost` methods in the file of the room they start in.
public struct APHost: Sendable, Equatable {
    public let profile: Profile
    var rules: ProfileRules { ProfileRules(profile: profile, migration: storedVfio.migration) }
    /// The QEMU its guests run in (ProfileRules.qemuVersion).
    public var qemuVersion: QEMUVersion { rules.qemuVersion }

    // The rooms are reached for mutation only through their accessors,
    // which remember a room's own fields as they were before its first
    // change; their objects are in `TrackedMap`s. `takeChanges()` hands
    // over what changed (HostChanges.swift).
    var storedFirmware: Firmware
    var storedBus: APBus
    var storedVfio: VfioAP
    var roomsBefore = RoomsBefore()

    public internal(set) var firmware: Firmware {
        get { storedFirmware }
        _modify {
            if roomsBefore.firmware == nil { roomsBefore.firmware = storedFirmware.withoutTables }
            yield &storedFirmware
        }
    }
    public internal(set) var bus: APBus {
        get { storedBus }
        _modify {
            if roomsBefore.bus == nil { roomsBefore.bus = storedBus.withoutTables }
            yield &storedBus
        }
    }
    public internal(set) var vfio: VfioAP {
        get { storedVfio }
        _modify {
            if roomsBefore.vfio == nil { roomsBefore.vfio = storedVfio.withoutTables }
            yield &storedVfio
        }
    }
    public internal(set) var guests = TrackedMap<String, Guest>()

    /// Events of the operations since the last `takeEvents()`.
    public internal(set) var events: [Event] = []
    /// While the host boots, no uevent is built: nobody listens before boot
    /// ends (udev's coldplug reads the `uevent` files instead), and 65,536
    /// queues would build 131,072 events only to drop them.
    var booting = false

    /// A host booted with `profile`; `previews` apply to their own profile
    /// only (the command line refuses the others).
    public init(_ d: HostDescription, profile: Profile = .seed, previews: Set<Preview> = []) throws(HostDescription.Invalid) {
        try d.validate()
        self.profile = profile
        storedFirmware = Firmware(d)
        storedBus = APBus(apmask: d.apmask, aqmask: d.aqmask)
        storedVfio = VfioAP(maxMdevs: d.maxMdevs,
                            migration: previews.contains { $0 == .vfioAPMigration && $0.profile == profile })
        booting = true
        scanBus()
        endOfScan(at: .boot)
        booting = false
        bus.apDomain = (firmware.usageDomains & bus.aqmask).first
        events.removeAll()
        _ = takeChanges()
    }

    /// The previews this host was booted with.
    public var previews: Set<Preview> { vfio.migration ? [.vfioAPMigration] : [] }

    /// Hands the events over to the caller and forgets them.
    public mutating func takeEvents() -> [Event] {
        defer { events.removeAll() }
        return events
    }

    /// Who may see the queue's contents now (SPEC §5).
    public func currentOwner(of apqn: APQN) -> QueueOwner {
        if let m = vfio.owner(of: apqn), let g = m.guest, m.shadow.contains(apqn) { return .guest(g) }
        if bus.queues[apqn]?.driver == .cex4queue { return .host }
        return .none
    }
}

/// Who may see a queue's contents right now.
public enum QueueOwner: Hashable, Sendable, CustomStringConvertible {
    case none
    /// Bound to the default driver: the host's zcrypt uses it.
    case host
    /// In the CRYCB of this guest.
    case guest(String)

    public var description: String {
        switch self {
        case .none: return "none"
        case .host: return "host"
        case .guest(let g): return "guest \(g)"
        }
    }
}
