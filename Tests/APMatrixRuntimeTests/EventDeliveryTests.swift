import APMatrixModel
import APMatrixRuntime
import APMatrixTesting
import Foundation
import Synchronization
import Testing

/// The one mechanism that delivers events: every subscriber gets every
/// entry, in sequence order, exactly once, whatever the concurrency.
@Suite struct EventDeliveryTests {
    final class Received: Sendable {
        let sequences = Mutex<[Int]>([])
    }

    @Test func concurrentOperationsReachEverySubscriberInOrderOnce() throws {
        let runtime = Runtime(host: try APHost(.seedExample))
        let sysfs = SysfsEndpoint(runtime)
        let start = runtime.log().last?.sequence ?? 0
        let early = Received(), late = Received()
        let a = runtime.subscribe(after: start) { e in early.sequences.withLock { $0 += e.map(\.sequence) } }
        defer { a.cancel() }
        let done = Atomic(0)
        for w in 0..<4 {
            Thread {
                for i in 0..<250 {
                    // Adapters 8-11 are not in the LPAR: every write changes apmask and logs one line.
                    try? sysfs.write("/bus/ap/apmask", Array((i % 2 == 0 ? "-\(w + 8)" : "+\(w + 8)").utf8))
                }
                done.add(1, ordering: .releasing)
            }.start()
        }
        // A subscriber that joins midway gets the backlog after its cursor, then the rest.
        usleep(2000)
        let b = runtime.subscribe(after: start) { e in late.sequences.withLock { $0 += e.map(\.sequence) } }
        defer { b.cancel() }
        while done.load(ordering: .acquiring) < 4 { usleep(1000) }
        let expected = Array((start + 1)...(start + 1000))
        #expect(early.sequences.withLock { $0 } == expected)
        #expect(late.sequences.withLock { $0 } == expected)
        #expect(runtime.log(after: start).map(\.sequence) == expected)
    }

    @Test func aCancelledSubscriptionHearsNothingMore() throws {
        let runtime = Runtime(host: try APHost(.seedExample))
        let got = Received()
        let s = runtime.subscribe(after: nil) { e in got.sequences.withLock { $0 += e.map(\.sequence) } }
        try SysfsEndpoint(runtime).write("/bus/ap/apmask", Array("-8".utf8))
        #expect(got.sequences.withLock { $0.count } == 1)
        #expect(runtime.subscriberCount == 1)
        s.cancel()
        #expect(runtime.subscriberCount == 0)
        try SysfsEndpoint(runtime).write("/bus/ap/apmask", Array("+8".utf8))
        #expect(got.sequences.withLock { $0.count } == 1)
    }
}
