/// The firmware facilities of the host that AP pass-through depends on.
public struct Facilities: Hashable, Sendable {
    /// PQAP(QCI), STFLE bit 12: the AP configuration can be queried.
    public var qci: Bool
    /// AP facilities test, STFLE bit 15.
    public var apft: Bool
    /// AP queue interruption control, STFLE bit 65.
    public var apqi: Bool
    /// Adapter-interruption virtualization: needed to offer apqi to guests.
    public var aiv: Bool
    /// Protected virtualization: the Ultravisor (STFLE 158, the `unpack`
    /// facility 161) and a host kernel booted with `prot_virt=1`, so KVM
    /// can run Secure Execution guests (`KVM_CAP_S390_PROTECTED`).
    public var pv: Bool
    /// Ultravisor feature indication bit 4: AP instructions for Secure
    /// Execution guests (QEMU's CPU feature `appv`). The firmware then
    /// reports the APSB facility to such a guest, so it can bind queues.
    public var appv: Bool
    /// Ultravisor feature indication bit 5: AP interruptions for Secure
    /// Execution guests (QEMU's CPU feature `appvi`).
    public var appvi: Bool

    public init(qci: Bool = true, apft: Bool = true, apqi: Bool = true, aiv: Bool = true,
                pv: Bool = true, appv: Bool = true, appvi: Bool = true) {
        self.qci = qci
        self.apft = apft
        self.apqi = apqi
        self.aiv = aiv
        self.pv = pv
        self.appv = appv
        self.appvi = appvi
    }
}

/// Facilities in host and state files; a facility a file does not name is
/// on (files written before the Secure Execution facilities existed).
extension Facilities: Codable {
    enum CodingKeys: String, CodingKey { case qci, apft, apqi, aiv, pv, appv, appvi }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func on(_ k: CodingKeys) throws -> Bool { try c.decodeIfPresent(Bool.self, forKey: k) ?? true }
        self.init(qci: try on(.qci), apft: try on(.apft), apqi: try on(.apqi), aiv: try on(.aiv),
                  pv: try on(.pv), appv: try on(.appv), appvi: try on(.appvi))
    }
}

/// One crypto adapter of the LPAR.
public struct AdapterDescription: Hashable, Sendable {
    public var id: APID
    public var type: AdapterType
    /// false: in the LPAR but deconfigured (card `config` 0, no queues).
    public var configured: Bool
    /// The usage domains this adapter has queues for, when it is restricted;
    /// nil means every usage domain of the LPAR. A fixed property of the adapter.
    public var domains: Bitmap256<APQI>?
    /// The TAPQ GR2 its queues answer instead of the type's (host file `tapqGR2`).
    public var tapqGR2: UInt64?

    public init(id: APID, type: AdapterType, configured: Bool = true, domains: Bitmap256<APQI>? = nil, tapqGR2: UInt64? = nil) {
        self.id = id
        self.type = type
        self.configured = configured
        self.domains = domains
        self.tapqGR2 = tapqGR2
    }
}

/// A host (LPAR) as the host file describes it (SPEC §1).
public struct HostDescription: Hashable, Sendable {
    /// AP extended addressing: ids up to `maxAdapter`/`maxDomain`; else up to the legacy maxima.
    public var apxa: Bool
    /// QCI `Na`: the highest APID.
    public var maxAdapter: APID
    /// QCI `Nd`: the highest APQI.
    public var maxDomain: APQI
    public var facilities: Facilities
    /// The LPAR's usage domains (QCI AQM).
    public var usageDomains: Bitmap256<APQI>
    /// The LPAR's control domains (QCI ADM).
    public var controlDomains: Bitmap256<APQI>
    /// `ap.apmask=` / `ap.aqmask=` boot values.
    public var apmask: Bitmap256<APID>
    public var aqmask: Bitmap256<APQI>
    /// How many mdevs may exist at once (`available_instances` at boot).
    public var maxMdevs: Int
    public var adapters: [AdapterDescription]

    public init(apxa: Bool = true, maxAdapter: APID? = nil, maxDomain: APQI? = nil,
                facilities: Facilities = Facilities(), usageDomains: Bitmap256<APQI>,
                controlDomains: Bitmap256<APQI>? = nil, apmask: Bitmap256<APID> = .all, aqmask: Bitmap256<APQI> = .all,
                maxMdevs: Int = 65536, adapters: [AdapterDescription]) {
        self.apxa = apxa
        self.maxAdapter = maxAdapter ?? Self.idLimit(apxa: apxa)
        self.maxDomain = maxDomain ?? Self.idLimit(apxa: apxa)
        self.facilities = facilities
        self.usageDomains = usageDomains
        self.controlDomains = controlDomains ?? usageDomains
        self.apmask = apmask
        self.aqmask = aqmask
        self.maxMdevs = maxMdevs
        self.adapters = adapters
    }

