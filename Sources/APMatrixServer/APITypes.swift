import APMatrixRuntime
import APMatrixModel
import Hummingbird

// The JSON documents of the control API's answers (openapi.yaml describes
// them). Ids are numbers, masks 0x-hex strings, APQNs `05.0004`, UUIDs canonical.

public struct MatrixDTO: Codable, Sendable, Equatable {
    public var apm: [APID]
    public var aqm: [APQI]
    public var adm: [APQI]

    public init(_ m: Matrix) {
        apm = Array(m.apm)
        aqm = Array(m.aqm)
        adm = Array(m.adm)
    }
}

public struct DeviceDTO: Codable, Sendable, Equatable {
    public var id: String
    public var mdev: MdevUUID
    public var sysfsdev: String
    /// QEMU's `enable-migration` when given: `on`, `off` or `auto`.
    public var enableMigration: String? = nil
    /// QEMU's `migration-events` when given.
    public var migrationEvents: Bool? = nil
}

/// A guest's migration as its QEMU reports it (`query-migrate`).
public struct MigrationDTO: Codable, Sendable, Equatable {
    /// QEMU's `MigrationStatus`: `none`, `setup`, `active`, `pre-switchover`, `device`, `completed`, `failed`, `cancelling`, `cancelled`.
    public var status: String
    /// `error-desc`, when it failed.
    public var errorDesc: String?
    /// `tcp:HOST:PORT`: the destination, or where an incoming guest listens.
    public var uri: String?
    /// A destination started with `-incoming`.
    public var incoming: Bool
    /// The device state's bytes.
    public var transferred: Int
    /// The capabilities set with `migrate-set-capabilities`.
    public var capabilities: [String]
    /// Why QEMU cannot migrate the guest (`blocked-reasons`).
    public var blockedReasons: [String]
}

public struct CardDTO: Codable, Sendable, Equatable {
    public var id: APID
    public var type: String
    public var hwtype: Int
}

/// What the guest itself sees of the AP bus (SPEC §4).
public struct GuestViewDTO: Codable, Sendable, Equatable {
    public var cards: [CardDTO]
    public var usageDomains: [APQI]
    public var controlDomains: [APQI]
    public var queues: [APQN]
}

public struct GuestDTO: ResponseCodable, Sendable, Equatable {
    public var name: String
    public var cpu: String
    public var device: DeviceDTO?
    public var crycb: MatrixDTO
    public var view: GuestViewDTO
    public var qmp: String?
    /// Where the guest's own `/sys` is mounted, if it is.
    public var sysfsMount: String?
    /// The guest kernel's AP bus as it has scanned it; absent with `ap=off`.
    public var bus: GuestBusDTO?
    /// APQN → the held state: what the guest put into that queue (absent when none).
    public var heldState: [String: String]?
    /// True for a Secure Execution guest (absent otherwise).
    public var secure: Bool? = nil
    /// In a Secure Execution guest with AP pass-through (APSB): the SE state
    /// of each queue it sees, as its TAPQ gives it now.
    public var seQueues: [SEQueueDTO]? = nil
    /// The vfio-ap device's VFIO IRQs QEMU asks for, and whether the kernel offers each (absent without a device).
    public var vfioIRQs: [VfioIRQDTO]? = nil
    /// QEMU's run state (`query-status`): `running`, `inmigrate`, `finish-migrate`, `postmigrate`.
    public var runState: String = "running"
    /// The guest's migration (`query-migrate`).
    public var migration: MigrationDTO? = nil
}

/// A queue of a Secure Execution guest: its bind state (lszcrypt's SESTAT) and association.
public struct SEQueueDTO: Codable, Sendable, Equatable {
    public var apqn: APQN
    /// `usable`, `bound`, `unbound` or `illicit`.
    public var state: String
    /// The BS bits of the queue's `ap_functions`, 0-3.
    public var bs: Int
    /// The association index, while it is pending or once it is done (EP11 only).
    public var association: Int?
    /// True while the firmware has not completed the association.
    public var associationPending: Bool?

    public init(apqn: APQN, _ s: SEState) {
        self.apqn = apqn
        state = s.bind.description
        bs = Int(s.bind.rawValue)
        association = s.association
        associationPending = s.association.map { _ in s.bind == .bound }
    }

}

/// One VFIO IRQ of a guest's vfio-ap device.
public struct VfioIRQDTO: Codable, Sendable, Equatable {
    /// 0 `VFIO_AP_REQ_IRQ_INDEX`, 1 `VFIO_AP_CFG_CHG_IRQ_INDEX`.
    public var index: Int
    public var name: String
    /// QEMU registered its eventfd (the kernel has the IRQ).
    public var wired: Bool
}

