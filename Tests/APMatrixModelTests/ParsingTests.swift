import APMatrixModel
import APMatrixTesting
import SystemPackage
import Testing

/// kstrtoul as a string: the value, or the errno symbol.
private func kstrtoul(_ s: String) -> String {
    switch KernelParse.kstrtoul(b(s)) {
    case .success(let v): return "\(v)"
    case .failure(let e): return e.symbol
    }
}

/// A mask write parsed against `current`: the sysfs text, or the errno symbol.
private func parseMask(_ s: String, from current: Bitmap256<APID>) -> String {
    switch KernelParse.apMask(b(s), current: current) {
    case .success(let m): return m.hexString
    case .failure(let e): return e.symbol
    }
}

/// kernel-reference §3.2 (kstrtoul base 0), V6.
@Suite struct KstrtoulTests {
    @Test(arguments: [
        ("5", "5"), ("5\n", "5"), ("+5", "5"), ("0x5", "5"), ("0X5", "5"), ("05", "5"),
        ("010", "8"), ("0", "0"), ("0xff", "255"), ("0XaB", "171"), ("255", "255"),
        ("18446744073709551615", "18446744073709551615"),
    ])
    func accepts(_ input: String, _ value: String) {
        #expect(kstrtoul(input) == value)
    }

    @Test(arguments: [
        ("08", "EINVAL"), ("0x", "EINVAL"), (" 5", "EINVAL"), ("5 ", "EINVAL"), ("-5", "EINVAL"),
        ("", "EINVAL"), ("\n", "EINVAL"), ("5\n\n", "EINVAL"), ("++5", "EINVAL"), ("+-5", "EINVAL"),
        ("5x", "EINVAL"), ("0x5g", "EINVAL"), ("09", "EINVAL"), ("0x\n", "EINVAL"), ("five", "EINVAL"),
        ("18446744073709551616", "ERANGE"), ("0x10000000000000000", "ERANGE"),
        ("99999999999999999999999", "ERANGE"),
    ])
    func rejects(_ input: String, _ errno: String) {
        #expect(kstrtoul(input) == errno)
    }
}

/// kernel-reference §2.3 (`ap_parse_bitmap_str`), V2–V4.
@Suite struct MaskParsingTests {
    let zero = Bitmap256<APID>()
    let ones = Bitmap256<APID>.all

    // MARK: absolute mode

    @Test func absoluteShortStringIsPaddedOnTheRight() {
        // V2
        #expect(parseMask("0x41", from: zero) == "0x4100000000000000000000000000000000000000000000000000000000000000")
        #expect(parseMask("0x41\n", from: ones) == "0x4100000000000000000000000000000000000000000000000000000000000000")
    }

    @Test func absolute0x123IsIds3_6_10_11() {
        // V2: ids 3, 6, 10, 11
        let text = parseMask("0x123", from: ones)
        #expect(text == "0x1230000000000000000000000000000000000000000000000000000000000000")
        var m = Bitmap256<APID>()
        for id: APID in [3, 6, 10, 11] { m.insert(id) }
        #expect(text == m.hexString)
    }

    @Test func absoluteAcceptsBareXAndNoPrefix() {
        #expect(parseMask("x41", from: zero) == maskHex("41"))
        #expect(parseMask("41", from: zero) == maskHex("41"))
        #expect(parseMask("0xABcd", from: zero) == maskHex("abcd"))
    }

    @Test func absoluteWithNoDigitsIsAllZeros() {
        // V2: `echo > apmask` (just a newline) -> all zeros; `0x` likewise.
        #expect(parseMask("\n", from: ones) == maskHex(""))
        #expect(parseMask("0x", from: ones) == maskHex(""))
        #expect(parseMask("0x\n", from: ones) == maskHex(""))
    }

    @Test func absoluteSixtyFourDigitsAccepted() {
        let digits = String(repeating: "f", count: 64)
        #expect(parseMask("0x" + digits, from: zero) == "0x" + digits)
        #expect(parseMask("0x" + digits + "\n", from: zero) == "0x" + digits)
    }

    @Test(arguments: [
        "0X41",                                         // V2: the X is left over
        "0x" + String(repeating: "f", count: 65),       // V2: 65 digits
        String(repeating: "0", count: 65),
        "0x 41", "0x41 ", " 0x41", "0x41\n\n", "0xg", "0x4,1", "xx41",
    ])
    func absoluteRejects(_ input: String) {
        #expect(parseMask(input, from: ones) == "EINVAL")
    }

