/// An adapter id (card number), 0...255.
public typealias APID = Int
/// A usage or control domain id (queue index), 0...255.
public typealias APQI = Int

/// An AP queue number: adapter and domain, written `%02x.%04x` as in sysfs.
public struct APQN: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let apid: APID
    public let apqi: APQI

    public init(_ apid: APID, _ apqi: APQI) {
        self.apid = apid
        self.apqi = apqi
    }

    /// `05.0004`, the kernel's `"%02x.%04x"`.
    public var description: String { hex(apid, width: 2) + "." + hex(apqi, width: 4) }

    /// Parses a queue device name such as `05.0004` (exactly that form).
    public init?(sysfsName name: String) {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 2, parts[1].utf8.count == 4,
              parts.allSatisfy({ $0.utf8.allSatisfy { KernelParse.digitValue($0) != nil && !($0 >= 65 && $0 <= 70) } }),
              let a = Int(parts[0], radix: 16), let q = Int(parts[1], radix: 16), q < 256 else { return nil }
        self.init(a, q)
    }

    public static func < (l: APQN, r: APQN) -> Bool { (l.apid, l.apqi) < (r.apid, r.apqi) }
}

/// Lowercase hex, zero-padded.
public func hex(_ value: Int, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.utf8.count)) + digits
}

/// A crypto adapter's type: generation (CEX3…CEX8) and mode (A, C, P).
public struct AdapterType: Hashable, Sendable, CustomStringConvertible {
    public enum Mode: String, Sendable, CaseIterable {
        /// Accelerator.
        case accelerator = "A"
        /// CCA coprocessor.
        case cca = "C"
        /// EP11 coprocessor.
        case ep11 = "P"
    }

    public let generation: Int
    public let mode: Mode

    public init?(_ name: String) {
        let u = name.uppercased()
        guard u.hasPrefix("CEX"), u.count == 5, let g = Int(String(u.dropFirst(3).prefix(1))),
              (3...8).contains(g), let m = Mode(rawValue: String(u.suffix(1))) else { return nil }
        // CEX3 existed as accelerator and CCA coprocessor only.
        if g == 3 && m == .ep11 { return nil }
        generation = g
        mode = m
    }

    /// `CEX8C`.
    public var description: String { "CEX\(generation)\(mode.rawValue)" }

    /// The AP device type (`hwtype`): CEX3A 8, CEX3C 9, CEX4 10 … CEX8 14.
    public var hwtype: Int { generation == 3 ? (mode == .accelerator ? 8 : 9) : generation + 6 }

    /// Types 10…14 get card and queue devices and can be bound to vfio_ap;
    /// older ones exist in the LPAR only (`ap_get_compatible_type`).
    public var hasDevices: Bool { hwtype >= 10 }

    /// The `AP_FUNC_*` bits (big-endian numbering in a 32-bit word) that make
    /// lszcrypt show the card's mode: MEX4K 1, CRT4K 2, COPRO 3, ACCEL 4, EP11 5, APXA 6.
    public func apFunctions(apxa: Bool) -> UInt32 {
        func bit(_ n: Int) -> UInt32 { 0x8000_0000 >> UInt32(n) }
        var f: UInt32
        switch mode {
        case .cca: f = bit(1) | bit(2) | bit(3)
        case .accelerator: f = bit(1) | bit(2) | bit(4)
        case .ep11: f = bit(5)
        }
        if apxa { f |= bit(6) }
        return f
    }

    public static let supportedNames =
        ["CEX3A", "CEX3C"] + (4...8).flatMap { g in ["A", "C", "P"].map { "CEX\(g)\($0)" } }
}

/// The drivers a queue device can be bound to.
public enum QueueDriver: String, Sendable, CaseIterable, Codable {
    /// The default (zcrypt) queue driver: the host uses the queue.
    case cex4queue
    /// The vfio_ap device driver: the queue can be passed to a guest.
    case vfioAP = "vfio_ap"
}
