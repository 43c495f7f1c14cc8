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

    func close() {
        monitor?.close()
        tree?.close()
    }
}
