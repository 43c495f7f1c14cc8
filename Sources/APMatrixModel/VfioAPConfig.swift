import SystemPackage

/// A queue's TAPQ GR2 word (`struct ap_tapq_hwinfo`, arch/s390/include/asm/ap.h),
/// bit 0 the most significant: the facilities and mode (0-7), the class
/// (8-15), the SE bind state (16-17), the AP type (32-39), Nd (40-47), ML
/// (52-55), QD (60-63). docs/vfio-ap-migration-preview.md §2.
public struct TAPQInfo: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    func bit(_ n: UInt64) -> Bool { value >> (63 - n) & 1 == 1 }
    var apsc: Bool { bit(0) }
    var mex4k: Bool { bit(1) }
    var crt4k: Bool { bit(2) }
    var cca: Bool { bit(3) }
    var accel: Bool { bit(4) }
    var ep11: Bool { bit(5) }
    var apxa: Bool { bit(6) }
    var slcf: Bool { bit(7) }
    var classification: UInt64 { value >> 48 & 0xff }
    var bs: UInt64 { value >> 46 & 0x3 }
    var apType: UInt64 { value >> 24 & 0xff }

    /// `QINFO_DATA_MASK`: facilities, mode, APXA, SLCF, class, BS and AP type.
    static let compatibilityMask: UInt64 = 0xffff_c000_ff00_0000

    /// `0x728000000E540007`.
    public var description: String { "0x" + hex(value, digits: 16) }
}

extension AdapterType {
    /// The TAPQ GR2 an emulated queue of this type answers (the table in
    /// docs/vfio-ap-migration-preview.md §8): the mode facilities of
    /// `apFunctions` (MEX4K and CRT4K on CCA and accelerator cards, APXA with
    /// the host's apxa), class 0x80 (full native function), BS 0, AP type =
    /// `hwtype`, Nd = the LPAR's highest domain, ML 0, QD 7 (depth 8).
    public func tapqInfo(apxa: Bool, maxDomain: APQI) -> TAPQInfo {
        TAPQInfo(UInt64(apFunctions(apxa: apxa)) << 32 | 0x80 << 48 | UInt64(hwtype) << 24
                 | UInt64(maxDomain.rawValue) << 16 | 7)
    }
}

/// The vfio-ap device state of the series (`struct vfio_ap_config`, MIG-v4
/// `@000ee754`, v4 of 2026-07-07): the guest's AP configuration, in s390
/// byte order (big-endian), with no magic and no version. Header: `u32
/// num_queues`, 4 reserved bytes, `u64 adm[4]` (the shadow ADM, bit 0 the
/// most significant); then per queue `u64 data` (TAPQ GR2), `u16 apqn`
/// (`apid << 8 | apqi`), 6 reserved bytes.
public struct VfioAPConfig: Hashable, Sendable {
    public struct QueueInfo: Hashable, Sendable {
        public var data: TAPQInfo
        public var apqn: APQN

        public init(data: TAPQInfo, apqn: APQN) {
            self.data = data
            self.apqn = apqn
        }
    }

    public var adm: Bitmap256<APQI>
    public var queues: [QueueInfo]

    public static let headerSize = 40, queueInfoSize = 16
    /// `MAX_AP_QUEUES = AP_DEVICES * AP_DOMAINS`.
    public static let maxQueues = 256 * 256

    public init(adm: Bitmap256<APQI>, queues: [QueueInfo]) {
        self.adm = adm
        self.queues = queues
    }

    /// The size of a configuration of `queues` queues (`calculate_ap_config_size`).
    public static func size(queues: Int) -> Int { headerSize + queueInfoSize * queues }