    // MARK: relative mode

    @Test func v3RelativeFromAllOnes() {
        #expect(parseMask("+0,-6,+0x47,-0xf0", from: ones)
            == "0xfdffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7fff")
    }

    @Test func v4LiteralStrings() {
        #expect(parseMask("-5,-6", from: ones)
            == "0xf9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")
        #expect(parseMask("-4,-0x47,-0xab,-0xff", from: ones)
            == "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe")
    }

    @Test func termsWithoutSeparatorsAreAccepted() {
        // kernel-reference §2.3: `+5+6` and `+1-3-5` are accepted.
        #expect(parseMask("+5+6", from: zero) == maskHex("06"))
        // +1-3 sets 1..3, then -5 clears 5.
        #expect(parseMask("+1-3-5", from: zero) == maskHex("7"))
        #expect(parseMask("+1-3-5", from: ones) == maskHex("fb", fill: "f"))
    }

    @Test func numbersUseSimpleStrtoulBases() {
        #expect(parseMask("+0x41", from: zero) == maskHex("00000000000000004"))       // bit 65
        #expect(parseMask("-0xff", from: ones) == maskHex(String(repeating: "f", count: 63) + "e"))
        #expect(parseMask("+010", from: zero) == maskHex("008"))                       // octal 8
        #expect(parseMask("+0X41", from: zero) == maskHex("00000000000000004"))
    }

    @Test func lastOperationOnABitWins() {
        #expect(parseMask("+0-255,-128", from: zero) == maskHex(String(repeating: "f", count: 32) + "7", fill: "f"))
        #expect(parseMask("-0-255,+1-16", from: ones) == maskHex("7fff8"))
    }

    @Test func bitsNotMentionedKeepTheirValue() {
        #expect(parseMask("+4", from: ids([0])) == maskHex("88"))
        #expect(parseMask("-0", from: ids([0, 4])) == maskHex("08"))
    }

    @Test func separatorRunsAndTrailingNewline() {
        #expect(parseMask("+5\n", from: zero) == maskHex("04"))
        #expect(parseMask("+5,", from: zero) == maskHex("04"))
        #expect(parseMask("+5,,\n,+6\n", from: zero) == maskHex("06"))
    }

    @Test(arguments: [
        "+1, +2",   // V3: a space where a sign is expected
        "+5-3",     // V3: n > m
        "+256",     // V3
        "-256", "+0-256", "+", "-", "+x", "+5,x", "+5,5", "+ 5", "+5 ", "+5\n\n+", "+0x", "+5-", "+5--6",
    ])
    func relativeRejects(_ input: String) {
        #expect(parseMask(input, from: ones) == "EINVAL")
        #expect(parseMask(input, from: zero) == "EINVAL")
    }
}

/// Parsing at the assignment attributes: kstrtoul, then the maximum (SPEC §3 steps 1–2, V6).
@Suite struct AssignParsingTests {
    func host(apxa: Bool = true) throws -> APHost {
        var h = try makeHost(adapters: [5], domains: [4], apxa: apxa)
        try h.mk(mdevA)
        return h
    }

