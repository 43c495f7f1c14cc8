import SystemPackage

/// The kernel's text parsers, byte for byte. Every sysfs store hands its
/// buffer to one of these; the kernel NUL-terminates the buffer, so parsing
/// stops at the first NUL byte, as it does there.
public enum KernelParse {
    /// The bytes up to the first NUL, as the kernel's string functions see a buffer.
    public static func cString(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        if let nul = bytes.firstIndex(of: 0) { return bytes[..<nul] }
        return bytes[...]
    }

    static func digitValue(_ c: UInt8) -> UInt64? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt64(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    static func isHexDigit(_ c: UInt8?) -> Bool { c.flatMap(digitValue) != nil }

    static func lower(_ c: UInt8) -> UInt8 { c | 0x20 }

    /// Base detection with base 0 (`_parse_integer_fixup_radix`): `0x` followed
    /// by a hex digit is hex, any other leading `0` octal, else decimal.
    /// Returns the base and the index where digits start.
    static func fixupRadix(_ s: ArraySlice<UInt8>, at i: Int) -> (base: UInt64, start: Int) {
        guard i < s.endIndex, s[i] == UInt8(ascii: "0") else { return (10, i) }
        if i + 2 < s.endIndex, lower(s[i + 1]) == UInt8(ascii: "x"), isHexDigit(s[i + 2]) {
            return (16, i + 2)
        }
        return (8, i)
    }

    /// `_parse_integer`: digits of `base` from `i`; the value wraps on
    /// overflow and the overflow is reported separately, as in the kernel.
    static func parseDigits(_ s: ArraySlice<UInt8>, from i: Int, base: UInt64)
        -> (value: UInt64, end: Int, overflow: Bool) {
        var value: UInt64 = 0, overflow = false, j = i
        while j < s.endIndex, let d = digitValue(s[j]), d < base {
            let (m, o1) = value.multipliedReportingOverflow(by: base)
            let (r, o2) = m.addingReportingOverflow(d)
            overflow = overflow || o1 || o2
            value = r
            j += 1
        }
        return (value, j, overflow)
    }

    /// `kstrtoul(buf, 0, &val)`: an optional `+`, base 0, at least one digit,
    /// an optional single trailing newline, nothing else. Overflow is ERANGE
    /// (checked before trailing garbage, as the kernel does), anything else EINVAL.
    public static func kstrtoul(_ bytes: [UInt8]) -> Result<UInt64, Errno> {
        let s = cString(bytes)
        var i = s.startIndex
        if i < s.endIndex, s[i] == UInt8(ascii: "+") { i += 1 }
        let (base, start) = fixupRadix(s, at: i)
        let (value, end, overflow) = parseDigits(s, from: start, base: base)
        if overflow { return .failure(.outOfRange) }
        if end == start { return .failure(.invalidArgument) }
        var k = end
        if k < s.endIndex, s[k] == UInt8(ascii: "\n") { k += 1 }
        return k == s.endIndex ? .success(value) : .failure(.invalidArgument)
    }

    /// `kstrtouint(buf, 0, &val)`: `kstrtoul`'s syntax, and a value above
    /// 32 bits is ERANGE.
    public static func kstrtouint(_ bytes: [UInt8]) -> Result<UInt32, Errno> {
        kstrtoul(bytes).flatMap { v in UInt32(exactly: v).map { .success($0) } ?? .failure(.outOfRange) }
    }

    /// `kstrtobool` (Linux 6.x): the first byte `1 y Y t T` is true, `0 n N f F`
    /// false, `o`/`O` followed by `n`/`N` true and by `f`/`F` false; the rest
    /// is ignored. Anything else, an empty buffer included, is EINVAL.
    public static func kstrtobool(_ bytes: [UInt8]) -> Result<Bool, Errno> {
        let s = Array(cString(bytes))
        func byte(_ i: Int) -> Character? { i < s.count ? Character(Unicode.Scalar(s[i])) : nil }
        switch byte(0) {
        case "1", "y", "Y", "t", "T": return .success(true)
        case "0", "n", "N", "f", "F": return .success(false)
        case "o", "O":
            switch byte(1) {
            case "n", "N": return .success(true)
            case "f", "F": return .success(false)
            default: return .failure(.invalidArgument)
            }
        default: return .failure(.invalidArgument)
        }
    }

    /// `simple_strtoul(s, &end, 0)`: never fails; `end == start` means no digits.
    /// Overflow wraps silently, as in the kernel.
    static func simpleStrtoul(_ s: ArraySlice<UInt8>, at i: Int) -> (value: UInt64, end: Int) {
        let (base, start) = fixupRadix(s, at: i)
        let r = parseDigits(s, from: start, base: base)
        // With no digits the kernel's end pointer stays at the original string.
        return r.end == start ? (0, i) : (r.value, r.end)
    }

    /// The kernel's `sscanf` integer conversions as SPEC §1 reads them, one
    /// parser for every such store: skip leading white space, an optional
    /// sign (SPEC §1; the kernel itself takes only `-`, docs/upstream-ap-bus.md
    /// §1), decimal or base-0 digits; the rest is ignored. Returns the sign
    /// and the digits' value (wrapping on overflow, as `simple_strtoull`),
    /// nil when no number could be read.
    static func scanInteger(_ bytes: [UInt8], autoBase: Bool) -> (negative: Bool, magnitude: UInt64)? {
        let s = cString(bytes)
        var i = s.startIndex
        while i < s.endIndex, [9, 10, 11, 12, 13, 32].contains(s[i]) { i += 1 }
        var negative = false
        if i < s.endIndex, s[i] == UInt8(ascii: "-") || s[i] == UInt8(ascii: "+") {
            negative = s[i] == UInt8(ascii: "-"); i += 1
        }
        let (base, start) = autoBase ? fixupRadix(s, at: i) : (10, i)
        let (value, end, _) = parseDigits(s, from: start, base: base)
        guard end > start else { return nil }
        return (negative, value)
    }

    /// `sscanf(buf, "%d")` / `"%i"` into an `int`: the low 32 bits, as the
    /// kernel's `vsscanf` stores them; nil when no number could be read.
    public static func scanInt(_ bytes: [UInt8], autoBase: Bool) -> Int64? {
        guard let (negative, value) = scanInteger(bytes, autoBase: autoBase) else { return nil }
        let truncated = Int64(Int32(truncatingIfNeeded: value))
        return negative ? -truncated : truncated
    }

    /// `sscanf(buf, "%llu")`: a negative number wraps around, as in C.
    public static func scanUnsigned(_ bytes: [UInt8]) -> UInt64? {
        guard let (negative, value) = scanInteger(bytes, autoBase: false) else { return nil }
        return negative ? 0 &- value : value
    }

    /// `kstrtobool` (6.16+: `e`/`d` too): the first character `y Y t T e E 1`
    /// is true, `n N f F d D 0` false, `o`/`O` followed by `n`/`N` true and
    /// by `f`/`F` false; anything else, the empty string included, nil (EINVAL).
    public static func kstrtobool(_ bytes: [UInt8]) -> Bool? {
        let s = cString(bytes)
        guard let first = s.first else { return nil }
        switch UnicodeScalar(first) {
        case "y", "Y", "t", "T", "e", "E", "1": return true
        case "n", "N", "f", "F", "d", "D", "0": return false
        case "o", "O":
            switch s.dropFirst().first.map(UnicodeScalar.init) {
            case "n", "N": return true
            case "f", "F": return false
            default: return nil
            }
        default: return nil
        }
    }

    /// `ap_parse_bitmap_str`: a first `+` or `-` selects relative mode
    /// (`modify_bitmap` on a copy of `current`), anything else absolute mode
    /// (`hex2bitmap` into an all-zero mask). All or nothing: EINVAL on any error.
    public static func apMask<ID>(_ bytes: [UInt8], current: Bitmap256<ID>) -> Result<Bitmap256<ID>, Errno> {
        let s = cString(bytes)
        guard let first = s.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") else {
            return hex2bitmap(s)
        }
        return modifyBitmap(s, current)
    }

