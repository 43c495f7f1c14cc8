@testable import APMatrixRuntime
import APMatrixModel
import APMatrixTesting
import CSQLite
import Foundation
import Testing

/// The state database behind a runtime: one transaction per operation that
/// writes only the rows of what it changed, nothing for an operation that
/// changed nothing, the log's tail, and everything back after a restart.
@Suite struct StateStoreTests {
    final class Scratch {
        let dir: String
        init() throws { dir = try makeTempDir("apmatrix-store") }
        deinit { removeTree(dir) }
        var path: String { dir + "/host.db" }
    }

    let create = "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create"

    func uuid(_ n: Int) -> String { String(format: "00000000-0000-4000-8000-%012x", n) }

    /// A runtime on a new state of the seed example, adapter 5 and domain 4 freed.
    func runtime(_ s: Scratch) throws -> (Runtime, StateStore, SysfsEndpoint) {
        let host = try APHost(.seedExample)
        let (store, resumed) = try StateStore.open(path: s.path, profile: .seed, fresh: host)
        #expect(resumed == nil)
        let runtime = Runtime(host: host, store: store)
        let sysfs = SysfsEndpoint(runtime)
        try sysfs.write("/bus/ap/apmask", Array("-5".utf8))
        try sysfs.write("/bus/ap/aqmask", Array("-4".utf8))
        return (runtime, store, sysfs)
    }

    /// A write costs what it changed, whatever the number of mdevs: the rows
    /// of one create are its mdev, vfio_ap's counter and its three log lines
    /// (the note, the `add` and `bind` uevents); of one assignment, the mdev
    /// and the log line. (300 mdevs: their log lines stay below the log's
    /// 1000, which would add the deletion of the oldest to each write.)
    @Test func aWriteWritesTheRowsOfWhatItChanged() throws {
        let s = try Scratch()
        let (_, store, sysfs) = try runtime(s)
        for n in 0..<300 { try sysfs.write(create, Array(uuid(n).utf8)) }
        var rows = store.rowsWritten
        try sysfs.write(create, Array(uuid(300).utf8))
        #expect(store.rowsWritten - rows == 5)
        rows = store.rowsWritten
        try sysfs.write("/devices/vfio_ap/matrix/\(uuid(250))/assign_adapter", Array("5".utf8))
        #expect(store.rowsWritten - rows == 2)
        store.close()
    }

    /// Nothing changed, nothing written: a write of the current value, a
    /// refused write (its log lines wait for the next commit) and reads.
    @Test func anOperationThatChangesNothingWritesNothing() throws {
        let s = try Scratch()
        let (runtime, store, sysfs) = try runtime(s)
        try sysfs.write(create, Array(uuidA.utf8))
        try sysfs.write("/devices/vfio_ap/matrix/\(uuidA)/assign_adapter", Array("5".utf8))
        try sysfs.write("/devices/vfio_ap/matrix/\(uuidA)/assign_domain", Array("4".utf8))
        try sysfs.write(create, Array(uuid(2).utf8))
        try sysfs.write("/devices/vfio_ap/matrix/\(uuid(2))/assign_adapter", Array("5".utf8))
        let rows = store.rowsWritten
        try sysfs.write("/bus/ap/apmask", Array("-5".utf8))
        try sysfs.write("/devices/vfio_ap/matrix/\(uuidA)/assign_adapter", Array("5".utf8))
        _ = try sysfs.read("/devices/vfio_ap/matrix/\(uuidA)/matrix")
        _ = runtime.snapshot
        #expect(store.rowsWritten == rows)
        var refused: APError?
        do { try sysfs.write("/devices/vfio_ap/matrix/\(uuid(2))/assign_domain", Array("4".utf8)) } catch { refused = error }
        #expect(refused?.errno == .addressInUse)
        // the refusal logged its line without a commit; the next commit saves it
        #expect(store.rowsWritten == rows)
        try sysfs.write("/devices/vfio_ap/matrix/\(uuidA)/assign_control_domain", Array("1".utf8))
        store.close()
        let (again, saved) = try StateStore.open(path: s.path, profile: .seed, fresh: try APHost(.seedExample))
        again.close()
        #expect(saved?.log.suffix(2).map(\.event.line) == [
            "Userspace may not re-assign queue 05.0004 already assigned to \(uuidA)",
            "vfio_ap: mdev \(uuidA): control_domain 0001 assigned",
        ])
    }

    /// What comes back after a restart: the host, the log's tail (the newest
    /// 1000 entries, numbered on), the QMP sockets of guests that still run.
    @Test func theStateComesBack() throws {
        let s = try Scratch()
        let (runtime, store, sysfs) = try runtime(s)
        for n in 0..<3 { try sysfs.write(create, Array(uuid(n).utf8)) }
        try sysfs.write("/devices/vfio_ap/matrix/\(uuid(1))/assign_adapter", Array("5".utf8))
        try sysfs.write("/devices/vfio_ap/matrix/\(uuid(1))/assign_domain", Array("4".utf8))
        for g in ["g1", "g2"] {
            try runtime.startGuest(GuestStart(name: g, device: g == "g1" ? VfioAPDevice(
                id: "hostdev0", mdev: MdevUUID(parsing: uuid(1))!, sysfsdev: "/sys/devices/vfio_ap/matrix/\(uuid(1))") : nil))
            try store.setQMPSocket(g, "/run/\(g).qmp")
        }
        try runtime.perform("guest_state") { (h: inout APHost) throws(APError) in try h.putHeldState("g1", APQN(5, 4), "key-1") }
        try runtime.stopGuest("g2")
        for i in 0..<1100 { try sysfs.write("/bus/ap/apmask", Array((i % 2 == 0 ? "-9" : "+9").utf8)) }
        let host = runtime.snapshot, log = runtime.log()
        store.close()
        let (again, saved) = try StateStore.open(path: s.path, profile: .seed, fresh: try APHost(.seedExample))
        again.close()
        let doc = try #require(saved)
        #expect(doc.host == host)
        #expect(doc.host.vfio.mdevsInOrder.map(\.uuid.description) == [uuid(0), uuid(1), uuid(2)])
        #expect(doc.log == Array(log.suffix(1000)) && doc.log.count == 1000)
        #expect(doc.nextSequence == log.last!.sequence + 1)
        #expect(doc.qmpSockets == ["g1": "/run/g1.qmp"])
    }

    /// `PRAGMA integrity_check` runs beside a writer, on its own connection.
    @Test func theIntegrityCheckSaysOK() throws {
        let s = try Scratch()
        let (_, store, sysfs) = try runtime(s)
        try sysfs.write(create, Array(uuidA.utf8))
        #expect(store.integrityCheck() == ["ok"])
        store.close()
    }
}