    @Test(arguments: ["5", "5\n", "+5", "0x5", "05"])
    func adapterFiveSpellings(_ input: String) throws {
        var h = try host()
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b(input)) } == nil)
        #expect(h.mx(mdevA) == "05.\n")
    }

    @Test func octal010IsAdapter8() throws {
        var h = try host()
        try h.assign(.adapter, mdev: mdevA, b("010"))
        #expect(h.mx(mdevA) == "08.\n")
    }

    @Test(arguments: [
        ("08", "EINVAL"), ("-5", "EINVAL"), (" 5", "EINVAL"), ("5 ", "EINVAL"), ("0x", "EINVAL"),
        ("5\n\n", "EINVAL"), ("\n", "EINVAL"), ("abc", "EINVAL"),
        ("18446744073709551616", "ERANGE"),
        ("18446744073709551615", "ENODEV"), ("256", "ENODEV"), ("0x100", "ENODEV"),
    ])
    func refusedOnEveryAttribute(_ input: String, _ errno: String) throws {
        for target in AssignTarget.allCases {
            var h = try host()
            let before = HostState(h)
            #expect(errnoOf { try h.assign(target, mdev: mdevA, b(input)) } == errno, "assign_\(target.rawValue) \(input)")
            #expect(errnoOf { try h.unassign(target, mdev: mdevA, b(input)) } == errno, "unassign_\(target.rawValue) \(input)")
            #expect(HostState(h) == before)
        }
    }

    @Test func id255IsTheLastValidIdWithAPXA() throws {
        var h = try host()
        try h.assign(.adapter, mdev: mdevA, b("255"))
        try h.assign(.domain, mdev: mdevA, b("255"))
        try h.assign(.controlDomain, mdev: mdevA, b("255"))
        #expect(h.mx(mdevA) == "ff.00ff\n")
        #expect(h.vfio.mdevs[mdevA]?.matrix.adm == ids([255]))
    }

    @Test func nonAPXAHostLimits63And15() throws {
        // V6: non-APXA host: 64 -> ENODEV, assign_domain 16 -> ENODEV.
        var h = try host(apxa: false)
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("64")) } == "ENODEV")
        #expect(errnoOf { try h.assign(.domain, mdev: mdevA, b("16")) } == "ENODEV")
        #expect(errnoOf { try h.assign(.controlDomain, mdev: mdevA, b("16")) } == "ENODEV")
        #expect(errnoOf { try h.unassign(.adapter, mdev: mdevA, b("64")) } == "ENODEV")
        #expect(errnoOf { try h.unassign(.domain, mdev: mdevA, b("16")) } == "ENODEV")
        #expect(errnoOf { try h.unassign(.controlDomain, mdev: mdevA, b("16")) } == "ENODEV")
        #expect(errnoOf { try h.assign(.adapter, mdev: mdevA, b("63")) } == nil)
        #expect(errnoOf { try h.assign(.domain, mdev: mdevA, b("15")) } == nil)
        #expect(errnoOf { try h.assign(.controlDomain, mdev: mdevA, b("15")) } == nil)
        #expect(h.mx(mdevA) == "3f.000f\n")
    }
}

/// Card `config`: `sscanf("%d")` (SPEC §1).
@Suite struct CardConfigParsingTests {
    @Test(arguments: [" 1", "+1", "1abc", "1", "1\n", "\t1", "01", " +1 x"])
    func acceptedAsOne(_ input: String) throws {
        var h = try makeHost(adapters: [5], domains: [4], deconfigured: [5])
        #expect(errnoOf { try h.storeCardConfig(5, b(input)) } == nil)
        #expect(h.firmware.adapters[5]?.configured == true)
        #expect(h.drv(5, 4) == "vfio_ap")
    }

    @Test(arguments: ["0", " 0", "-0", "+0", "0abc", "0x1", "0\n"])
    func acceptedAsZero(_ input: String) throws {
        var h = try makeHost(adapters: [5], domains: [4])
        #expect(errnoOf { try h.storeCardConfig(5, b(input)) } == nil)
        #expect(h.firmware.adapters[5]?.configured == false)
        #expect(h.drv(5, 4) == "absent")
    }

    @Test(arguments: ["", "x", "2", "-1", "\n", "+", "- 1", "abc1", "10"])
    func rejected(_ input: String) throws {
        for configured in [true, false] {
            var h = try makeHost(adapters: [5], domains: [4], deconfigured: configured ? [] : [5])
            let before = HostState(h)
            #expect(errnoOf { try h.storeCardConfig(5, b(input)) } == "EINVAL", "\(input)")
            #expect(HostState(h) == before)
        }
    }
}

/// Queue device names written to bind/unbind (SPEC §1).
@Suite struct DeviceNameTests {
    @Test func apqnNames() {
        #expect(APQN(sysfsName: "05.0004") == APQN(5, 4))
        #expect(APQN(sysfsName: "0a.00ab") == APQN(10, 0xab))
        #expect(APQN(sysfsName: "5.0004") == nil)
        #expect(APQN(sysfsName: "05.004") == nil)
        #expect(APQN(sysfsName: "0A.00AB") == nil)
        #expect(APQN(sysfsName: "05.0100") == nil)
        #expect(APQN(5, 4).description == "05.0004")
        #expect(APQN(0xff, 0xab).description == "ff.00ab")
    }
}

/// `kstrtobool` (lib/kstrtox.c, Linux 6.x), the parser of `se_bind`.
@Suite struct KstrtoboolTests {
    @Test(arguments: [
        ("1", true), ("1\n", true), ("y", true), ("Y", true), ("yes", true), ("t", true), ("True", true), ("tx", true),
        ("on", true), ("ON", true), ("oN\n", true),
        ("0", false), ("0\n", false), ("n", false), ("No", false), ("f", false), ("F", false), ("false", false),
        ("off", false), ("OFF", false), ("of", false),
    ])
    func accepts(_ input: String, _ value: Bool) {
        #expect(KernelParse.kstrtobool(b(input)) == .success(value))
    }