    static func modifyBitmap<ID>(_ s: ArraySlice<UInt8>, _ current: Bitmap256<ID>) -> Result<Bitmap256<ID>, Errno> {
        var map = current
        var i = s.startIndex
        while i < s.endIndex {
            let sign = s[i]
            i += 1
            guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return .failure(.invalidArgument) }
            let (a, np) = simpleStrtoul(s, at: i)
            guard np != i, a < 256 else { return .failure(.invalidArgument) }
            var z = a
            i = np
            if i < s.endIndex, s[i] == UInt8(ascii: "-") {
                i += 1
                let (b, np2) = simpleStrtoul(s, at: i)
                guard np2 != i, a <= b, b < 256 else { return .failure(.invalidArgument) }
                z = b
                i = np2
            }
            for id in UInt8(a)...UInt8(z) {
                if sign == UInt8(ascii: "+") { map.insert(ID(rawValue: id)) } else { map.remove(ID(rawValue: id)) }
            }
            while i < s.endIndex, s[i] == UInt8(ascii: ",") || s[i] == UInt8(ascii: "\n") { i += 1 }
        }
        return .success(map)
    }

    /// `hex2bitmap`: optional `0x` (lowercase x) or bare `x`, up to 64 hex
    /// digits filled from the left, an optional newline, nothing else.
    public static func hex2bitmap<ID>(_ s: ArraySlice<UInt8>) -> Result<Bitmap256<ID>, Errno> {
        var map = Bitmap256<ID>()
        var i = s.startIndex
        if i + 1 < s.endIndex, s[i] == UInt8(ascii: "0"), s[i + 1] == UInt8(ascii: "x") { i += 1 }
        if i < s.endIndex, s[i] == UInt8(ascii: "x") { i += 1 }
        var bit = 0
        while i < s.endIndex, bit < 256, let d = digitValue(s[i]) {
            for n in 0..<4 where d & (8 >> UInt64(n)) != 0 { map.insert(ID(rawValue: UInt8(bit + n))) }
            bit += 4
            i += 1
        }
        if i < s.endIndex, s[i] == UInt8(ascii: "\n") { i += 1 }
        return i == s.endIndex ? .success(map) : .failure(.invalidArgument)
    }

    /// The mdev core's `create_store`: 36 or 37 bytes; the first 36 a UUID
    /// `8-4-4-4-12` in hex of either case (`uuid_is_valid`); a 37th byte is
    /// accepted whatever it is.
    public static func mdevUUID(_ bytes: [UInt8]) -> Result<MdevUUID, Errno> {
        guard bytes.count == 36 || bytes.count == 37, let (uuid, _) = uuid(bytes[0..<36]) else {
            return .failure(.invalidArgument)
        }
        return .success(uuid)
    }

    /// `uuid_is_valid` on exactly 36 characters: the UUID, and whether its
    /// text was already the canonical lowercase form.
    static func uuid<C: Collection<UInt8>>(_ chars: C) -> (MdevUUID, lowercase: Bool)? {
        guard chars.count == 36 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0, lowercase = true, digit = 0
        for (n, c) in chars.enumerated() {
            if n == 8 || n == 13 || n == 18 || n == 23 {
                guard c == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let v = digitValue(c) else { return nil }
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F") { lowercase = false }
            if digit < 16 { high = high << 4 | v } else { low = low << 4 | v }
            digit += 1
        }
        return (MdevUUID(high: high, low: low), lowercase)
    }

    /// A write to a `uevent` file (`kobject_synth_uevent`): one trailing
    /// newline or NUL is dropped; the first word must be an action; after a
    /// space come a UUID (`uuid_is_valid`) and ` KEY=value` pairs of letters
    /// and digits.
    public static func syntheticUevent(_ bytes: [UInt8]) -> Result<SyntheticUevent, SyntheticUevent.Refusal> {
        func stripped(_ b: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
            b.last == 10 || b.last == 0 ? b.dropLast() : b
        }
        let text = stripped(bytes[...])
        let space = text.firstIndex(of: 32)
        let word = text[..<(space ?? text.endIndex)]
        guard !text.isEmpty, let action = UeventAction.allCases.first(where: { Array($0.rawValue.utf8) == Array(word) }) else {
            return .failure(.unknownAction)
        }
        guard let space else { return .success(SyntheticUevent(action: action, uuid: nil, arguments: [])) }
        // The arguments are measured from the whole write again (`kobject_action_args`).
        let args = stripped(bytes[(space + 1)...])
        guard args.count >= 36, uuid(args.prefix(36)) != nil else { return .failure(.badArguments) }
        func isAlnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
        var pairs: [(key: String, value: String)] = []
        var i = args.startIndex + 36
        while i < args.endIndex {
            guard args[i] == 32 else { return .failure(.badArguments) }
            let key = args[(i + 1)...].prefix { $0 != UInt8(ascii: "=") }
            let afterKey = key.endIndex
            guard !key.isEmpty, key.allSatisfy(isAlnum), afterKey < args.endIndex else { return .failure(.badArguments) }
            let value = args[(afterKey + 1)...].prefix { $0 != 32 }
            guard !value.isEmpty, value.allSatisfy(isAlnum) else { return .failure(.badArguments) }
            pairs.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            i = value.endIndex
        }
        return .success(SyntheticUevent(action: action, uuid: String(decoding: args.prefix(36), as: UTF8.self), arguments: pairs))
    }

    /// The name of an AP device written to a driver's `bind`/`unbind`: the
    /// exact sysfs name with at most one trailing newline.
    public static func deviceName(_ bytes: [UInt8]) -> String {
        var s = cString(bytes)
        if s.last == UInt8(ascii: "\n") { s = s.dropLast() }
        return String(decoding: s, as: UTF8.self)
    }
}
