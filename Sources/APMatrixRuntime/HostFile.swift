import APMatrixModel
import FoundationEssentials

/// Reads a host file (SPEC §1) into a `HostDescription`, and writes one
/// (`render`). Every refusal names the field and the reason. `notes`, a list
/// of lines for the reader (what `apmatrix capture` could not see), is
/// checked for its shape and otherwise ignored.
public enum HostFile {
    static let topFields: Set<String> = ["apxa", "maxAdapter", "maxDomain", "facilities", "domains",
                                         "controlDomains", "apmask", "aqmask", "maxMdevs", "adapters", "notes"]
    static let adapterFields: Set<String> = ["id", "type", "configured", "domains", "tapqGR2"]
    /// The facilities a host file may name, each on unless the file says false.
    static var facilityFlags: [(name: String, flag: WritableKeyPath<Facilities, Bool>)] {
        [("qci", \.qci), ("apft", \.apft), ("apqi", \.apqi), ("aiv", \.aiv), ("pv", \.pv), ("appv", \.appv), ("appvi", \.appvi)]
    }

    public static func load(path: String) throws(HostDescription.Invalid) -> HostDescription {
        switch Files.read(path) {
        case .success(let bytes): return try parse(bytes)
        case .failure(let reason): throw HostDescription.Invalid("file", "cannot read \(path): \(reason)")
        }
    }