    @Test(arguments: ["", "\n", "2", "o", "ox", "x", " 1", "e", "d", "enable", "\u{11}", "\u{10}"])
    func rejects(_ input: String) {
        #expect(KernelParse.kstrtobool(b(input)) == .failure(.invalidArgument))
    }
}

/// `kstrtouint` base 0, the parser of `se_associate`: kstrtoul's syntax within 32 bits.
@Suite struct KstrtouintTests {
    @Test(arguments: [("7", UInt32(7)), ("0x10\n", 16), ("010", 8), ("+65535", 65535), ("4294967295", 4_294_967_295)])
    func accepts(_ input: String, _ value: UInt32) {
        #expect(KernelParse.kstrtouint(b(input)) == .success(value))
    }

    @Test(arguments: [("4294967296", Errno.outOfRange), ("0x100000000", .outOfRange), ("-1", .invalidArgument),
                      ("abc", .invalidArgument), ("7 ", .invalidArgument), ("", .invalidArgument)])
    func rejects(_ input: String, _ errno: Errno) {
        #expect(KernelParse.kstrtouint(b(input)) == .failure(errno))
    }
}

/// QEMU's confidential guest support for s390x, and `--secure` (docs/secure-execution.md §7).
@Suite struct ConfidentialGuestSupportTests {
    func secure(_ flag: Bool, _ object: String?, _ machine: String?) -> String {
        do { return try ConfidentialGuestSupport.isSecure(secure: flag, object: object, machine: machine) ? "secure" : "plain" } catch {
            return error.description
        }
    }

    @Test func theQEMUSpellingIsTheSameAsSecure() {
        #expect(secure(false, nil, nil) == "plain")
        #expect(secure(true, nil, nil) == "secure")
        #expect(secure(false, "s390-pv-guest,id=pv0", "confidential-guest-support=pv0") == "secure")
        #expect(secure(false, "qom-type=s390-pv-guest,id=pv0", "s390-ccw-virtio,confidential-guest-support=pv0") == "secure")
        #expect(secure(true, "s390-pv-guest,id=pv0", "s390-ccw-virtio-9.2,confidential-guest-support=pv0") == "secure")
    }

    @Test(arguments: [
        ("s390-pv-guest,id=pv0", nil,
         "EINVAL: -object s390-pv-guest,id=pv0 is not used: add -machine confidential-guest-support=pv0 (or use --secure)"),
        (nil, "confidential-guest-support=pv0", "EINVAL: -machine confidential-guest-support=pv0: no -object s390-pv-guest,id=pv0"),
        ("s390-pv-guest,id=pv0", "confidential-guest-support=pv1",
         "EINVAL: -machine confidential-guest-support=pv1 names no object: the s390-pv-guest object's id is pv0"),
        ("sev-guest,id=sev0", "confidential-guest-support=sev0",
         "EINVAL: -object sev-guest,id=sev0: only s390-pv-guest objects are emulated (s390-pv-guest,id=ID)"),
        ("s390-pv-guest", "confidential-guest-support=pv0",
         "EINVAL: -object s390-pv-guest: id=ID is required; QEMU ids start with a letter, then letters, digits, '-', '.', '_'"),
        ("s390-pv-guest,id=0pv", "confidential-guest-support=0pv",
         "EINVAL: -object s390-pv-guest,id=0pv: id=ID is required; QEMU ids start with a letter, then letters, digits, '-', '.', '_'"),
        ("s390-pv-guest,id=pv0,x=1", "confidential-guest-support=pv0",
         "EINVAL: -object s390-pv-guest,id=pv0,x=1: s390-pv-guest has no property 'x' (it takes only id=ID)"),
        ("s390-pv-guest,id=pv0", "pc,confidential-guest-support=pv0",
         "EINVAL: -machine pc,confidential-guest-support=pv0: the s390x machine type is s390-ccw-virtio"),
        ("s390-pv-guest,id=pv0", "s390-ccw-virtio,accel=tcg,confidential-guest-support=pv0",
         "EINVAL: -machine s390-ccw-virtio,accel=tcg,confidential-guest-support=pv0: 'accel=tcg' is not emulated (only confidential-guest-support=ID is)"),
    ] as [(String?, String?, String)])
    func halfOrWrongSpellingsAreRefused(_ object: String?, _ machine: String?, _ error: String) {
        #expect(secure(false, object, machine) == error)
    }
}
