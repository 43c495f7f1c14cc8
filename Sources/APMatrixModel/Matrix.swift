/// An AP matrix: the APM (adapters), AQM (usage domains) and ADM (control
/// domains). Used for an mdev's assignment, its shadow CRYCB, and a guest's CRYCB.
public struct Matrix: Hashable, Sendable, Codable {
    public var apm: Bitmap256
    public var aqm: Bitmap256
    public var adm: Bitmap256

    public init(apm: Bitmap256 = Bitmap256(), aqm: Bitmap256 = Bitmap256(), adm: Bitmap256 = Bitmap256()) {
        self.apm = apm
        self.aqm = aqm
        self.adm = adm
    }

    public static let empty = Matrix()

    /// The APQNs of APM × AQM, ascending.
    public var apqns: [APQN] {
        var out: [APQN] = []
        out.reserveCapacity(apm.count * aqm.count)
        for a in apm { for q in aqm { out.append(APQN(a, q)) } }
        return out
    }

    public func contains(_ apqn: APQN) -> Bool { apm.contains(apqn.apid) && aqm.contains(apqn.apqi) }

    /// The `matrix` / `guest_matrix` text (`vfio_ap_mdev_matrix_show`):
    /// `%02lx.%04lx` per APQN, `%02lx.` per adapter when there are no
    /// domains, `.%04lx` per domain when there are no adapters, else nothing.
    /// Only ids up to the maxima are shown.
    public func matrixText(maxAPID: Int = 255, maxAPQI: Int = 255) -> String {
        let apids = apm & Bitmap256.through(maxAPID)
        let apqis = aqm & Bitmap256.through(maxAPQI)
        var s = ""
        if !apids.isEmpty && !apqis.isEmpty {
            for a in apids {
                let prefix = hex(a, width: 2) + "."
                for q in apqis { s += prefix + hex(q, width: 4) + "\n" }
            }
        } else if !apids.isEmpty {
            for a in apids { s += hex(a, width: 2) + ".\n" }
        } else {
            for q in apqis { s += "." + hex(q, width: 4) + "\n" }
        }
        return s
    }

    /// The `control_domains` text: `%04lx` per control domain.
    public func controlDomainsText(maxAPQI: Int = 255) -> String {
        var s = ""
        for d in adm & Bitmap256.through(maxAPQI) { s += hex(d, width: 4) + "\n" }
        return s
    }

    /// `APM 5-6 AQM 4,71 ADM 4` for messages and the event log.
    public var summary: String {
        "APM \(apm.isEmpty ? "-" : apm.description) AQM \(aqm.isEmpty ? "-" : aqm.description) ADM \(adm.isEmpty ? "-" : adm.description)"
    }
}
