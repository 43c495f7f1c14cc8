import APMatrixModel
import APMatrixTesting
import Testing

/// The vfio-ap device state of the series, v4 of 2026-07-07 as the 0-day
/// bot applied it (MIG-v4 `@000ee754`, docs/vfio-ap-migration-preview.md
/// §2): `struct vfio_ap_config` in s390 byte order, and the kernel's rules
/// for writing it in RESUMING.
@Suite struct MigrationStreamTests {
    /// The docs page's two-queue example: APQNs 05.0004 and 05.0047 of a
    /// CEX8C in CCA mode (GR2 0x728000000E540007), control domain 4.
    static let twoQueues: [UInt8] = [
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x72, 0x80, 0x00, 0x00, 0x0e, 0x54, 0x00, 0x07,
        0x05, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x72, 0x80, 0x00, 0x00, 0x0e, 0x54, 0x00, 0x07,
        0x05, 0x47, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]

    @Test func decodesTheTwoQueueExample() throws {
        #expect(Self.twoQueues.count == 72)
        let c = try VfioAPConfig(decoding: Self.twoQueues)
        #expect(c.adm == Bitmap256([APQI(4)]))
        #expect(c.queues.map(\.apqn) == [APQN(5, 4), APQN(5, 0x47)])
        #expect(c.queues.map(\.data.description) == ["0x728000000e540007", "0x728000000e540007"])
        #expect(c.encoded == Self.twoQueues)
    }

    /// The emulated cards' TAPQ GR2 (the table of the docs page, §8).
    @Test func eachCardTypeAnswersItsTableValue() {
        func gr2(_ t: String, apxa: Bool = true, nd: APQI = 0x54) -> String {
            AdapterType(t)!.tapqInfo(apxa: apxa, maxDomain: nd).description
        }
        #expect(gr2("CEX8C") == "0x728000000e540007")
        #expect(gr2("CEX8A") == "0x6a8000000e540007")
        #expect(gr2("CEX8P") == "0x068000000e540007")
        #expect(gr2("CEX7C") == "0x728000000d540007")
        #expect(gr2("CEX4C", apxa: false, nd: 15) == "0x708000000a0f0007")
    }

    /// The kernel's writes: sequential pieces; the one that completes the
    /// configuration hands it over.
    @Test func writesInPiecesCompleteOnTheLastByte() throws {
        var f = VfioAPResumingFile()
        #expect(try f.write(Self.twoQueues[0..<4]) == nil)
        #expect(try f.write(Self.twoQueues[4..<60]) == nil)
        #expect(f.isIncomplete)
        let c = try #require(try f.write(Self.twoQueues[60...]))
        #expect(c.queues.count == 2 && !f.isIncomplete)
    }

    /// A truncated stream never completes: no configuration, nothing refused.
    @Test func aTruncatedStreamNeverCompletes() throws {
        var f = VfioAPResumingFile()
        #expect(try f.write(Self.twoQueues[0..<40]) == nil)
        #expect(f.isIncomplete)
        #expect(errorOf { _ = try VfioAPConfig(decoding: Array(Self.twoQueues[0..<56])) }?.errno.symbol == "EIO")
    }

    /// 65,536 queues (256 x 256) is the most; one more is EINVAL at the first write.
    @Test func aQueueCountAbove256x256IsRefused() throws {
        var f = VfioAPResumingFile()
        let over: [UInt8] = [0x00, 0x01, 0x00, 0x01] + Array(Self.twoQueues[4..<40])
        let e = errorOf { _ = try f.write(over[...]) }
        #expect(e == APError(.invalidArgument, "vfio-ap resuming write: 65537 queues is above the maximum 65536 (256 x 256)"))
        #expect(f.buffer == nil)
        var max = VfioAPResumingFile()
        #expect(try max.write(([0x00, 0x01, 0x00, 0x00] as [UInt8])[...]) == nil)
        #expect(max.size == 40 + 16 * 65536)
        #expect(errorOf { _ = try VfioAPConfig(decoding: over) }?.errno.symbol == "EINVAL")
    }

    /// Garbage: an empty write, a first write shorter than the count, a
    /// write past the end (nothing stored), bytes that are no header at all.
    @Test func garbageIsRefused() throws {
        var f = VfioAPResumingFile()
        #expect(errorOf { _ = try f.write([][...]) }?.errno.symbol == "EINVAL")
        #expect(errorOf { _ = try f.write(([0x00, 0x00, 0x02] as [UInt8])[...]) }?.errno.symbol == "EINVAL")
        #expect(try f.write(Self.twoQueues[0..<70]) == nil)
        #expect(errorOf { _ = try f.write(([1, 2, 3] as [UInt8])[...]) }?.errno.symbol == "EIO")
        #expect(f.buffer?.count == 70)
        var g = VfioAPResumingFile()
        #expect(errorOf { _ = try g.write(Array("QEVM\u{0}\u{0}\u{0}\u{3}garbage".utf8)[...]) }?.errno.symbol == "EINVAL")
        #expect(errorOf { _ = try VfioAPConfig(decoding: [0xde, 0xad]) }?.errno.symbol == "EINVAL")
    }
}
