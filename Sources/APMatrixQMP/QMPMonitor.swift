import APMatrixModel
import APMatrixRuntime
import Dispatch
import Glibc
import Synchronization

/// The QMP monitor of one guest (SPEC §4): a unix socket speaking QEMU 8.2's
/// QMP well enough for `qemu.qmp`, `qmp-shell` and libvirt-style clients.
///
/// Every connection gets its own pthread that multiplexes reading requests
/// and writing replies/events with `poll`, so a client that stops reading
/// never blocks the runtime or another client: events are queued per
/// connection, never written from the thread that caused them.
public final class QMPMonitor: Sendable {
    let core: MonitorCore

    /// Listens on a unix socket for guest `guest` of `runtime`.
    ///
    /// Binding happens here so that a bad path or a socket in use is an error
    /// of the caller; connections are only served after `start()`.
    public init(runtime: Runtime, guest: String, socketPath: String) throws(QMPError) {
        core = try MonitorCore(runtime: runtime, guest: guest, socketPath: socketPath)
        core.subscribe()
    }

    /// The unix socket the monitor listens on.
    public var socketPath: String { core.socketPath }

    /// Starts the accept loop on its own pthread; a second call does nothing.
    public func start() { core.start() }

    /// Closes the listener and every connection, joins their threads, removes
    /// the socket file and the event subscription. Idempotent.
    public func stop() { core.stop() }

    deinit { core.stop() }

    /// Open connections (for tests: nothing may leak after a disconnect).
    var connectionCount: Int { core.state.withLock { $0.connections.count } }
}

/// One client connection: its socket, a wake-up pipe, and the bytes waiting
/// to be written. Shared between its own thread and the event delivery.
final class Connection: Sendable {
    struct State {
        var outbox: [UInt8] = []
        /// Events raised while this connection runs a command, sent after its reply.
        var held: [[UInt8]] = []
        var busy = false
        var negotiated = false
        /// Flush what is queued, then close (after `quit`).
        var closing = false
        /// The client stopped reading and the queue overflowed: drop it.
        var broken = false
        /// The wake pipe is still open (guards writes against a reused fd).
        var open = true
    }

    /// A client that leaves this much unread is dropped rather than grow memory.
    static let outboxLimit = 16 << 20

    let fd: Int32
    let wakeRead: Int32
    let wakeWrite: Int32
    let state = Mutex(State())

    init(fd: Int32, wake: (read: Int32, write: Int32)) {
        self.fd = fd
        self.wakeRead = wake.read
        self.wakeWrite = wake.write
    }

    static func frame(_ v: QJSON) -> [UInt8] { Array((v.serialized + "\r\n").utf8) }

    /// Queues an event for a negotiated client; held back while it runs a command.
    func sendEvent(_ bytes: [UInt8]) {
        state.withLock { s in
            guard s.open, s.negotiated, !s.broken else { return }
            if s.busy { s.held.append(bytes); return }
            s.outbox += bytes
            if s.outbox.count > Self.outboxLimit { s.broken = true }
            poke(wakeWrite)
        }
    }

    func enqueue(_ bytes: [UInt8]) {
        state.withLock { $0.outbox += bytes }
    }

    /// The reply of a command, then the events it raised, in one step.
    func finishCommand(_ reply: [UInt8], negotiated: Bool) {
        state.withLock { s in
            s.outbox += reply
            for e in s.held { s.outbox += e }
            s.held = []
            s.busy = false
            s.negotiated = negotiated
            if s.outbox.count > Self.outboxLimit { s.broken = true }
        }
    }

    func markClosing() {
        state.withLock { s in
            s.closing = true
            if s.open { poke(wakeWrite) }
        }
    }

    /// One non-blocking `send` of the queue; false when the peer is gone.
    func flushOnce() -> Bool {
        state.withLock { s in
            guard !s.outbox.isEmpty else { return true }
            let r = s.outbox.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if r > 0 { s.outbox.removeFirst(r); return true }
            return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        }
    }

    func closeAll() {
        state.withLock { s in
            s.open = false
            close(wakeRead)
            close(wakeWrite)
        }
        close(fd)
    }
}

/// Everything the monitor's threads share.
final class MonitorCore: Sendable {
    struct Entry {
        let connection: Connection
        var thread: pthread_t?
    }

