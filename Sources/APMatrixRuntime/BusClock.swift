import APMatrixModel
import Dispatch
import Synchronization

/// Lets time pass for the AP buses, the host's and the guests': their
/// periodic scans (`config_time`) happen on the host's clock, and the SE
/// associations the firmware completes are logged. A tick only reads the
/// host; it becomes an operation only when a due scan finds something new or
/// an association completes, so an idle host, guests running or not, is
/// never changed (or saved) by time.
final class BusClock: Sendable {
    private let timer = Mutex<TimerBox?>(nil)

    /// A dispatch source may be cancelled from any thread.
    private final class TimerBox: @unchecked Sendable {
        let source: DispatchSourceTimer
        init(_ source: DispatchSourceTimer) { self.source = source }
    }

    /// Checks the buses' timers every `interval` seconds.
    func start(_ runtime: Runtime, interval: Double = 1) {
        let t = DispatchSource.makeTimerSource(queue: .global())
        let last = Mutex(runtime.clock.now())
        t.setEventHandler { [weak runtime] in
            guard let runtime else { return }
            let now = runtime.clock.now()
            let start = last.withLock { l in defer { l = now }; return l }
            guard runtime.read({ h in
                h.dueHostScan(from: start, to: now) != nil || !h.dueGuestScans(from: start, to: now).isEmpty
                    || !h.dueAssociations(from: start, to: now).isEmpty
            }) else { return }
            try? runtime.perform("clock") { (h: inout APHost) in
                h.advanceHostClock(from: start, to: now)
                h.advanceGuestClocks(from: start, to: now)
            }
        }
        t.schedule(deadline: .now() + interval, repeating: interval)
        t.resume()
        let box = TimerBox(t)
        timer.withLock { $0 = box }
    }

    func stop() {
        let box = timer.withLock { t in
            defer { t = nil }
            return t
        }
        box?.source.cancel()
    }
}