    /// The stream as the source's `read()` gives it.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size(queues: queues.count))
        out.appendBigEndian(UInt32(queues.count))
        out += [0, 0, 0, 0]
        for w in [adm.w0, adm.w1, adm.w2, adm.w3] { out.appendBigEndian(w) }
        for q in queues {
            out.appendBigEndian(q.data.value)
            out.appendBigEndian(UInt16(q.apqn.apid.rawValue) << 8 | UInt16(q.apqn.apqi.rawValue))
            out += [0, 0, 0, 0, 0, 0]
        }
        return out
    }

    /// The `num_queues` a stream starts with (its first 4 bytes, big-endian).
    static func queueCount(_ bytes: ArraySlice<UInt8>) -> Int {
        bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
    }

    /// Decodes a complete stream, as the kernel reads its buffer once the
    /// last byte arrived: EINVAL when `num_queues` is above `maxQueues`, EIO
    /// when the length is not what `num_queues` gives. The reserved bytes
    /// are not looked at (the kernel never reads them).
    public init(decoding bytes: [UInt8]) throws(APError) {
        guard bytes.count >= 4 else {
            throw APError(.invalidArgument, "vfio_ap_config: \(bytes.count) bytes; the stream starts with a 4-byte queue count")
        }
        let n = Self.queueCount(bytes[...])
        guard n <= Self.maxQueues else {
            throw APError(.invalidArgument, "vfio_ap_config: \(n) queues is above the maximum \(Self.maxQueues) (256 x 256)")
        }
        guard bytes.count == Self.size(queues: n) else {
            throw APError(.ioError, "vfio_ap_config: \(bytes.count) bytes, but \(n) queues make \(Self.size(queues: n))")
        }
        func word(_ at: Int) -> UInt64 { bytes[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        adm = Bitmap256(words: word(8), word(16), word(24), word(32))
        queues = (0..<n).map { i in
            let at = Self.headerSize + i * Self.queueInfoSize
            return QueueInfo(data: TAPQInfo(word(at)), apqn: APQN(APID(rawValue: bytes[at + 8]), APQI(rawValue: bytes[at + 9])))
        }
    }
}

/// The write-only stream file the device gives in RESUMING
/// (`vfio_ap_resuming_write`): sequential writes of any size; the first
/// must hold the 4-byte queue count, which sets the size; the write that
/// makes the stream complete hands the configuration over to be checked
/// and applied. A file that never completes leaves the device as it was.
public struct VfioAPResumingFile: Hashable, Sendable {
    /// What has arrived, and the size `num_queues` gives; nil before the first write.
    public private(set) var buffer: [UInt8]?
    public private(set) var size = 0

    public init() {}

    /// Whether some but not all of the configuration arrived.
    public var isIncomplete: Bool { buffer.map { $0.count < size } ?? false }

    /// One `write()`: EINVAL for an empty write, a first write shorter than
    /// the queue count or a count above 256 x 256; EIO for a write past the
    /// end (nothing is stored). Returns the configuration when this write
    /// completed it.
    ///
    /// The corresponding kernel functions are `validate_resuming_write_parms`,
    /// `allocate_ap_config` and `vfio_ap_resuming_write`.
    public mutating func write(_ bytes: ArraySlice<UInt8>) throws(APError) -> VfioAPConfig? {
        guard !bytes.isEmpty else { throw APError(.invalidArgument, "vfio-ap resuming write of 0 bytes") }
        var stored = buffer ?? []
        if buffer == nil {
            guard bytes.count >= 4 else {
                throw APError(.invalidArgument, "vfio-ap resuming write: the first write has \(bytes.count) bytes, less than the 4-byte queue count")
            }
            let n = VfioAPConfig.queueCount(bytes)
            guard n <= VfioAPConfig.maxQueues else {
                throw APError(.invalidArgument, "vfio-ap resuming write: \(n) queues is above the maximum \(VfioAPConfig.maxQueues) (256 x 256)")
            }
            size = VfioAPConfig.size(queues: n)
        }
        guard stored.count + bytes.count <= size else {
            throw APError(.ioError, "vfio-ap resuming write: \(stored.count + bytes.count) bytes pass the end of the \(size)-byte configuration")
        }
        stored += bytes
        buffer = stored
        return stored.count == size ? try VfioAPConfig(decoding: stored) : nil
    }
}

extension Array where Element == UInt8 {
    /// Appends `v` in s390 (network) byte order.
    public mutating func appendBigEndian<T: FixedWidthInteger>(_ v: T) {
        for i in stride(from: T.bitWidth - 8, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: v >> i)) }
    }
}

/// `v` in lower-case hex, zero-padded to `digits`.
func hex<T: BinaryInteger>(_ v: T, digits: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, digits - s.count)) + s
}
