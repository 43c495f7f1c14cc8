/// The firmware facilities of the host that AP pass-through depends on.
public struct Facilities: Hashable, Sendable, Codable {
    /// PQAP(QCI), STFLE bit 12: the AP configuration can be queried.
    public var qci: Bool
    /// AP facilities test, STFLE bit 15.
    public var apft: Bool
    /// AP queue interruption control, STFLE bit 65.
    public var apqi: Bool
    /// Adapter-interruption virtualization: needed to offer apqi to guests.
    public var aiv: Bool

    public init(qci: Bool = true, apft: Bool = true, apqi: Bool = true, aiv: Bool = true) {
        self.qci = qci
        self.apft = apft
        self.apqi = apqi
        self.aiv = aiv
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
    public var domains: Bitmap256?

    public init(id: APID, type: AdapterType, configured: Bool = true, domains: Bitmap256? = nil) {
        self.id = id
        self.type = type
        self.configured = configured
        self.domains = domains
    }
}

/// A host (LPAR) as the host file describes it (SPEC §1).
public struct HostDescription: Hashable, Sendable {
    /// AP extended addressing: ids up to `maxAdapter`/`maxDomain`; else 63/15.
    public var apxa: Bool
    /// QCI `Na`: the highest APID.
    public var maxAdapter: Int
    /// QCI `Nd`: the highest APQI.
    public var maxDomain: Int
    public var facilities: Facilities
    /// The LPAR's usage domains (QCI AQM).
    public var usageDomains: Bitmap256
    /// The LPAR's control domains (QCI ADM).
    public var controlDomains: Bitmap256
    /// `ap.apmask=` / `ap.aqmask=` boot values.
    public var apmask: Bitmap256
    public var aqmask: Bitmap256
    /// How many mdevs may exist at once (`available_instances` at boot).
    public var maxMdevs: Int
    public var adapters: [AdapterDescription]

    public init(apxa: Bool = true, maxAdapter: Int? = nil, maxDomain: Int? = nil,
                facilities: Facilities = Facilities(), usageDomains: Bitmap256,
                controlDomains: Bitmap256? = nil, apmask: Bitmap256 = .all, aqmask: Bitmap256 = .all,
                maxMdevs: Int = 65536, adapters: [AdapterDescription]) {
        self.apxa = apxa
        self.maxAdapter = maxAdapter ?? (apxa ? 255 : 63)
        self.maxDomain = maxDomain ?? (apxa ? 255 : 15)
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

    /// Checks the rules of SPEC §1 that do not depend on the file's syntax.
    public func validate() throws(Invalid) {
        let apidLimit = apxa ? 255 : 63, apqiLimit = apxa ? 255 : 15
        guard (0...apidLimit).contains(maxAdapter) else {
            throw Invalid("maxAdapter", "\(maxAdapter) is outside 0-\(apidLimit)\(apxa ? "" : " (no apxa)")")
        }
        guard (0...apqiLimit).contains(maxDomain) else {
            throw Invalid("maxDomain", "\(maxDomain) is outside 0-\(apqiLimit)\(apxa ? "" : " (no apxa)")")
        }
        guard facilities.qci else { throw Invalid("facilities.qci", "false is not supported in this version") }
        guard (1...65536).contains(maxMdevs) else { throw Invalid("maxMdevs", "\(maxMdevs) is outside 1-65536") }
        if let top = usageDomains.subtracting(.through(maxDomain)).first {
            throw Invalid("domains", "domain \(top) is above maxDomain \(maxDomain)")
        }
        if let top = controlDomains.subtracting(.through(maxDomain)).first {
            throw Invalid("controlDomains", "domain \(top) is above maxDomain \(maxDomain)")
        }
        var seen = Bitmap256()
        for (i, a) in adapters.enumerated() {
            let field = "adapters[\(i)]"
            guard (0...maxAdapter).contains(a.id) else {
                throw Invalid("\(field).id", "adapter \(a.id) is outside 0-\(maxAdapter) (maxAdapter)")
            }
            guard !seen.contains(a.id) else { throw Invalid("\(field).id", "adapter \(a.id) is listed twice") }
            seen.insert(a.id)
            if let d = a.domains, let bad = d.subtracting(usageDomains).first {
                throw Invalid("\(field).domains", "domain \(bad) is not a usage domain of the LPAR")
            }
        }
    }

    /// The embedded default: a realistic LPAR with eight adapters of mixed
    /// types, usage and control domains 0-84, everything reserved for the host.
    public static let embeddedDefault = HostDescription(
        usageDomains: .through(84),
        adapters: [
            ("CEX8C", 0), ("CEX8C", 1), ("CEX8P", 2), ("CEX8P", 3),
            ("CEX8A", 4), ("CEX8A", 5), ("CEX7C", 6), ("CEX7C", 7),
        ].map { AdapterDescription(id: $0.1, type: AdapterType($0.0)!) })

    /// The host of the seed's example: adapters 4-7, usage domains 0-15,
    /// 0x47, 0xab, 0xff, control domains 0-255.
    public static let seedExample = HostDescription(
        usageDomains: Bitmap256(Array(0...15) + [0x47, 0xab, 0xff]),
        controlDomains: .all,
        adapters: [
            ("CEX8C", 4), ("CEX8C", 5), ("CEX8P", 6), ("CEX7C", 7),
        ].map { AdapterDescription(id: $0.1, type: AdapterType($0.0)!) })
}
