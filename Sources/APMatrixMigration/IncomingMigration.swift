import APMatrixModel
import APMatrixRuntime
import FoundationEssentials
import Glibc
import Synchronization

/// The destination side (QEMU's `-incoming tcp:HOST:PORT`): a listener
/// owned by the guest; the first connection is loaded on its own thread
/// (`process_incoming_migration_co`): the guest's memory, then the device
/// state written to the device in RESUMING (the kernel checks and applies
/// it on the write that completes it), then the VM runs. A failure is
/// logged in QEMU's words, `SHUT(1)` goes back on an open return path, and
/// the guest's QEMU exits.
final class IncomingMigration: GuestAttachment, Sendable {
    let listenFD: Int32
    let bound: MigrationURI
    let connection = Mutex<Int32?>(nil)
    let closed = Mutex(false)

    var location: String { bound.description }

    static func listen(_ runtime: Runtime, guest: String, on uri: MigrationURI) throws(APError) -> IncomingMigration {
        let (fd, bound) = try TCP.listen(uri)
        let incoming = IncomingMigration(fd: fd, bound: bound)
        startThread { incoming.accept(runtime, guest) }
        return incoming
    }

    private init(fd: Int32, bound: MigrationURI) {
        listenFD = fd
        self.bound = bound
    }

    /// Stops listening and ends a load in progress (the guest stopped).
    /// Never waits for the loading thread, which may be the caller; the
    /// thread closes the sockets (a shutdown wakes its `accept` and `recv`),
    /// so no descriptor is closed while another thread may still use it.
    func close() {
        let first = closed.withLock { c -> Bool in
            defer { c = true }
            return !c
        }
        guard first else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        connection.withLock { fd in if let fd { shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    /// One connection, as QEMU's `-incoming` takes: the listener closes after it.
    private func accept(_ runtime: Runtime, _ guest: String) {
        let fd = Glibc.accept(listenFD, nil, nil)
        Glibc.close(listenFD)
        guard fd >= 0 else { return }
        let open = connection.withLock { c -> Bool in
            guard !closed.withLock({ $0 }) else { return false }
            c = fd
            return true
        }
        guard open else { Glibc.close(fd); return }
        defer {
            connection.withLock { c in
                c = nil
                Glibc.close(fd)
            }
        }
        var load = Load(runtime: runtime, guest: guest, reader: StreamReader(fd: fd))
        let failure = load.run()
        if load.returnPath { _ = TCP.writeAll(fd, MigrationStream.shutMessage(error: failure != nil)) }
        if let failure {
            _ = try? runtime.perform({ "migration_incoming_failed" }) { (h: inout APHost, now: Uptime) throws(APError) in
                try h.failIncoming(guest, failure, at: now)
            }
        }
    }
}

/// One incoming stream: returns QEMU's failure text, nil when the guest runs.
struct Load {
    let runtime: Runtime
    let guest: String
    let reader: StreamReader
    var returnPath = false
    var file = VfioAPResumingFile()
    var deviceBytes = 0

    static let readError = "load of migration failed: Input/output error"

    mutating func run() -> String? {
        guard let magic = reader.uint(UInt32.self), let version = reader.uint(UInt32.self) else { return Self.readError }
        guard magic == MigrationStream.magic else { return "Not a migration stream" }
        guard version == MigrationStream.version else { return "Unsupported migration stream version" }
        while true {
            guard let type = reader.bytes(1)?.first else { return Self.readError }
            switch type {
            case MigrationStream.sectionEOF:
                return finish()
            case MigrationStream.command:
                guard let cmd = reader.uint(UInt16.self), let len = reader.uint(UInt16.self), reader.bytes(Int(len)) != nil else {
                    return Self.readError
                }
                if cmd == MigrationStream.openReturnPath { returnPath = true }
            case MigrationStream.sectionFull:
                if let failure = section() { return failure }
            default:
                return "Unknown savevm section type \(type)"
            }
        }
    }

    private mutating func section() -> String? {
        guard let id = reader.uint(UInt32.self), let n = reader.bytes(1)?.first, let name = reader.bytes(Int(n)),
              reader.uint(UInt32.self) != nil, reader.uint(UInt32.self) != nil else { return Self.readError }
        let idstr = String(decoding: name, as: UTF8.self)
        let failure: String?
        switch idstr {
        case MigrationStream.ram.name: failure = memory()
        case MigrationStream.vfio.name: failure = device()
        default: return "Unknown savevm section or instance '\(idstr)' 0"
        }
        if let failure { return failure }
        guard reader.bytes(1)?.first == MigrationStream.footer, reader.uint(UInt32.self) == id else {
            return "Missing section footer for \(idstr)"
        }
        return nil
    }

    private func memory() -> String? {
        guard let len = reader.uint(UInt32.self), Int(len) <= MigrationStream.payloadLimit, let json = reader.bytes(Int(len)) else {
            return Self.readError
        }
        guard let bus = try? JSONDecoder().decode(GuestBus.self, from: Data(json)) else {
            return "load of migration failed: Invalid argument"
        }
        return perform("migration_load_ram") { (h: inout APHost, now: Uptime) throws(APError) in
            try h.loadIncomingMemory(guest, bus: bus, at: now)
        }
    }

    /// The VFIO framing: the device goes to RESUMING, each buffer is one
    /// `write()` to it (the one that completes the configuration applies it).
    private mutating func device() -> String? {
        if let failure = perform("migration_load_setup", { (h: inout APHost, _: Uptime) throws(APError) in try h.beginDeviceLoad(guest) }) {
            return failure
        }
        while true {
            guard let flag = reader.uint(UInt64.self) else { return Self.readError }
            if flag == MigrationStream.endOfState { return nil }
            guard flag == MigrationStream.devDataState, let size = reader.uint(UInt64.self),
                  size <= UInt64(MigrationStream.payloadLimit) else { return "load of migration failed: Invalid argument" }
            var left = Int(size)
            while left > 0 {
                guard let chunk = reader.bytes(min(left, MigrationStream.bufferSize)) else { return Self.readError }
                left -= chunk.count
                deviceBytes += chunk.count
                do throws(APError) {
                    if let config = try file.write(chunk[...]) {
                        let guest = self.guest
                        try runtime.perform("migration_load_device") { (h: inout APHost) throws(APError) in
                            try h.resumeDeviceState(guest, config)
                        }
                    }
                } catch {
                    return "load of migration failed: \(error.errno.description)"
                }
            }
        }
    }

    private func finish() -> String? {
        let (bytes, incomplete) = (deviceBytes, file.isIncomplete)
        return perform("migration_load_complete") { (h: inout APHost, now: Uptime) throws(APError) in
            try h.completeIncoming(guest, deviceBytes: bytes, incomplete: incomplete, at: now)
        }
    }

    private func perform(_ kind: String, _ body: (inout APHost, Uptime) throws(APError) -> Void) -> String? {
        do throws(APError) {
            try runtime.perform({ kind }, body)
            return nil
        } catch {
            return "load of migration failed: \(error.errno.description)"
        }
    }
}