    struct State {
        var started = false
        var stopping = false
        var acceptThread: pthread_t?
        var connections: [Int: Entry] = [:]
        var nextID = 0
        var subscription: Subscription?
        /// The guest's vfio-ap device as of the last delivered entry.
        var device: VfioAPDevice?
    }

    let commands: QMPCommands
    let socketPath: String
    let listenFD: Int32
    let stopPipe: (read: Int32, write: Int32)
    let socketID: (dev: UInt64, ino: UInt64)?
    let state = Mutex(State())

    init(runtime: Runtime, guest: String, socketPath: String) throws(QMPError) {
        guard let pipe = makePipe() else { throw QMPError.last("QMP socket \(socketPath): pipe") }
        let fd: Int32
        do { fd = try listenUnix(socketPath) } catch {
            close(pipe.read)
            close(pipe.write)
            throw error
        }
        commands = QMPCommands(runtime: runtime, guest: guest)
        self.socketPath = socketPath
        listenFD = fd
        stopPipe = pipe
        socketID = fileIdentity(socketPath).map { ($0.dev, $0.ino) }
    }

    var runtime: Runtime { commands.runtime }

    // MARK: events

    /// Entries logged from now on reach this monitor in sequence order
    /// (the runtime delivers them under its lock).
    func subscribe() {
        let device = runtime.snapshot.guests[commands.guest]?.device
        state.withLock { $0.device = device }
        let subscription = runtime.subscribe(after: nil) { [weak self] entries in self?.deliver(entries) }
        state.withLock { $0.subscription = subscription }
    }

    private func deliver(_ entries: [LogEntry]) {
        state.withLock { s in
            for e in entries {
                guard let message = translate(e.event, device: &s.device) else { continue }
                let bytes = Connection.frame(message)
                for c in s.connections.values { c.connection.sendEvent(bytes) }
            }
        }
    }

    private func broadcast(_ message: QJSON) {
        let bytes = Connection.frame(message)
        let connections = state.withLock { $0.connections.values.map(\.connection) }
        for c in connections { c.sendEvent(bytes) }
    }

    // MARK: lifecycle

    func start() {
        let go = state.withLock { s -> Bool in
            guard !s.started, !s.stopping else { return false }
            s.started = true
            return true
        }
        guard go else { return }
        let t = spawnThread { [self] in acceptLoop() }
        state.withLock { $0.acceptThread = t }
    }

    func stop() {
        // `quit` stops the guest on a connection thread, and the runtime then
        // closes this monitor: stop from elsewhere, as the thread must live
        // on to flush its last messages.
        let onOwnThread = state.withLock { s in
            s.connections.values.contains { $0.thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
        }
        if onOwnThread {
            DispatchQueue.global().async { self.stop() }
            return
        }
        let first = state.withLock { s -> (pthread_t?, Subscription?)? in
            guard !s.stopping else { return nil }
            s.stopping = true
            defer { s.acceptThread = nil; s.subscription = nil }
            return (s.acceptThread, s.subscription)
        }
        guard let (acceptThread, subscription) = first else { return }
        subscription?.cancel()
        // A byte left unread in the stop pipe keeps it readable: every poll wakes.
        poke(stopPipe.write)
        if let t = acceptThread { join(t) }
        let entries = state.withLock { s -> [Entry] in
            defer { s.connections = [:] }
            return Array(s.connections.values)
        }
        for e in entries { if let t = e.thread { join(t) } }
        close(listenFD)
        close(stopPipe.read)
        close(stopPipe.write)
        if let id = socketID, let now = fileIdentity(socketPath), now.dev == id.dev, now.ino == id.ino {
            unlink(socketPath)
        }
    }

    /// Joins a thread, or lets it go when it is the caller.
    private func join(_ t: pthread_t) {
        if pthread_equal(t, pthread_self()) != 0 { pthread_detach(t) } else { pthread_join(t, nil) }
    }

    private func acceptLoop() {
        while true {
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, -1)
            if n < 0 { if errno == EINTR { continue } else { return } }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else {
                if fds[0].revents & Int16(POLLERR | POLLNVAL) != 0 { return }
                continue
            }
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                switch errno {
                case EINTR, EAGAIN, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM: usleep(50_000); continue
                default: return
                }
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            guard let wake = makePipe() else { close(fd); usleep(50_000); continue }
            let c = Connection(fd: fd, wake: wake)
            let id = state.withLock { s -> Int? in
                guard !s.stopping else { return nil }
                s.nextID += 1
                s.connections[s.nextID] = Entry(connection: c, thread: nil)
                return s.nextID
            }
            guard let id else { c.closeAll(); return }
            if let t = spawnThread({ [self] in serve(c, id: id) }) {
                state.withLock { s in s.connections[id]?.thread = t }
            } else {
                state.withLock { s in _ = s.connections.removeValue(forKey: id) }
                c.closeAll()
            }
        }
    }

