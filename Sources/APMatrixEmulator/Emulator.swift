import APMatrixModel
import APMatrixSysfs
import Logging
import Synchronization
import Glibc

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
        /// Guest name → QMP socket path, kept in the state file.
        var qmpSockets: [String: String] = [:]

        func document() -> StateDocument {
            StateDocument(profile: host.profile, host: host, log: log.suffix(StateStore.logTail),
                          nextSequence: nextSequence, qmpSockets: qmpSockets.filter { host.guests[$0.key] != nil })
        }
    }

    private let state: Mutex<State>
    private let logger: Logger
    private let boot: timespec
    /// How many entries the event log keeps.
    public let logCapacity: Int
    /// Where every change is saved before it is acknowledged (`serve --state`).
    public let store: StateStore?

    /// With `resuming`, the host, log and QMP sockets of a state file, the
    /// log's clock continuing where it stopped.
    public init(host: APHost, logger: Logger = Logger(label: "apmatrix"), logCapacity: Int = 10_000,
                store: StateStore? = nil, resuming saved: StateDocument? = nil) {
        var s = State(host: saved?.host ?? host)
        if let saved {
            s.log = saved.log
            s.nextSequence = saved.nextSequence
            s.qmpSockets = saved.qmpSockets
        }
        self.state = Mutex(s)
        self.logger = logger
        self.logCapacity = logCapacity
        self.store = store
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let elapsed = saved?.log.last?.seconds ?? 0
        now.tv_sec -= Int(elapsed)
        now.tv_nsec -= Int((elapsed - elapsed.rounded(.down)) * 1e9)
        if now.tv_nsec < 0 { now.tv_sec -= 1; now.tv_nsec += 1_000_000_000 }
        self.boot = now
    }

    /// Saves the current state (at start, so that the file exists and is valid).
    public func save() throws(APError) {
        guard let store else { return }
        try state.withLock { s throws(APError) in try Self.save(s, to: store) }
    }

    private static func save(_ s: State, to store: StateStore) throws(APError) {
        do throws(Files.Failure) { try store.save(s.document()) } catch {
            throw APError(.ioError, "state file \(store.path): \(error)")
        }
    }

    /// Records the QMP socket of a guest, durably, so a restarted daemon reopens it.
    public func setQMPSocket(_ guest: String, _ path: String) throws(APError) {
        try state.withLock { s throws(APError) in
            s.qmpSockets[guest] = path
            if let store { try Self.save(s, to: store) }
        }
    }

    /// The QMP sockets of the guests, as saved.
    public var qmpSockets: [String: String] {
        state.withLock { s in s.qmpSockets.filter { s.host.guests[$0.key] != nil } }
    }

    private func secondsSinceBoot() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec - boot.tv_sec) + Double(now.tv_nsec - boot.tv_nsec) / 1e9
    }

    /// The host's time now, the same clock as the log's.
    public var now: Uptime { Uptime(seconds: secondsSinceBoot()) }

    /// Runs one model operation under the lock and publishes its events,
    /// whether it succeeded or not (a refused mask change still logs).
    /// With a state store, a change is saved before it is acknowledged; a
    /// change that cannot be saved is undone and fails with EIO.
    /// `kind` names the operation in the metrics.
    public func perform<T>(kind: String = "other", _ body: (inout APHost) throws(APError) -> T) throws(APError) -> T {
        typealias Outcome = (Result<T, APError>, [LogEntry], [@Sendable ([LogEntry]) -> Void], Instrumentation)
        let (result, entries, observers, instrumentation) = state.withLock { s -> Outcome in
            // Only a daemon with a state file needs the host as it was (to compare, and to undo).
            let before = store == nil ? nil : s.host
            let r: Result<T, APError>
            do throws(APError) { r = .success(try body(&s.host)) } catch { r = .failure(error) }
            let events = s.host.takeEvents()
            assert(s.host.checkInvariants().isEmpty, "invariants broken: \(s.host.checkInvariants())")
            let t = secondsSinceBoot()
            var entries: [LogEntry] = []
            for e in events {
                entries.append(LogEntry(sequence: s.nextSequence, seconds: t, event: e))
                s.nextSequence += 1
            }
            s.log.append(contentsOf: entries)
            // Trim in batches: dropping from the front of a full log on every
            // operation would move the whole log each time.
            if s.log.count > logCapacity + logCapacity / 4 { s.log.removeFirst(s.log.count - logCapacity) }
            if let store, let before, case .success = r, s.host != before {
                do throws(APError) { try Self.save(s, to: store) } catch {
                    s.host = before
                    s.log.removeLast(min(entries.count, s.log.count))
                    s.nextSequence -= entries.count
                    return (.failure(APError(.ioError, "\(error.message); the change was undone")), [], [], s.instrumentation)
                }
            }
            guard !entries.isEmpty else { return (r, [], [], s.instrumentation) }
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
        return try view.read(path, in: host, at: now)
    }

    /// One `write()` to an attribute: one store.
    public func write(_ path: String, _ bytes: [UInt8], in view: any SysfsView = SysfsTree.hostView) throws(APError) {
        let attribute: String? = if case .attribute? = node(path, in: view) { path.split(separator: "/").last.map(String.init) } else { nil }
        try perform(kind: "sysfs:" + (attribute ?? "(no attribute)")) { (host: inout APHost) throws(APError) in
            try view.write(path, bytes, in: &host, at: now)
        }
    }
}
