import APMatrixModel

/// What a guest can own besides its model state: a QMP monitor on a unix
/// socket and a mounted tree of its own `/sys`. The runtime asks its
/// `GuestEdges` to open them (the QMP and FUSE modules sit above the
/// runtime) and closes them when the guest stops, whichever edge stopped it.
public protocol GuestEdges: Sendable {
    /// Opens the guest's QMP monitor on the unix socket `path`.
    func openMonitor(_ runtime: Runtime, guest: String, path: String) throws(APError) -> any GuestAttachment
    /// Mounts the guest's own `/sys` at `directory` (created if missing).
    func mountTree(_ runtime: Runtime, guest: String, directory: String) throws(APError) -> any GuestAttachment
    /// Listens for the guest's incoming migration on `uri` (QEMU's
    /// `-incoming`); the attachment's location is the bound `tcp:HOST:PORT`.
    func listenIncoming(_ runtime: Runtime, guest: String, on uri: MigrationURI) throws(APError) -> any GuestAttachment
    /// Runs the guest's outgoing migration to `uri` (the model is in `setup`) by itself.
    func startOutgoing(_ runtime: Runtime, guest: String, to uri: MigrationURI)
}

extension GuestEdges {
    public func listenIncoming(_ runtime: Runtime, guest: String, on uri: MigrationURI) throws(APError) -> any GuestAttachment {
        throw APError(.notSupported, "this runtime has no migration channel")
    }

    public func startOutgoing(_ runtime: Runtime, guest: String, to uri: MigrationURI) {
        _ = try? runtime.perform({ "migration_failed" }) { (h: inout APHost, now: Uptime) throws(APError) in
            try h.failMigration(guest, "this runtime has no migration channel", at: now)
        }
    }
}

/// A QMP monitor or a mounted guest tree.
public protocol GuestAttachment: Sendable {
    /// The socket path or the canonical mount point.
    var location: String { get }
    /// Closes the socket or unmounts the tree. Idempotent.
    func close()
}

/// The attachments of one guest.
struct GuestAttachments: Sendable {
    var monitor: (any GuestAttachment)?
    var tree: (any GuestAttachment)?
    /// The listener of a migration destination.
    var incoming: (any GuestAttachment)?

    func close() {
        monitor?.close()
        tree?.close()
        incoming?.close()
    }
}