    // MARK: one connection

    private func serve(_ c: Connection, id: Int) {
        var splitter = JSONStreamSplitter()
        var session = QMPSession()
        var readOpen = true
        var buffer = [UInt8](repeating: 0, count: 65536)
        c.enqueue(Connection.frame(commands.greeting))

        loop: while true {
            let (pending, closing, broken) = c.state.withLock { ($0.outbox.count, $0.closing, $0.broken) }
            if broken { break }
            if (closing || !readOpen) && pending == 0 { break }
            let wantRead = readOpen && !closing && pending < (1 << 20)
            var fds = [
                pollfd(fd: c.fd, events: Int16((wantRead ? POLLIN : 0) | (pending > 0 ? POLLOUT : 0)), revents: 0),
                pollfd(fd: c.wakeRead, events: Int16(POLLIN), revents: 0),
                // A quitting client gets a few seconds to read its last
                // messages, even while the monitor stops (the runtime closes
                // it as soon as `quit` stopped the guest).
                pollfd(fd: stopPipe.read, events: Int16(closing ? 0 : POLLIN), revents: 0),
            ]
            let n = poll(&fds, 3, closing ? 5000 : -1)
            if n < 0 { if errno == EINTR { continue } else { break } }
            if n == 0 { break }
            if fds[2].revents != 0 { _ = c.flushOnce(); break }
            if fds[1].revents != 0 { drainPipe(c.wakeRead) }
            let re = fds[0].revents
            if re & Int16(POLLERR | POLLNVAL) != 0 { break }
            if re & Int16(POLLOUT) != 0, !c.flushOnce() { break }
            if wantRead && re & Int16(POLLIN | POLLHUP) != 0 {
                let r = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if r > 0 {
                    for message in splitter.feed(Array(buffer[0..<r])) {
                        // After `quit`, what else the client sent is not handled.
                        if handle(message, c, &session) { break }
                    }
                } else if r == 0 {
                    readOpen = false
                } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    break
                }
            } else if re & Int16(POLLHUP) != 0 && re & Int16(POLLOUT) == 0 {
                break
            }
        }

        // While stopping, stop() joins this thread; otherwise nobody will, so it lets itself go.
        let detach = state.withLock { s -> Bool in
            guard !s.stopping else { return false }
            s.connections[id] = nil
            return true
        }
        c.closeAll()
        if detach { pthread_detach(pthread_self()) }
    }

    /// Runs one request; true after `quit`.
    private func handle(_ message: Result<[UInt8], QMPStreamError>, _ c: Connection, _ session: inout QMPSession) -> Bool {
        c.state.withLock { $0.busy = true }
        switch commands.handle(message, session: &session) {
        case .reply(let r), .negotiated(let r):
            c.finishCommand(Connection.frame(r), negotiated: session.negotiated)
            return false
        case .quit(let r):
            c.finishCommand(Connection.frame(r), negotiated: session.negotiated)
            quit()
            return true
        }
    }

    /// QEMU's `quit`: SHUTDOWN to every client, the guest stops (its device
    /// is released, which raises DEVICE_DELETED; the runtime then closes
    /// this monitor), every connection closes.
    private func quit() {
        broadcast(QMPCommands.event("SHUTDOWN", .object([("guest", .bool(false)), ("reason", .string("host-qmp-quit"))])))
        let guest = commands.guest
        _ = try? runtime.perform("qmp:quit") { (host: inout APHost) throws(APError) in try host.stopGuest(guest) }
        let connections = state.withLock { $0.connections.values.map(\.connection) }
        for c in connections { c.markClosing() }
    }
}
