import APMatrixModel
import APMatrixRuntime

/// The migration channel's entry points, for the runtime's `GuestEdges`.
public enum MigrationChannel {
    /// Listens for `guest`'s incoming migration on `uri` (port 0 picks one).
    public static func listen(_ runtime: Runtime, guest: String, on uri: MigrationURI) throws(APError) -> any GuestAttachment {
        try IncomingMigration.listen(runtime, guest: guest, on: uri)
    }

    /// Runs `guest`'s outgoing migration to `uri` on a thread of its own.
    public static func migrate(_ runtime: Runtime, guest: String, to uri: MigrationURI) {
        OutgoingMigration.start(runtime, guest: guest, to: uri)
    }
}
