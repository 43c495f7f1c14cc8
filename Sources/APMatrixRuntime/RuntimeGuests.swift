import APMatrixModel

/// A guest to start: what `apmatrix guest start` and `POST /guests` carry.
public struct GuestStart: Sendable {
    public var name: String
    /// A QEMU `-cpu` value; `host` when nil.
    public var cpu: String?
    public var device: VfioAPDevice?
    /// A unix socket for the guest's QMP monitor.
    public var qmp: String?
    /// Where to mount the guest's own `/sys`.
    public var sysfsMount: String?
    /// A Secure Execution guest.
    public var secure: Bool
    /// A migration destination (QEMU's `-incoming`): listening here, or later (`defer`).
    public var incoming: IncomingOption?

    public init(name: String, cpu: String? = nil, device: VfioAPDevice? = nil, qmp: String? = nil, sysfsMount: String? = nil,
                secure: Bool = false, incoming: IncomingOption? = nil) {
        self.name = name
        self.cpu = cpu
        self.device = device
        self.qmp = qmp
        self.sysfsMount = sysfsMount
        self.secure = secure
        self.incoming = incoming
    }
}

extension Runtime {
    // MARK: guests and what they own

    /// Starts a guest (SPEC §4), then listens for its incoming migration,
    /// opens its QMP monitor and mounts its tree if asked; if any fails the
    /// guest is stopped again.
    public func startGuest(_ r: GuestStart) throws(APError) {
        try perform({ "guest_start" }) { (h: inout APHost, now: Uptime) throws(APError) in
            let cpu = try CPUModel(parsing: r.cpu ?? "host", facilities: h.firmware.facilities)
            try h.startGuest(r.name, cpu: cpu, device: r.device, secure: r.secure, incoming: r.incoming != nil, at: now)
        }
        do {
            if case .listen(let uri) = r.incoming { try listenIncoming(r.name, on: uri) }
            if let path = r.qmp { try openMonitor(r.name, path: path) }
            if let dir = r.sysfsMount { try mountGuestTree(r.name, directory: dir) }
        } catch {
            try? stopGuest(r.name)
            throw error
        }
    }

    /// Stops a guest; its monitor closes and its tree is unmounted.
    public func stopGuest(_ name: String) throws(APError) {
        try perform("guest_stop") { (h: inout APHost) throws(APError) in try h.stopGuest(name) }
    }

    /// Opens the guest's QMP monitor and records its socket durably, so a
    /// restarted daemon reopens it.
    func openMonitor(_ guest: String, path: String) throws(APError) {
        guard let edges else { throw APError(.notSupported, "this runtime cannot open QMP monitors") }
        setMonitor(guest, try edges.openMonitor(self, guest: guest, path: path))
        do {
            try state.withLock { s throws(APError) in
                guard s.qmpSockets[guest] != path else { return }
                try store?.setQMPSocket(guest, path)
                s.qmpSockets[guest] = path
            }
        } catch {
            setMonitor(guest, nil)
            throw error
        }
    }

    /// Reopens the QMP monitors of the guests a state file brought back.
    /// Returns what could not be reopened (those guests run without a monitor).
    public func reopenMonitors() -> [String] {
        let sockets = state.withLock { s in s.qmpSockets.filter { s.host.guests[$0.key] != nil } }
        var failures: [String] = []
        for (guest, path) in sockets.sorted(by: { $0.key < $1.key }) {
            do throws(APError) { try openMonitor(guest, path: path) } catch { failures.append("guest \(guest): \(error.message)") }
        }
        return failures
    }

    /// The unix socket of the guest's QMP monitor, if it has one.
    public func monitorSocket(_ guest: String) -> String? { attachments.withLock { $0[guest]?.monitor?.location } }

    /// Where the guest's own tree is mounted, if it is.
    public func treeMountPoint(_ guest: String) -> String? { attachments.withLock { $0[guest]?.tree?.location } }

    /// Mounts the guest's own `/sys` (its AP bus as it has scanned it) at
    /// `directory`; one tree per guest, unmounted when the guest stops or
    /// the daemon exits.
    public func mountGuestTree(_ guest: String, directory: String) throws(APError) {
        _ = try read { h throws(APError) in try h.guest(guest) }
        guard let edges else { throw APError(.notSupported, "this runtime was started without FUSE: it cannot mount guest trees") }
        guard directory.hasPrefix("/") else {
            throw APError(.invalidArgument, "sysfs mount \(directory): give an absolute path (the daemon has its own working directory)")
        }
        if let existing = treeMountPoint(guest) {
            throw APError(.resourceBusy, "guest \(guest)'s tree is already mounted at \(existing); unmount it first")
        }
        let tree = try edges.mountTree(self, guest: guest, directory: directory)
        let kept = attachments.withLock { a -> Bool in
            guard a[guest]?.tree == nil else { return false }
            a[guest, default: GuestAttachments()].tree = tree
            return true
        }
        guard kept else {
            tree.close()
            throw APError(.resourceBusy, "guest \(guest)'s tree was mounted elsewhere meanwhile")
        }
        // The guest may have stopped while the tree was being mounted.
        if snapshot.guests[guest] == nil {
            closeOrphanedAttachments()
            throw APError(.noSuchFileOrDirectory, "guest \(guest) stopped while its tree was being mounted")
        }
    }

    /// Unmounts the guest's tree; ENOENT when it has none.
    public func unmountGuestTree(_ guest: String) throws(APError) {
        _ = try read { h throws(APError) in try h.guest(guest) }
        let tree = attachments.withLock { a -> (any GuestAttachment)? in
            defer { a[guest]?.tree = nil }
            return a[guest]?.tree
        }
        guard let tree else { throw APError(.noSuchFileOrDirectory, "guest \(guest) has no mounted tree") }
        tree.close()
    }

    /// Sets the guest's monitor, closing the one it replaces.
    private func setMonitor(_ guest: String, _ monitor: (any GuestAttachment)?) {
        let old = attachments.withLock { a -> (any GuestAttachment)? in
            defer { a[guest, default: GuestAttachments()].monitor = monitor }
            return a[guest]?.monitor
        }
        old?.close()
    }

    /// Closes the monitors and trees of guests that no longer run, whichever
    /// edge stopped them.
    func closeOrphanedAttachments() {
        let running = Set(snapshot.guests.keys)
        let gone = attachments.withLock { a -> [GuestAttachments] in
            let names = a.keys.filter { !running.contains($0) }
            return names.compactMap { a.removeValue(forKey: $0) }
        }
        for g in gone { g.close() }
    }
}
