/// The LPAR as the firmware (Support Element, HMC) defines it and QCI
/// reports it: its adapters, usage and control domains, facilities and id
/// maxima; and the hardware queues behind the APQNs, which outlive every
/// device and driver (a queue removed by firmware still has to be zeroized
/// when it leaves a guest).
public struct Firmware: Hashable, Sendable {
    /// AP extended addressing: ids above 63/15 exist.
    public internal(set) var apxa: Bool
    /// QCI `Na`: the highest APID.
    public internal(set) var maxAdapter: APID
    /// QCI `Nd`: the highest APQI.
    public internal(set) var maxDomain: APQI
    public internal(set) var facilities: Facilities
    public internal(set) var adapters: [APID: Adapter] = [:]
    /// H.aqm: the LPAR's usage domains.
    public internal(set) var usageDomains: Bitmap256<APQI>
    /// H.adm: the LPAR's control domains.
    public internal(set) var controlDomains: Bitmap256<APQI>
    /// The hardware queues vfio_ap has reset, a guest has put state into or an SE guest has bound.
    public internal(set) var records = TrackedMap<APQN, QueueRecord>()

    init(_ d: HostDescription) {
        apxa = d.apxa
        maxAdapter = d.maxAdapter
        maxDomain = d.maxDomain
        facilities = d.facilities
        usageDomains = d.usageDomains
        controlDomains = d.controlDomains
        for a in d.adapters { adapters[a.id] = Adapter(type: a.type, configured: a.configured, domains: a.domains, tapqGR2: a.tapqGR2) }
    }

    /// H: the host AP configuration (QCI APM/AQM/ADM). Configured adapters
    /// count, whatever their type.
    public var hostConfiguration: Matrix {
        var apm = Bitmap256<APID>()
        for (id, a) in adapters where a.configured { apm.insert(id) }
        return Matrix(apm: apm, aqm: usageDomains, adm: controlDomains)
    }

    /// The usage domains adapter `a` has queues for, if it is configured and
    /// of a type that gets devices.
    public func queueDomains(of a: APID) -> Bitmap256<APQI> {
        guard let ad = adapters[a], ad.configured, ad.type.hasDevices else { return Bitmap256() }
        return usageDomains & (ad.domains ?? .all)
    }

    /// The QCI facility flags `features` names, in the kernel's order: every
    /// LPAR of a z15 or later has APSC, QACT and RC8A; APXA with extended
    /// addressing; APSB only in a Secure Execution guest, never in an LPAR.
    public var qciFeatures: [String] { ["APSC"] + (apxa ? ["APXA"] : []) + ["QACT", "RC8A"] }

    // MARK: the maxima each consumer derives from QCI

    /// `ap_max_adapter_id`: Na with apxa (when non-zero), else the legacy maximum.
    public var busMaxAdapter: APID { apxa && maxAdapter != 0 ? maxAdapter : .legacyMax }
    /// `ap_max_domain_id`: Nd with apxa (when non-zero), else the legacy maximum.
    public var busMaxDomain: APQI { apxa && maxDomain != 0 ? maxDomain : .legacyMax }
    /// vfio_ap's `apm_max`: Na with apxa, else the legacy maximum.
    public var mdevMaxAPID: APID { apxa ? maxAdapter : .legacyMax }
    /// vfio_ap's `aqm_max` and `adm_max`: Nd with apxa, else the legacy maximum.
    public var mdevMaxAPQI: APQI { apxa ? maxDomain : .legacyMax }
}

/// An adapter of the LPAR and its firmware state.
public struct Adapter: Hashable, Sendable {
    public var type: AdapterType
    /// Card `config`: false = deconfigured, out of the host AP configuration.
    public var configured: Bool
    /// The usage domains it has queues for; nil = all of the LPAR's.
    public var domains: Bitmap256<APQI>?
    /// The TAPQ GR2 its queues answer, when the host file overrides the
    /// type's (`AdapterType.tapqInfo`), so that incompatible hosts can be built.
    public var tapqGR2: UInt64?
}

/// The hardware queue behind an APQN.
public struct QueueRecord: Hashable, Sendable {
    /// How many times vfio_ap reset (zeroized) the queue.
    public var resets = 0
    /// The guest whose state the queue holds: set while a guest has it, cleared by a reset.
    public var holdsStateOf: String?
    /// The held state: what that guest put into the queue (`putHeldState`), cleared by a reset.
    public var heldState: String?
    /// The Secure Execution guest that bound the queue, and its association; cleared by a reset.
    public var seBinding: SEBinding?
}

/// A crypto adapter's type: generation (CEX3…CEX8) and mode (A, C, P).
public struct AdapterType: Hashable, Sendable, CustomStringConvertible {
    public enum Mode: String, Sendable, CaseIterable {
        /// Accelerator.
        case accelerator = "A"
        /// CCA coprocessor.
        case cca = "C"
        /// EP11 coprocessor.
        case ep11 = "P"

        /// `MODE=` of the AP bus's uevents (`ap_uevent`).
        public var ueventMode: String {
            switch self {
            case .accelerator: return "accel"
            case .cca: return "cca"
            case .ep11: return "ep11"
            }
        }
    }

    public let generation: Int
    public let mode: Mode

    public init?(_ name: String) {
        let u = name.uppercased()
        guard u.hasPrefix("CEX"), u.count == 5, let g = Int(String(u.dropFirst(3).prefix(1))),
              (3...8).contains(g), let m = Mode(rawValue: String(u.suffix(1))) else { return nil }
        // CEX3 existed as accelerator and CCA coprocessor only.
        if g == 3 && m == .ep11 { return nil }
        generation = g
        mode = m
    }

    /// `CEX8C`.
    public var description: String { "CEX\(generation)\(mode.rawValue)" }

    /// The AP device type (`hwtype`): CEX3A 8, CEX3C 9, CEX4 10 … CEX8 14.
    public var hwtype: Int { generation == 3 ? (mode == .accelerator ? 8 : 9) : generation + 6 }

    /// Types 10…14 get card and queue devices and can be bound to vfio_ap;
    /// older ones exist in the LPAR only (`ap_get_compatible_type`).
    public var hasDevices: Bool { hwtype >= 10 }

    /// The `AP_FUNC_*` bits (big-endian numbering in a 32-bit word) that make
    /// lszcrypt show the card's mode: MEX4K 1, CRT4K 2, COPRO 3, ACCEL 4, EP11 5, APXA 6.
    public func apFunctions(apxa: Bool) -> UInt32 {
        func bit(_ n: Int) -> UInt32 { 0x8000_0000 >> UInt32(n) }
        var f: UInt32
        switch mode {
        case .cca: f = bit(1) | bit(2) | bit(3)
        case .accelerator: f = bit(1) | bit(2) | bit(4)
        case .ep11: f = bit(5)
        }
        if apxa { f |= bit(6) }
        return f
    }

    public static let supportedNames =
        ["CEX3A", "CEX3C"] + (4...8).flatMap { g in ["A", "C", "P"].map { "CEX\(g)\($0)" } }
}

/// `CEX8C` in JSON.
extension AdapterType: TextCodable {
    public init?(text: String) { self.init(text) }
    public static var textForm: String { "an adapter type (\(supportedNames.joined(separator: ", ")))" }
}