    public static func parse(_ bytes: [UInt8]) throws(HostDescription.Invalid) -> HostDescription {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw HostDescription.Invalid("file", "not valid JSON (\(error))")
        }
        guard case .object(let top) = json else { throw HostDescription.Invalid("file", "must be a JSON object") }
        try unknown(top, topFields, prefix: "")
        if let notes = top["notes"] {
            guard case .array(let lines) = notes, lines.allSatisfy({ $0.stringValue != nil }) else {
                throw HostDescription.Invalid("notes", "must be an array of strings")
            }
        }
        let apxa = try bool(top["apxa"], "apxa") ?? true
        let maxAdapter: APID? = try maximum(top["maxAdapter"], "maxAdapter", apxa: apxa)
        let maxDomain: APQI? = try maximum(top["maxDomain"], "maxDomain", apxa: apxa)
        let adapterMax = maxAdapter ?? HostDescription.idLimit(apxa: apxa)
        var facilities = Facilities()
        if let f = top["facilities"] {
            guard case .object(let fo) = f else { throw HostDescription.Invalid("facilities", "must be an object") }
            try unknown(fo, Set(facilityFlags.map(\.name)), prefix: "facilities.")
            for f in facilityFlags { facilities[keyPath: f.flag] = try bool(fo[f.name], "facilities." + f.name) ?? true }
        }
        guard let domainsValue = top["domains"] else { throw HostDescription.Invalid("domains", "is required") }
        let domains: Bitmap256<APQI> = try ids(domainsValue, "domains")
        let control: Bitmap256<APQI>? = try top["controlDomains"].map { v throws(HostDescription.Invalid) in try ids(v, "controlDomains") }
        let apmask: Bitmap256<APID> = try top["apmask"].map { v throws(HostDescription.Invalid) in try bootMask(v, "apmask") } ?? .all
        let aqmask: Bitmap256<APQI> = try top["aqmask"].map { v throws(HostDescription.Invalid) in try bootMask(v, "aqmask") } ?? .all
        let maxMdevs = try int(top["maxMdevs"], "maxMdevs") ?? 65536
        guard case .array(let list)? = top["adapters"] else {
            throw HostDescription.Invalid("adapters", top["adapters"] == nil ? "is required" : "must be an array")
        }
        var adapters: [AdapterDescription] = []
        for (i, item) in list.enumerated() {
            let field = "adapters[\(i)]"
            guard case .object(let o) = item else { throw HostDescription.Invalid(field, "must be an object") }
            try unknown(o, adapterFields, prefix: field + ".")
            guard let n = try int(o["id"], field + ".id") else { throw HostDescription.Invalid(field + ".id", "is required") }
            guard let id = APID(exactly: n) else {
                throw HostDescription.Invalid(field + ".id", "adapter \(n) is outside 0-\(adapterMax.value) (maxAdapter)")
            }
            guard let typeName = o["type"]?.stringValue else {
                throw HostDescription.Invalid(field + ".type", "is required: one of \(AdapterType.supportedNames.joined(separator: ", "))")
            }
            guard let type = AdapterType(typeName) else {
                throw HostDescription.Invalid(field + ".type", "'\(typeName)' is not one of \(AdapterType.supportedNames.joined(separator: ", "))")
            }
            let configured = try bool(o["configured"], field + ".configured") ?? true
            let restriction: Bitmap256<APQI>? = try o["domains"].map { v throws(HostDescription.Invalid) in try ids(v, field + ".domains") }
            let gr2 = try o["tapqGR2"].map { v throws(HostDescription.Invalid) in try tapqGR2(v, field + ".tapqGR2") }
            adapters.append(AdapterDescription(id: id, type: type, configured: configured, domains: restriction, tapqGR2: gr2))
        }
        let d = HostDescription(apxa: apxa, maxAdapter: maxAdapter, maxDomain: maxDomain, facilities: facilities,
                                usageDomains: domains, controlDomains: control, apmask: apmask, aqmask: aqmask,
                                maxMdevs: maxMdevs, adapters: adapters)
        try d.validate()
        return d
    }

    static func unknown(_ o: [String: JSONValue], _ known: Set<String>, prefix: String) throws(HostDescription.Invalid) {
        if let bad = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw HostDescription.Invalid(prefix + bad, "unknown field (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// A TAPQ GR2 word: `0x` and 1-16 hex digits.
    static func tapqGR2(_ v: JSONValue, _ field: String) throws(HostDescription.Invalid) -> UInt64 {
        guard let s = v.stringValue, s.hasPrefix("0x"), (3...18).contains(s.count), let w = UInt64(s.dropFirst(2), radix: 16) else {
            throw HostDescription.Invalid(field, "must be a string 0x and 1-16 hex digits (the queues' TAPQ GR2)")
        }
        return w
    }

    static func bool(_ v: JSONValue?, _ field: String) throws(HostDescription.Invalid) -> Bool? {
        guard let v else { return nil }
        guard let b = v.boolValue else { throw HostDescription.Invalid(field, "must be true or false") }
        return b
    }

    static func int(_ v: JSONValue?, _ field: String) throws(HostDescription.Invalid) -> Int? {
        guard let v else { return nil }
        guard let n = v.intValue else { throw HostDescription.Invalid(field, "must be a whole number") }
        return n
    }

    /// `maxAdapter` or `maxDomain`: a number the LPAR can have as its highest id.
    static func maximum<ID: APIdentifier>(_ v: JSONValue?, _ field: String, apxa: Bool) throws(HostDescription.Invalid) -> ID? {
        guard let n = try int(v, field) else { return nil }
        try HostDescription.checkMaximum(n, ID.self, field, apxa: apxa)
        return ID(exactly: n)
    }

    /// An id list: a JSON array of numbers or a string such as `"0-15,0x47"`.
    static func ids<ID: APIdentifier>(_ v: JSONValue, _ field: String) throws(HostDescription.Invalid) -> Bitmap256<ID> {
        switch v {
        case .string(let s):
            do throws(IdList.ParseError) { return try IdList.parse(s) } catch { throw HostDescription.Invalid(field, error.description) }
        case .array(let items):
            var map = Bitmap256<ID>()
            for item in items {
                guard let n = item.intValue, let id = ID(exactly: n) else {
                    throw HostDescription.Invalid(field, "\(item.serialized) is not an id 0-255")
                }
                map.insert(id)
            }
            return map
        default:
            throw HostDescription.Invalid(field, "must be an array of ids or a string such as \"0-15,0x47\"")
        }
    }

    /// A boot mask (`ap.apmask=`): the sysfs syntax applied to an all-zero mask.
    static func bootMask<ID>(_ v: JSONValue, _ field: String) throws(HostDescription.Invalid) -> Bitmap256<ID> {
        guard let s = v.stringValue else { throw HostDescription.Invalid(field, "must be a mask string such as \"0xffff\"") }
        switch KernelParse.apMask(Array(s.utf8), current: Bitmap256<ID>()) {
        case .success(let m): return m
        case .failure:
            throw HostDescription.Invalid(field, "'\(s)' is not a mask: 0x and up to 64 hex digits, or +/- terms such as +0-15")
        }
    }
}

extension HostFile {
    /// The host file of `d`, every field written out (defaults included, so
    /// that the file says what the host is without the reader knowing
    /// SPEC §1's defaults), in the order SPEC §1 lists them, `notes` first.
    /// `parse(render(d))` gives `d` back.
    public static func render(_ d: HostDescription, notes: [String] = []) -> String {
        func text(_ s: String) -> String { JSONValue.string(s).serialized }
        func ids<ID>(_ m: Bitmap256<ID>) -> String { text(IdList.format(m)) }
        let f = d.facilities
        var lines: [String] = []
        if !notes.isEmpty {
            lines.append("  \"notes\": [\n" + notes.map { "    " + text($0) }.joined(separator: ",\n") + "\n  ]")
        }
        lines += [
            "  \"apxa\": \(d.apxa)",
            "  \"maxAdapter\": \(d.maxAdapter.value)",
            "  \"maxDomain\": \(d.maxDomain.value)",
            "  \"facilities\": { \"qci\": \(f.qci), \"apft\": \(f.apft), \"apqi\": \(f.apqi), \"aiv\": \(f.aiv) }",
            "  \"domains\": \(ids(d.usageDomains))",
            "  \"controlDomains\": \(ids(d.controlDomains))",
            "  \"apmask\": \(text(d.apmask.hexString))",
            "  \"aqmask\": \(text(d.aqmask.hexString))",
            "  \"maxMdevs\": \(d.maxMdevs)",
        ]
        let adapters = d.adapters.sorted { $0.id < $1.id }.map { a in
            var fields = ["\"id\": \(a.id.value)", "\"type\": \(text(a.type.description))", "\"configured\": \(a.configured)"]
            if let own = a.domains { fields.append("\"domains\": \(ids(own))") }
            if let gr2 = a.tapqGR2 { fields.append("\"tapqGR2\": \(text(TAPQInfo(gr2).description))") }
            return "    { " + fields.joined(separator: ", ") + " }"
        }
        lines.append(adapters.isEmpty ? "  \"adapters\": []" : "  \"adapters\": [\n" + adapters.joined(separator: ",\n") + "\n  ]")
        return "{\n" + lines.joined(separator: ",\n") + "\n}\n"
    }
}
