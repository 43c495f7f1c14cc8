/// An AP matrix: the APM (adapters), AQM (usage domains) and ADM (control
/// domains). Used for an mdev's assignment, its shadow CRYCB, a guest's
/// CRYCB and the host AP configuration (QCI).
public struct Matrix: Hashable, Sendable, Codable {
    public var apm: Bitmap256<APID>
    public var aqm: Bitmap256<APQI>
    public var adm: Bitmap256<APQI>

    public init(apm: Bitmap256<APID> = Bitmap256(), aqm: Bitmap256<APQI> = Bitmap256(), adm: Bitmap256<APQI> = Bitmap256()) {
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

    /// What `self` has that `other` lacks, per mask.
    public func subtracting(_ other: Matrix) -> Matrix {
        Matrix(apm: apm.subtracting(other.apm), aqm: aqm.subtracting(other.aqm), adm: adm.subtracting(other.adm))
    }

    /// The `matrix` / `guest_matrix` text (`vfio_ap_mdev_matrix_show`):
    /// `%02lx.%04lx` per APQN, `%02lx.` per adapter when there are no
    /// domains, `.%04lx` per domain when there are no adapters, else nothing.
    /// Only ids up to the maxima are shown, and like `sysfs_emit_at` the text
    /// stops at `limit` bytes (a full 256×256 matrix would be 512 KiB).
    public func matrixText(maxAPID: APID = .extendedMax, maxAPQI: APQI = .extendedMax, limit: Int = Int.max) -> String {
        let apids = apm & .through(maxAPID)
        let apqis = aqm & .through(maxAPQI)
        var out: [UInt8] = []
        out.reserveCapacity(Swift.min(limit, 9 * apids.count * Swift.max(apqis.count, 1) + 6 * apqis.count))
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        func id(_ v: UInt8, _ width: Int) {
            for shift in stride(from: (width - 1) * 4, through: 0, by: -4) { out.append(digits[Int(v >> UInt8(shift)) & 15]) }
        }
        // Lines are at most 8 bytes: render whole, then cut at the limit.
        if !apids.isEmpty && !apqis.isEmpty {
            outer: for a in apids {
                for q in apqis {
                    id(a.rawValue, 2); out.append(UInt8(ascii: ".")); id(q.rawValue, 4); out.append(10)
                    if out.count >= limit { break outer }
                }
            }
        } else if !apids.isEmpty {
            for a in apids where out.count < limit { id(a.rawValue, 2); out.append(UInt8(ascii: ".")); out.append(10) }
        } else {
            for q in apqis where out.count < limit { out.append(UInt8(ascii: ".")); id(q.rawValue, 4); out.append(10) }
        }
        return String(decoding: out.prefix(limit), as: UTF8.self)
    }

    /// The `control_domains` text: `%04lx` per control domain.
    public func controlDomainsText(maxAPQI: APQI = .extendedMax) -> String {
        var s = ""
        for d in adm & .through(maxAPQI) { s += d.description + "\n" }
        return s
    }

    /// `APM 5-6 AQM 4,71 ADM 4` for messages and the event log.
    public var summary: String {
        "APM \(apm.isEmpty ? "-" : apm.description) AQM \(aqm.isEmpty ? "-" : aqm.description) ADM \(adm.isEmpty ? "-" : adm.description)"
    }
}
