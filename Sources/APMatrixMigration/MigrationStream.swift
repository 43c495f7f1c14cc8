import APMatrixModel
import FoundationEssentials

/// The migration stream between two `serve`s, in QEMU's shape
/// (migration/savevm.c): the file magic and version, a command that opens
/// the return path, a full section per device (header, payload, footer)
/// and the end. Section `ram` stands for the guest's memory: the guest
/// kernel's AP bus as JSON (length-prefixed). Section `vfio` is the
/// vfio-ap device in the generic VFIO framing (hw/vfio/migration.c): the
/// device-data flag, a 64-bit length and the bytes read from the device
/// (`vfio_ap_config`), then the end-of-state flag. Everything is
/// big-endian, as QEMU writes it. The return path carries `SHUT` with an
/// error flag (migration/migration.c).
enum MigrationStream {
    static let magic: UInt32 = 0x5145_564d // "QEVM", QEMU_VM_FILE_MAGIC
    static let version: UInt32 = 3         // QEMU_VM_FILE_VERSION
    static let sectionEOF: UInt8 = 0x02, sectionFull: UInt8 = 0x04, command: UInt8 = 0x08, footer: UInt8 = 0x7e
    static let openReturnPath: UInt16 = 1  // MIG_CMD_OPEN_RETURN_PATH
    static let devDataState: UInt64 = 0xffff_ffff_ef10_0003, endOfState: UInt64 = 0xffff_ffff_ef10_0001
    static let shut: UInt16 = 1            // MIG_RP_MSG_SHUT
    /// Sections: memory first, then the device.
    static let ram: (id: UInt32, name: String) = (0, "ram"), vfio: (id: UInt32, name: String) = (1, "vfio")
    /// Refused above this (a stream cannot make the destination allocate without bound).
    static let payloadLimit = 64 << 20
    /// QEMU's IO_BUF_SIZE: the device state reaches the kernel in writes of at most this.
    static let bufferSize = 32768

    static func header(returnPath: Bool) -> [UInt8] {
        var b: [UInt8] = []
        b.appendBigEndian(magic)
        b.appendBigEndian(version)
        if returnPath {
            b.append(command)
            b.appendBigEndian(openReturnPath)
            b.appendBigEndian(UInt16(0))
        }
        return b
    }

    static func section(_ s: (id: UInt32, name: String), _ payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [sectionFull]
        b.appendBigEndian(s.id)
        b.append(UInt8(s.name.utf8.count))
        b += Array(s.name.utf8)
        b.appendBigEndian(UInt32(0)) // instance
        b.appendBigEndian(UInt32(1)) // version
        b += payload
        b.append(footer)
        b.appendBigEndian(s.id)
        return b
    }

    static func ramPayload(_ bus: GuestBus) -> [UInt8] {
        let json = (try? JSONEncoder().encode(bus)).map(Array.init) ?? []
        var b: [UInt8] = []
        b.appendBigEndian(UInt32(json.count))
        return b + json
    }

    static func vfioPayload(_ data: [UInt8]) -> [UInt8] {
        var b: [UInt8] = []
        if !data.isEmpty {
            b.appendBigEndian(devDataState)
            b.appendBigEndian(UInt64(data.count))
            b += data
        }
        b.appendBigEndian(endOfState)
        return b
    }

    static func shutMessage(error: Bool) -> [UInt8] {
        var b: [UInt8] = []
        b.appendBigEndian(shut)
        b.appendBigEndian(UInt16(4))
        b.appendBigEndian(UInt32(error ? 1 : 0))
        return b
    }
}

/// Big-endian reads off a connection; nil at its end.
struct StreamReader {
    let fd: Int32

    func bytes(_ n: Int) -> [UInt8]? { n == 0 ? [] : TCP.readExact(fd, n) }
    func uint<T: FixedWidthInteger>(_: T.Type) -> T? {
        bytes(T.bitWidth / 8)?.reduce(T(0)) { $0 << 8 | T($1) }
    }
}
