// The host's tree lets the kernel cache its entries and invalidates them
// when they change: through the mount, a removed device is gone at once, a
// changed driver link reads its new target, and what is cached is used
// (a store on a known attribute costs open + write + release, no lookup).

import APMatrixModel
import APMatrixRuntime
import APMatrixTesting
import Foundation
import Glibc
import Synchronization
import Testing

/// Counts FUSE requests by operation.
final class RequestCounter: Sendable {
    let counts = Mutex<[FuseOperation: Int]>([:])
    var instrumentation: Instrumentation {
        Instrumentation(operation: { _, _ in }, fuseRequest: { [self] op, _ in counts.withLock { $0[op, default: 0] += 1 } })
    }
    /// The counts so far, and starts afresh. A request is counted after its
    /// reply, so the client may be ahead by one: wait for the last to land.
    func take() -> [FuseOperation: Int] {
        usleep(200_000)
        return counts.withLock { c in defer { c = [:] }; return c }
    }
}

extension MountTests {
    @Suite struct KernelCache {
        @Test func aRemovedMdevIsGoneAtOnceEverywhere() throws {
            try withMount { m in
                try createMdev(m, uuidA)
                let paths = [m.mdev(uuidA) + "/matrix", m.path("bus/mdev/devices/\(uuidA)/matrix"),
                             m.typeDir + "/devices/\(uuidA)/assign_adapter", m.path("kernel/iommu_groups/0/devices/\(uuidA)"),
                             m.path("bus/mdev/drivers/vfio_mdev/\(uuidA)")]
                for _ in 0..<3 { for p in paths { #expect(statErrno(p) == 0, "\(p)") } }   // now cached
                #expect(writeAttr(m.mdev(uuidA) + "/remove", "1") == .ok)
                for p in paths { #expect(statErrno(p) == ENOENT, "\(p) is still there after remove") }
                #expect(listDir(m.matrixDir)?.contains(uuidA) == false)
                try createMdev(m, uuidA)
                for p in paths { #expect(statErrno(p) == 0, "\(p) did not come back") }
            }
        }

        @Test func aQueueThatChangesDriverShowsItsNewLinks() throws {
            try withMount { m in
                let queue = m.path("devices/ap/card05/05.0004")
                for _ in 0..<3 {
                    #expect(linkTarget(queue + "/driver") == "../../../../bus/ap/drivers/cex4queue")
                    #expect(statErrno(queue + "/online") == 0)
                    #expect(statErrno(m.path("bus/ap/drivers/cex4queue/05.0004")) == 0)
                    #expect(statErrno(m.path("bus/ap/drivers/vfio_ap/05.0004")) == ENOENT)
                }
                #expect(writeAttr(m.path("bus/ap/apmask"), "-5") == .ok)
                #expect(linkTarget(queue + "/driver") == "../../../../bus/ap/drivers/vfio_ap")
                var st = stat()
                #expect(lstat(queue + "/driver", &st) == 0 && st.st_size == 34, "the link's size is its new target's length")
                #expect(statErrno(queue + "/online") == ENOENT)
                #expect(statErrno(m.path("bus/ap/drivers/cex4queue/05.0004")) == ENOENT)
                #expect(statErrno(m.path("bus/ap/drivers/vfio_ap/05.0004")) == 0)
                #expect(writeAttr(m.path("bus/ap/drivers/vfio_ap/unbind"), "05.0004") == .ok)
                #expect(statErrno(queue + "/driver") == ENOENT)
            }
        }

        @Test func anUnboundCardAndARemovedAdapterAreGone() throws {
            try withMount { m in
                let card = m.path("devices/ap/card06")
                for p in [card + "/type", card + "/driver", card + "/06.0004/online"] { #expect(statErrno(p) == 0, "\(p)") }
                #expect(writeAttr(m.path("bus/ap/drivers/cex4card/unbind"), "card06") == .ok)
                #expect(statErrno(card + "/type") == ENOENT)
                #expect(statErrno(card + "/driver") == ENOENT)
                #expect(statErrno(card + "/06.0004/online") == 0, "the queue keeps its own driver")
                try m.runtime.perform("firmware") { (h: inout APHost) throws(APError) in try h.removeAdapter(6) }
                for p in [card, card + "/06.0004", m.path("bus/ap/devices/card06"), m.path("bus/ap/devices/06.0004")] {
                    #expect(statErrno(p) == ENOENT, "\(p) is still there after the adapter went")
                }
            }
        }

        /// Lookups race with removals: whatever a lookup under way found, no
        /// stat after a remove has returned finds the mdev.
        @Test func lookupsRacingWithRemovalsNeverLeaveAStaleEntry() throws {
            try withMount { m in
                let stop = Atomic<Bool>(false)
                let path = m.mdev(uuidA) + "/matrix"
                let reader = Thread { while !stop.load(ordering: .relaxed) { _ = statErrno(path) } }
                reader.start()
                var stale = 0
                for _ in 0..<200 {
                    try createMdev(m, uuidA)
                    #expect(writeAttr(m.mdev(uuidA) + "/remove", "1") == .ok)
                    if statErrno(path) != ENOENT { stale += 1 }
                }
                stop.store(true, ordering: .relaxed)
                usleep(100_000)
                #expect(stale == 0, "\(stale) of 200 removals left a stale entry")
            }
        }

        /// Once its path is known, a store is open + write (+ release, which
        /// is not counted) and a read open + read: no lookup, no getattr.
        @Test func aKnownAttributeCostsNoLookup() throws {
            let counter = RequestCounter()
            try withMount(instrumentation: counter.instrumentation) { m in
                try applyV4Masks(m)
                try createMdev(m, uuidA)
                let assign = m.mdev(uuidA) + "/assign_adapter", matrix = m.mdev(uuidA) + "/matrix"
                #expect(writeAttr(assign, "5") == .ok)
                _ = readAttr(matrix)
                _ = counter.take()
                for _ in 0..<10 {
                    #expect(writeAttr(assign, "5") == .ok)
                    #expect(readAttr(matrix).errno == 0)
                }
                let c = counter.take()
                #expect(c[.open] == 20 && c[.write] == 10 && c[.read] == 20, "\(c)")
                #expect(c[.lookup] == nil && c[.getattr] == nil, "the kernel asked again: \(c)")
            }
        }
    }
}