    /// A field of the host file and why it is refused.
    public struct Invalid: Error, Equatable, Sendable, CustomStringConvertible {
        public let field: String
        public let reason: String
        public init(_ field: String, _ reason: String) {
            self.field = field
            self.reason = reason
        }
        public var description: String { "\(field): \(reason)" }
    }

    /// The highest id of a kind the LPAR can have: 255 with apxa, else the legacy maximum.
    public static func idLimit<ID: APIdentifier>(apxa: Bool) -> ID { apxa ? .extendedMax : .legacyMax }

    /// Checks the rules of SPEC §1 that do not depend on the file's syntax.
    public func validate() throws(Invalid) {
        try Self.checkMaximum(maxAdapter, "maxAdapter", apxa: apxa)
        try Self.checkMaximum(maxDomain, "maxDomain", apxa: apxa)
        guard facilities.qci else { throw Invalid("facilities.qci", "false is not supported in this version") }
        guard (1...65536).contains(maxMdevs) else { throw Invalid("maxMdevs", "\(maxMdevs) is outside 1-65536") }
        if let top = usageDomains.subtracting(.through(maxDomain)).first {
            throw Invalid("domains", "domain \(top.value) is above maxDomain \(maxDomain.value)")
        }
        if let top = controlDomains.subtracting(.through(maxDomain)).first {
            throw Invalid("controlDomains", "domain \(top.value) is above maxDomain \(maxDomain.value)")
        }
        var seen = Bitmap256<APID>()
        for (i, a) in adapters.enumerated() {
            let field = "adapters[\(i)]"
            guard a.id <= maxAdapter else {
                throw Invalid("\(field).id", "adapter \(a.id.value) is outside 0-\(maxAdapter.value) (maxAdapter)")
            }
            guard !seen.contains(a.id) else { throw Invalid("\(field).id", "adapter \(a.id.value) is listed twice") }
            seen.insert(a.id)
            if let d = a.domains, let bad = d.subtracting(usageDomains).first {
                throw Invalid("\(field).domains", "domain \(bad.value) is not a usage domain of the LPAR")
            }
        }
    }

    /// A QCI maximum must be an id the LPAR can have; `value` may come from
    /// a file, where it is any number.
    public static func checkMaximum<ID: APIdentifier>(_ value: ID, _ field: String, apxa: Bool) throws(Invalid) {
        try checkMaximum(value.value, ID.self, field, apxa: apxa)
    }

    public static func checkMaximum<ID: APIdentifier>(_ value: Int, _ kind: ID.Type, _ field: String, apxa: Bool) throws(Invalid) {
        let limit: ID = idLimit(apxa: apxa)
        guard (0...limit.value).contains(value) else {
            throw Invalid(field, "\(value) is outside 0-\(limit.value)\(apxa ? "" : " (no apxa)")")
        }
    }

    /// The embedded default: a realistic LPAR with eight adapters of mixed
    /// types, usage and control domains 0-84, everything reserved for the host.
    public static let embeddedDefault = HostDescription(
        usageDomains: .through(84),
        adapters: ([
            ("CEX8C", 0), ("CEX8C", 1), ("CEX8P", 2), ("CEX8P", 3),
            ("CEX8A", 4), ("CEX8A", 5), ("CEX7C", 6), ("CEX7C", 7),
        ] as [(String, APID)]).map { AdapterDescription(id: $0.1, type: AdapterType($0.0)!) })

    /// The host of the seed's example: adapters 4-7, usage domains 0-15,
    /// 0x47, 0xab, 0xff, control domains 0-255.
    public static let seedExample = HostDescription(
        usageDomains: Bitmap256(0...15) | Bitmap256([0x47, 0xab, 0xff]),
        controlDomains: .all,
        adapters: ([
            ("CEX8C", 4), ("CEX8C", 5), ("CEX8P", 6), ("CEX7C", 7),
        ] as [(String, APID)]).map { AdapterDescription(id: $0.1, type: AdapterType($0.0)!) })
}
