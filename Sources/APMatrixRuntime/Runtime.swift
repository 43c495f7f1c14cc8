import APMatrixModel
import APMatrixSysfs
import Dispatch
import Logging
import Synchronization

/// The one runtime of an emulated host. It owns the model behind one lock,
/// the event log and its delivery, the AP buses' clock, the durable state and
/// the edges a guest owns (its QMP monitor, its sysfs tree). FUSE worker
/// threads, the control API and QMP monitors call only this.
///
/// Every change is one model operation (`perform`) under the lock: the
/// operation runs, its events are numbered, stamped with the host's clock,
/// appended to the log and handed to every subscriber in sequence order,
/// and, with a state store, the change is saved before anyone hears of it.
public final class Runtime: Sendable {
    struct State {
        var host: APHost
        var log: EventLog
        var subscribers: [Int: Subscriber] = [:]
        /// Caches of the host's tree (a FUSE mount's kernel caches), told which entries an operation removed.
        var treeCaches: [Int: @Sendable (Set<String>) -> Void] = [:]
        var nextSubscriber = 0
        /// Guest name → QMP socket path, kept in the state database.
        var qmpSockets: [String: String] = [:]
        /// The last log entry the state database has.
        var savedLogThrough = 0
        var shuttingDown = false
    }

    let state: Mutex<State>
    let logger: Logger
    /// Seconds since the emulated host booted.
    public let clock: HostClock
    /// Where every change is saved before it is acknowledged (`serve --state`).
    public let store: StateStore?
    /// Where operations and FUSE requests are counted (`/metrics`).
    public let instrumentation: Instrumentation
    let edges: (any GuestEdges)?
    let attachments = Mutex<[String: GuestAttachments]>([:])
    let busClock = BusClock()

    /// With `resuming`, the host, log and QMP sockets of a state file, the
    /// clock continuing where the log stopped. `edges` opens QMP monitors and
    /// mounts guest trees (nil: a runtime without them, as in tests).
    public init(host: APHost, logger: Logger = Logger(label: "apmatrix"), logCapacity: Int = 10_000,
                store: StateStore? = nil, resuming saved: StateDocument? = nil,
                instrumentation: Instrumentation = .none, edges: (any GuestEdges)? = nil) {
        var s = State(host: saved?.host ?? host, log: EventLog(capacity: logCapacity))
        if let saved {
            s.log.restore(saved.log, nextSequence: saved.nextSequence)
            s.qmpSockets = saved.qmpSockets
            s.savedLogThrough = saved.nextSequence - 1
        }
        state = Mutex(s)
        self.logger = logger
        self.store = store
        self.instrumentation = instrumentation
        self.edges = edges
        clock = HostClock(resumingAt: saved?.log.last?.seconds ?? 0)
    }

    // MARK: operations

    /// Runs one model operation under the lock at the host's time `now`,
    /// which also stamps its events, and publishes the events whether it
    /// succeeded or not (a refused mask change still logs). With a state
    /// store, what the operation changed (`HostChanges`, taken from the
    /// model, never a comparison of the whole host) and its log entries are
    /// committed before it is acknowledged; a change that cannot be saved
    /// is undone and fails with EIO. An operation that changed nothing (a
    /// refusal, a read, a scan that found nothing) writes nothing; its log
    /// entries are saved with the next change. `kind` names the operation
    /// in the metrics; it is read after `body` ran.
    public func perform<T>(_ kind: () -> String, _ body: (inout APHost, Uptime) throws(APError) -> T) throws(APError) -> T {
        let (result, guestStopped, forget) = state.withLock { s -> (Result<T, APError>, Bool, (Set<String>, [@Sendable (Set<String>) -> Void])) in
            let now = clock.now()
            let guests = s.host.guests.count
            var r: Result<T, APError>
            do throws(APError) { r = .success(try body(&s.host, now)) } catch { r = .failure(error) }
            // The guests take the AP configuration change events the operation signalled at once.
            if s.host.hasPendingConfigChanges { s.host.handleConfigChanges(at: now) }
            assert(s.host.checkInvariants().isEmpty, "invariants broken: \(s.host.checkInvariants())")
            let changes = s.host.takeChanges()
            let entries = s.log.append(s.host.takeEvents(), at: now)
            if let store, !changes.isEmpty {
                do throws(APError) {
                    try store.commit(changes, of: s.host, log: s.log.entries(after: s.savedLogThrough))
                    s.savedLogThrough = s.log.nextSequence - 1
                } catch {
                    s.host.revert(changes)
                    s.log.removeLast(entries.count)
                    return (.failure(APError(.ioError, "\(error.message); the change was undone")), false, ([], []))
                }
            }
            for name in changes.guests.keys where s.host.guests[name] == nil { s.qmpSockets[name] = nil }
            if !entries.isEmpty {
                let batch = Array(entries)
                for sub in s.subscribers.values { sub.deliver(batch) }
            }
            let gone = s.treeCaches.isEmpty || changes.isEmpty ? [] : SysfsTree.changedEntryNames(changes, in: s.host)
            return (r, s.host.guests.count < guests, (gone, gone.isEmpty ? [] : Array(s.treeCaches.values)))
        }
        // Outside the lock (a cache may have to wait for a lookup in flight,
        // which needs the lock), and before the caller hears of the change.
        for cache in forget.1 { cache(forget.0) }
        switch result {
        case .success: instrumentation.operation(kind(), nil)
        case .failure(let e): instrumentation.operation(kind(), e)
        }
        if guestStopped { closeOrphanedAttachments() }
        return try result.get()
    }

