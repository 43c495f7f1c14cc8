/// Id lists as people write them in host files, the API and on the command
/// line: comma-separated decimal or `0x` hex ids and ranges, `0-15,0x47,0xab`.
/// The kernel's own syntaxes (sysfs masks, kstrtoul) are `KernelParse`'s.
public enum IdList {
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case notAnID(String)
        case outOfRange(Int, max: Int)
        public var description: String {
            switch self {
            case .malformed(let item): return "'\(item)' is not an id or a range of ids (decimal or 0x hex, a-b)"
            case .notAnID(let text): return "'\(text)' is not an id (decimal or 0x hex)"
            case .outOfRange(let id, let max): return "id \(id) is above the maximum \(max)"
            }
        }
    }

    /// Decimal, or hex after `0x`.
    static func number(_ text: Substring) -> Int? {
        let t = text.trimmingSpaces
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return Int(t.dropFirst(2), radix: 16) }
        return Int(t, radix: 10)
    }

    /// Parses a list; every id must be at most `max`.
    public static func parse<ID: APIdentifier>(_ text: String, max: ID = .extendedMax) throws(ParseError) -> Bitmap256<ID> {
        var map = Bitmap256<ID>()
        let trimmed = Substring(text).trimmingSpaces
        if trimmed.isEmpty { return map }
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let lo = number(bounds[0]), let hi = bounds.count == 2 ? number(bounds[1]) : lo,
                  lo >= 0, lo <= hi else {
                throw .malformed(String(item.trimmingSpaces))
            }
            guard hi <= max.value else { throw .outOfRange(hi, max: max.value) }
            for id in lo...hi { map.insert(ID(rawValue: UInt8(id))) }
        }
        return map
    }

    /// `0-15,71,171`: decimal, with ranges for runs of three or more.
    public static func format<ID>(_ map: Bitmap256<ID>) -> String {
        var parts: [String] = []
        var run: (Int, Int)?
        func flush() {
            guard let (lo, hi) = run else { return }
            if hi - lo >= 2 { parts.append("\(lo)-\(hi)") } else { for id in lo...hi { parts.append("\(id)") } }
        }
        for id in map.lazy.map(\.value) {
            if let (lo, hi) = run, hi + 1 == id { run = (lo, id) } else { flush(); run = (id, id) }
        }
        flush()
        return parts.joined(separator: ",")
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s = s.dropLast() }
        return s
    }
}