/// A guest's own AP bus: what its last scan found (not the CRYCB itself).
public struct GuestBusDTO: Codable, Sendable, Equatable {
    /// `scans`: how many times the bus has scanned.
    public var scans: Int
    public var configTime: Int
    /// `ap_domain`, -1 when none.
    public var domain: Int
    /// The QCI masks of the last scan; absent with `apqci=off`.
    public var qci: MatrixDTO?
    public var cards: [CardDTO]
    public var queues: [APQN]

    /// The guest's bus as it is at `now` (its scan count follows from the time).
    public init(_ g: Guest, at now: Uptime) {
        let b = g.bus
        scans = g.busScans(at: now)
        configTime = b.timers.configTime
        domain = b.domain?.value ?? -1
        qci = b.qci.map(MatrixDTO.init)
        cards = b.cards.keys.sorted().map { CardDTO(id: $0, type: b.cards[$0]!.description, hwtype: b.cards[$0]!.hwtype) }
        queues = b.queues
    }
}

public struct MdevDTO: ResponseCodable, Sendable, Equatable {
    public var uuid: MdevUUID
    public var matrix: MatrixDTO
    /// The shadow CRYCB; absent when no guest uses the mdev (guest_matrix is ENODEV then).
    public var guestMatrix: MatrixDTO?
    public var guest: String?
    public var iommuGroup: Int
}

public struct AdapterDTO: Codable, Sendable, Equatable {
    public var id: APID
    public var type: String
    public var hwtype: Int
    public var configured: Bool
    /// The adapter's own domain restriction, if any.
    public var domains: [APQI]?
}

/// One hardware queue: its device (if any) and its hand-over record (SPEC §5).
public struct QueueDTO: ResponseCodable, Sendable, Equatable {
    public var apqn: APQN
    /// `cex4queue`, `vfio_ap`, `none` (unbound), or absent when no queue device exists.
    public var driver: String?
    public var reserved: Bool
    /// `host`, `guest NAME` or `none`.
    public var owner: String
    public var assignedTo: MdevUUID?
    public var resets: Int
    public var holdsStateOf: String?
}

public struct HostDTO: ResponseCodable, Sendable, Equatable {
    public var profile: String
    /// The previews of posted series the host runs (`serve --preview`).
    public var previews: [String] = []
    public var apxa: Bool
    public var maxAdapter: APID
    public var maxDomain: APQI
    public var facilities: Facilities
    public var adapters: [AdapterDTO]
    public var usageDomains: [APQI]
    public var controlDomains: [APQI]
    public var apmask: String
    public var aqmask: String
    public var availableInstances: Int
    public var mdevs: [MdevDTO]
    public var guests: [GuestDTO]
    /// Where the host's tree (its `/sys`) is mounted.
    public var sysfsMount: String?
    /// The host's own `/etc/mdevctl.d`, `/etc/udev/rules.d` and `/run/lock`
    /// live under this directory (`apmatrix exec` binds them).
    public var privateRoot: String?
}

public struct EventDTO: ResponseCodable, Sendable, Equatable {
    public var sequence: Int
    public var seconds: Double
    /// `kernel`, `note`, `crycb`, `reset`, `device`, `guest`, `bus` (a guest's AP bus scan changed its devices),
    /// `se` (a queue's Secure Execution state in a guest changed), `uevent`.
    public var kind: String
    public var line: String
    public var dmesg: String
    public var guest: String?
    public var before: MatrixDTO?
    public var after: MatrixDTO?
    /// A uevent's `ACTION`, `DEVPATH`, `SUBSYSTEM` and its other variables (`KEY=value`, in order).
    public var uevent: UeventDTO?
}

/// A uevent as the kernel sends it, without `SEQNUM`.
public struct UeventDTO: Codable, Sendable, Equatable {
    public var action: String
    public var devpath: String
    public var subsystem: String
    public var properties: [String]
}

public struct ErrorDTO: Codable, Sendable, Equatable {
    public struct Body: Codable, Sendable, Equatable {
        public var errno: String
        public var code: Int32
        public var message: String
    }
    public var error: Body
}

public struct SysfsReadResponse: ResponseCodable, Sendable, Equatable {
    public var path: String
    public var value: String
}

/// An empty JSON object, the answer of operations that return nothing else.
public struct Empty: ResponseCodable, Sendable {
    public init() {}
}

/// `GET /check`: the invariant checker's verdict on the host as it is now.
public struct CheckDTO: ResponseCodable, Sendable, Equatable {
    /// `rule: detail` per broken invariant; empty when the host is sound.
    public var violations: [String]
    public var mdevs: Int
    public var guests: Int
    public var queues: Int
    /// The state file, when the daemon has one.
    public var stateFile: String?
    /// With a state file: SQLite's `PRAGMA integrity_check`, `["ok"]` when sound.
    public var stateIntegrity: [String]?
}
