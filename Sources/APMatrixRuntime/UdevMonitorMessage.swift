import APMatrixModel

/// A uevent as a libudev monitor receives it from udevd on the netlink
/// `udev` group (docs/udev-libvirt.md §4.2; systemd's
/// `device_monitor_send_device`): a 40-byte header ("libudev\0", magic,
/// sizes, the MurmurHash2 of the subsystem and devtype that receivers'
/// socket filters match on, no tags), then `KEY=value\0` for
/// `UDEV_DATABASE_VERSION=1`, `ACTION`, `DEVPATH`, `SUBSYSTEM`, the
/// device's variables in the kernel's order, `SEQNUM` and `USEC_INITIALIZED`.
/// The format is udevd's, written from the page's description, not its code.
public enum UdevMonitorMessage {
    /// `UDEV_MONITOR_MAGIC`, sent big-endian.
    static let magic: UInt32 = 0xfeedcafe
    static let headerSize = 40

    /// The message for `u` with sequence number `sequence` (`SEQNUM`, never
    /// 0: libudev refuses a device without one) and `USEC_INITIALIZED`
    /// `initialized` (CLOCK_MONOTONIC in µs when udevd handled it).
    public static func encode(_ u: Uevent, sequence: Int, initialized: UInt64) -> [UInt8] {
        // udevd sends what it read into its device, where a value's trailing
        // newline is cut (`truncate_nl`; the kernel's APMASK= has one).
        let variables = u.properties.map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 }
        let properties = ["UDEV_DATABASE_VERSION=1", "ACTION=" + u.action.rawValue, "DEVPATH=" + u.devpath,
                          "SUBSYSTEM=" + u.subsystem] + variables
            + ["SEQNUM=\(sequence)", "USEC_INITIALIZED=\(initialized)"]
        let body: [UInt8] = properties.flatMap { Array($0.utf8) + [0] }
        let devtype = variables.first { $0.hasPrefix("DEVTYPE=") }.map { String($0.dropFirst("DEVTYPE=".count)) }
        var m: [UInt8] = Array("libudev".utf8) + [0]
        m += bigEndian(magic)
        m += hostOrder(UInt32(headerSize))   // header_size
        m += hostOrder(UInt32(headerSize))   // properties_off
        m += hostOrder(UInt32(body.count))   // properties_len
        m += bigEndian(murmurHash2(Array(u.subsystem.utf8)))
        m += bigEndian(devtype.map { murmurHash2(Array($0.utf8)) } ?? 0)
        m += bigEndian(0)                    // tag bloom filter, high word: no tags
        m += bigEndian(0)                    // and low word
        return m + body
    }

    /// systemd's MurmurHash2 (`src/basic/MurmurHash2.c`): 4-byte blocks
    /// read in the machine's order (little-endian on x86), seed 0.
    public static func murmurHash2(_ data: [UInt8], seed: UInt32 = 0) -> UInt32 {
        let m: UInt32 = 0x5bd1e995
        var h = seed ^ UInt32(truncatingIfNeeded: data.count)
        var i = 0
        while data.count - i >= 4 {
            var k = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) }
            k &*= m
            k ^= k >> 24
            k &*= m
            h = (h &* m) ^ k
            i += 4
        }
        let rest = data.count - i
        if rest == 3 { h ^= UInt32(data[i + 2]) << 16 }
        if rest >= 2 { h ^= UInt32(data[i + 1]) << 8 }
        if rest >= 1 {
            h ^= UInt32(data[i])
            h &*= m
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return h
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    /// The sizes are in the sender's order, which is the receiver's: both run on this machine.
    static func hostOrder(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
}