    /// `perform` of an operation that does not depend on the time.
    public func perform<T>(_ kind: String, _ body: (inout APHost) throws(APError) -> T) throws(APError) -> T {
        try perform({ kind }) { (h: inout APHost, _: Uptime) throws(APError) in try body(&h) }
    }

    /// Reads the host under the lock, without copying it.
    public func read<T, E: Error>(_ body: (borrowing APHost) throws(E) -> T) throws(E) -> T {
        try state.withLock { s throws(E) in try body(s.host) }
    }

    /// A consistent copy of the host, to read from without holding the lock.
    public var snapshot: APHost { state.withLock { $0.host } }

    /// SQLite's integrity check of the state database (`["ok"]` when sound), nil without one.
    public func checkStateFile() -> [String]? { store?.integrityCheck() }

    // MARK: the event log

    /// The event log, oldest first; only entries after `sequence` when given.
    public func log(after sequence: Int = 0) -> [LogEntry] {
        state.withLock { $0.log.entries(after: sequence) }
    }

    /// Delivers every log entry after `sequence` (nil: from now on) to
    /// `deliver`, exactly once and in sequence order: the backlog at once,
    /// then each new batch as it is logged. `deliver` runs under the
    /// runtime's lock: it must only hand the entries on (queue, yield) and
    /// must never call the runtime.
    public func subscribe(after sequence: Int?, _ deliver: @escaping @Sendable ([LogEntry]) -> Void) -> Subscription {
        state.withLock { s in
            if let sequence {
                let backlog = s.log.entries(after: sequence)
                if !backlog.isEmpty { deliver(backlog) }
            }
            s.nextSubscriber += 1
            s.subscribers[s.nextSubscriber] = Subscriber(deliver: deliver)
            return Subscription(id: s.nextSubscriber, runtime: self)
        }
    }

    /// Registers a cache of the host's tree: after every operation that
    /// removed entries of the tree or changed their kind, `forget` gets their
    /// names (`SysfsTree.changedEntryNames`), outside the lock and before
    /// the operation returns, so that no one sees a stale entry after it.
    public func cacheTree(_ forget: @escaping @Sendable (Set<String>) -> Void) -> Subscription {
        state.withLock { s in
            s.nextSubscriber += 1
            s.treeCaches[s.nextSubscriber] = forget
            return Subscription(id: s.nextSubscriber, runtime: self)
        }
    }

    func unsubscribe(_ id: Int) {
        state.withLock { s in
            s.subscribers[id] = nil
            s.treeCaches[id] = nil
        }
    }

    /// How many subscribers are registered (a disconnected client's must not stay).
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    // MARK: lifetime

    /// Starts what runs by itself: the log writer on stderr and the buses' clock.
    public func start() {
        let writer = LogWriter(logger: logger)
        _ = subscribe(after: nil) { writer.write($0) }
        busClock.start(self)
    }

    /// Stops the buses' clock, every QMP monitor and guest tree (the daemon is exiting).
    public func shutdown() {
        busClock.stop()
        state.withLock { $0.shuttingDown = true }
        let all = attachments.withLock { a in
            defer { a.removeAll() }
            return Array(a.values)
        }
        for a in all { a.close() }
    }
}

/// One registered consumer of the event log.
struct Subscriber: Sendable {
    let deliver: @Sendable ([LogEntry]) -> Void
}

/// A registration with `Runtime.subscribe`; `cancel` ends it.
public struct Subscription: Sendable {
    let id: Int
    let runtime: Runtime

    public func cancel() { runtime.unsubscribe(id) }
}

/// Seconds since the emulated host booted, from the monotonic clock.
public struct HostClock: Sendable {
    let boot: ContinuousClock.Instant

    /// A clock that reads `seconds` now (a resumed host continues its log's time).
    public init(resumingAt seconds: Double = 0) {
        boot = ContinuousClock.now - .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    public func now() -> Uptime {
        let d = ContinuousClock.now - boot
        return Uptime(seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
}

/// Writes log entries to the logger (stderr) on its own queue, in order,
/// so that no request waits for a terminal or a pipe. Entries are gathered
/// for a few milliseconds and written together: waking a thread for every
/// operation cost more than the operation.
final class LogWriter: Sendable {
    let logger: Logger
    let queue = DispatchQueue(label: "apmatrix.log")
    private let pending = Mutex<(entries: [LogEntry], scheduled: Bool)>(([], false))
    static let gathering: DispatchTimeInterval = .milliseconds(5)

    init(logger: Logger) { self.logger = logger }

    func write(_ entries: [LogEntry]) {
        let schedule = pending.withLock { p -> Bool in
            p.entries += entries
            defer { p.scheduled = true }
            return !p.scheduled
        }
        if schedule { queue.asyncAfter(deadline: .now() + Self.gathering) { self.drain() } }
    }

    private func drain() {
        let batch = pending.withLock { p -> [LogEntry] in
            defer { p = ([], false) }
            return p.entries
        }
        for e in batch {
            if e.event.isKernelText { logger.warning("\(e.event.line)") } else { logger.info("\(e.event.line)") }
        }
    }
}
