import APMatrixModel
import APMatrixRuntime
import APMatrixTesting
import Testing

/// libudev's monitor message (docs/udev-libvirt.md §4.2): the bytes udevd
/// 252 itself sent, as captured in the page's experiments.
@Suite struct UdevMonitorMessageTests {
    /// The page's table of MurmurHash2 values (udevd's messages and a Python port agree).
    @Test(arguments: [("ap", 0xf026bf09), ("ap_card", 0xad29a260), ("ap_queue", 0x704b18d2),
                      ("matrix", 0x9f470338), ("mdev", 0xbb5211c7)] as [(String, UInt32)])
    func murmurHash2(_ text: String, _ hash: UInt32) {
        #expect(UdevMonitorMessage.murmurHash2(Array(text.utf8)) == hash)
    }

    /// udevd's message for card05's `add`, byte for byte: the 40-byte header
    /// (hex from the capture) and the properties.
    @Test func card05AddIsUdevdsMessage() {
        let add = Uevent(action: .add, devpath: "/devices/ap/card05", subsystem: "ap",
                         properties: ["DEVTYPE=ap_card", "DEV_TYPE=000E", "MODALIAS=ap:t0E", "MODE=cca"])
        let m = UdevMonitorMessage.encode(add, sequence: 841, initialized: 528492265)
        let header = "6c69627564657600" + "feedcafe" + "28000000" + "28000000" + "a8000000" + "f026bf09" + "ad29a260"
            + "00000000" + "00000000"
        #expect(m.prefix(40).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() == header)
        let body = "UDEV_DATABASE_VERSION=1\0ACTION=add\0DEVPATH=/devices/ap/card05\0SUBSYSTEM=ap\0DEVTYPE=ap_card\0"
            + "DEV_TYPE=000E\0MODALIAS=ap:t0E\0MODE=cca\0SEQNUM=841\0USEC_INITIALIZED=528492265\0"
        #expect(Array(m.dropFirst(40)) == Array(body.utf8))
        #expect(m.count == 40 + 0xa8)
    }

    /// No `DEVTYPE`: the devtype hash is 0. A value's trailing newline (the
    /// kernel's `APMASK=`) is cut, as udevd cuts it.
    @Test func busChangeHasNoDevtypeAndNoNewline() {
        let change = Uevent(action: .change, devpath: "/devices/ap", subsystem: "ap",
                            properties: ["APMASK=0xf9ff\n"])
        let m = UdevMonitorMessage.encode(change, sequence: 7, initialized: 1)
        #expect(Array(m[24..<32]) == [0xf0, 0x26, 0xbf, 0x09, 0, 0, 0, 0])
        let body = "UDEV_DATABASE_VERSION=1\0ACTION=change\0DEVPATH=/devices/ap\0SUBSYSTEM=ap\0APMASK=0xf9ff\0SEQNUM=7\0USEC_INITIALIZED=1\0"
        #expect(Array(m.dropFirst(40)) == Array(body.utf8))
        #expect(Array(m[20..<24]) == [UInt8(body.utf8.count), 0, 0, 0])
    }
}
