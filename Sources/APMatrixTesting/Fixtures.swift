// The literal fixtures the test targets share: the seed's example UUIDs, the
// kernel-reference V4 masks, and the texts the seed logs. Expected values in
// the tests stay literal; these only name the inputs they have in common.

import APMatrixModel
import Foundation

/// The seed's example mdevs (A is created first in its EADDRINUSE example).
public let uuidA = "62177883-f1bb-47f0-914d-32a22e3a8804"
public let uuidB = "cef03c3c-903d-4ecc-9a83-40694cb8aee4"
public let uuidC = "4ab2c9b1-0c35-4f6a-9d0e-6e8a1f2b3c4d"
public let mdevA = MdevUUID(parsing: uuidA)!
public let mdevB = MdevUUID(parsing: uuidB)!
public let mdevC = MdevUUID(parsing: uuidC)!

/// The bytes of a sysfs write.
public func b(_ s: String) -> [UInt8] { Array(s.utf8) }
public func b(_ uuid: MdevUUID) -> [UInt8] { b(uuid.description) }

/// The seed's conflict log line (SPEC §3 "Masks").
public func inUse(_ apqn: String, _ owner: some CustomStringConvertible) -> String {
    "Userspace may not re-assign queue \(apqn) already assigned to \(owner)"
}

/// `0x` + digits right-padded with `fill` to 64 digits: a mask as the model formats it.
public func maskHex(_ digits: String, fill: Character = "0") -> String {
    "0x" + digits + String(repeating: fill, count: 64 - digits.count)
}

/// A mask as sysfs shows it: `maskHex` and a newline.
public func maskText(_ digits: String, fill: Character = "0") -> String { maskHex(digits, fill: fill) + "\n" }

/// The kernel-reference V4 mask texts.
public let v4Apmask = "0xf9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n"
public let v4Aqmask = "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe\n"
public let allOnesMask = "0x" + String(repeating: "f", count: 64) + "\n"

/// Ids set in a mask shown as `0x` + 64 hex digits (bit 0 = leftmost bit).
public func maskIDs(_ text: String) -> Set<Int> {
    var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
    if s.hasPrefix("0x") { s = s.dropFirst(2) }
    var ids = Set<Int>()
    for (i, ch) in s.enumerated() {
        guard let v = Int(String(ch), radix: 16) else { continue }
        for b in 0..<4 where v & (8 >> b) != 0 { ids.insert(i * 4 + b) }
    }
    return ids
}

/// `aa.qqqq` lines of a `matrix` file as (apid, apqi) pairs.
public func apqns(_ matrixText: String) -> [APQNPair] {
    matrixText.split(separator: "\n").compactMap { line in
        let parts = line.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              let a = Int(parts[0], radix: 16), let d = Int(parts[1], radix: 16) else { return nil }
        return APQNPair(a: a, q: d)
    }
}

/// An APQN as a test reads it from text, independent of the model's parser.
public struct APQNPair: Hashable, CustomStringConvertible, Sendable {
    public let a: Int, q: Int
    public init(a: Int, q: Int) { (self.a, self.q) = (a, q) }
    public var description: String { String(format: "%02x.%04x", a, q) }
}
