import APMatrixModel
import APMatrixSysfs
import Logging
import Synchronization
import Glibc

/// One logged event with the time it happened, seconds since the host booted (like dmesg).
public struct LogEntry: Sendable, Hashable {
    public let sequence: Int
    public let seconds: Double
    public let event: Event

    /// `[    12.345678] text`
    public var dmesgLine: String {
        let micros = Int((seconds * 1_000_000).rounded())
        let whole = String(micros / 1_000_000)
        let frac = String(micros % 1_000_000)
        return "[" + String(repeating: " ", count: max(0, 5 - whole.count)) + whole + "."
            + String(repeating: "0", count: 6 - frac.count) + frac + "] " + event.line
    }
}

/// One emulated host behind one lock: every edge (FUSE worker threads, the
/// control API, QMP monitors) enters the model through `perform`, so
/// operations are serialized and no reader ever sees a torn state.
public final class Emulator: Sendable {
    struct State {
        var host: APHost
        var log: [LogEntry] = []
        var nextSequence = 1
        var observers: [Int: @Sendable ([LogEntry]) -> Void] = [:]
        var nextObserver = 0
        var instrumentation = Instrumentation.none
    }

    private let state: Mutex<State>
    private let logger: Logger
    private let boot: timespec
    /// How many entries the event log keeps.
    public let logCapacity: Int

    public init(host: APHost, logger: Logger = Logger(label: "apmatrix"), logCapacity: Int = 10_000) {
        self.state = Mutex(State(host: host))
        self.logger = logger
        self.logCapacity = logCapacity
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        self.boot = now
    }

    private func secondsSinceBoot() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec - boot.tv_sec) + Double(now.tv_nsec - boot.tv_nsec) / 1e9
    }

    /// Runs one model operation under the lock and publishes its events,
    /// whether it succeeded or not (a refused mask change still logs).
    /// `kind` names the operation in the metrics.
    public func perform<T>(kind: String = "other", _ body: (inout APHost) throws(APError) -> T) throws(APError) -> T {
        typealias Outcome = (Result<T, APError>, [LogEntry], [@Sendable ([LogEntry]) -> Void], Instrumentation)
        let (result, entries, observers, instrumentation) = state.withLock { s -> Outcome in
            let r: Result<T, APError>
            do throws(APError) { r = .success(try body(&s.host)) } catch { r = .failure(error) }
            let events = s.host.takeEvents()
            guard !events.isEmpty else { return (r, [], [], s.instrumentation) }
            let t = secondsSinceBoot()
            var entries: [LogEntry] = []
            for e in events {
                entries.append(LogEntry(sequence: s.nextSequence, seconds: t, event: e))
                s.nextSequence += 1
            }
            s.log.append(contentsOf: entries)
            if s.log.count > logCapacity { s.log.removeFirst(s.log.count - logCapacity) }
            return (r, entries, Array(s.observers.values), s.instrumentation)
        }
        switch result {
        case .success: instrumentation.operation(kind, nil)
        case .failure(let e): instrumentation.operation(kind, e)
        }
        for e in entries {
            if e.event.isKernelText { logger.warning("\(e.event.line)") } else { logger.info("\(e.event.line)") }
        }
        if !entries.isEmpty { for o in observers { o(entries) } }
        return try result.get()
    }

    /// A consistent copy of the host, to read from without holding the lock.
    public var snapshot: APHost { state.withLock { $0.host } }

    /// The event log, oldest first; only entries after `sequence` when given.
    public func log(after sequence: Int = 0) -> [LogEntry] {
        state.withLock { s in s.log.filter { $0.sequence > sequence } }
    }

    /// Calls `observer` with every batch of new log entries, outside the lock.
    /// Returns a token for `removeObserver`.
    public func addObserver(_ observer: @escaping @Sendable ([LogEntry]) -> Void) -> Int {
        state.withLock { s in
            s.nextObserver += 1
            s.observers[s.nextObserver] = observer
            return s.nextObserver
        }
    }

    public func removeObserver(_ token: Int) {
        _ = state.withLock { $0.observers.removeValue(forKey: token) }
    }

    /// How many observers are registered (a disconnected client's must not stay).
    public var observerCount: Int { state.withLock { $0.observers.count } }

    /// Where operations and FUSE requests are reported from now on.
    public func instrument(_ instrumentation: Instrumentation) {
        state.withLock { $0.instrumentation = instrumentation }
    }

    public var instrumentation: Instrumentation { state.withLock { $0.instrumentation } }

    // MARK: the sysfs edge (the host's tree unless another view is given)

    public func node(_ path: String, in view: any SysfsView = SysfsTree.hostView) -> Node? {
        state.withLock { view.node(path, in: $0.host) }
    }

    public func children(_ path: String, in view: any SysfsView = SysfsTree.hostView) -> [String]? {
        state.withLock { view.children(path, in: $0.host) }
    }

    public func readlink(_ path: String, in view: any SysfsView = SysfsTree.hostView) -> String? {
        guard case .symlink(let target)? = node(path, in: view) else { return nil }
        return target
    }

    /// Renders an attribute (one open of a sysfs file).
    public func read(_ path: String, in view: any SysfsView = SysfsTree.hostView) throws(APError) -> [UInt8] {
        let host = snapshot
        return try view.read(path, in: host)
    }

    /// One `write()` to an attribute: one store.
    public func write(_ path: String, _ bytes: [UInt8], in view: any SysfsView = SysfsTree.hostView) throws(APError) {
        let attribute: String? = if case .attribute? = node(path, in: view) { path.split(separator: "/").last.map(String.init) } else { nil }
        try perform(kind: "sysfs:" + (attribute ?? "(no attribute)")) { (host: inout APHost) throws(APError) in
            try view.write(path, bytes, in: &host)
        }
    }
}
