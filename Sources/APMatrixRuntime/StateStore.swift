import APMatrixModel
import CSQLite
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// The state database of `serve --state FILE` (SPEC §6): the host kept in
/// SQLite (`StateSchema`), one row per object. Each model operation that
/// changed something is one transaction that writes only the rows of what
/// it changed (`HostChanges`), committed before the operation answers.
///
/// Durability: WAL mode with `synchronous=FULL`, so a commit returns only
/// after the WAL is fsynced (with `NORMAL` a commit in WAL mode is not
/// synced, and a power cut could lose it). Checkpoints run in the
/// background on their own connection (`Checkpointer`), only after commits.
/// The WAL index is SQLite's shared-memory file (`-shm`), so the `sqlite3`
/// shell can read the state while the daemon runs.
public final class StateStore: Sendable {
    public let path: String
    /// How many event-log entries the database keeps.
    public static let logTail = 1000
    /// `PRAGMA application_id`: "APMX", so that a database is known as ours.
    static let applicationID: Int64 = 0x4150_4D58
    /// `PRAGMA user_version`, the schema. The JSON state file was version 1.
    public static let schemaVersion: Int64 = 2

    private struct Open {
        let writer: StateWriter
    }
    private let connection: Mutex<Open?>
    private let checkpointer: Checkpointer

    private init(path: String) throws(SQLiteError) {
        self.path = path
        let db = try SQLiteConnection(path: path, readOnly: false)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")
        let checkpointer = try Checkpointer(path: path)
        checkpointer.watch(db)
        self.checkpointer = checkpointer
        connection = Mutex(Open(writer: StateWriter(db: db, encoder: .state)))
    }

    // MARK: opening

    /// Opens the state at `path` for a host of `profile`, and what it holds.
    /// A new state (none at `path`, or `reset`) holds `fresh`, or the
    /// imported version-1 document; it is built beside `path` and renamed
    /// into place, so a crash never leaves half a state. An existing state
    /// is first read read-only and refused, untouched, when it is not ours,
    /// of a newer schema or another profile, damaged, or unreachable.
    public static func open(path: String, profile: Profile, fresh: APHost, reset: Bool = false,
                            importing imported: StateDocument? = nil) throws(StateDocument.Refused) -> (StateStore, StateDocument?) {
        let exists = access(path, F_OK) == 0
        if exists && imported != nil && !reset {
            throw StateDocument.Refused.file(path, "it exists already, and --import-state makes a new state (add --reset to replace it)")
        }
        var saved: StateDocument?
        if exists && !reset {
            saved = try load(path: path, profile: profile)
        } else {
            let doc = imported ?? StateDocument(profile: profile, host: fresh, log: [], nextSequence: 1, qmpSockets: [:])
            do throws(SQLiteError) { try create(path, doc) } catch {
                throw StateDocument.Refused(description: "state file \(path): cannot create it: \(error)")
            }
            saved = imported
        }
        do throws(SQLiteError) { return (try StateStore(path: path), saved) } catch {
            throw StateDocument.Refused(description: "state file \(path): cannot open it for writing: \(error)")
        }
    }

    /// Reads and checks the state at `path` without changing it.
    static func load(path: String, profile: Profile) throws(StateDocument.Refused) -> StateDocument {
        func refuse(_ why: String) -> StateDocument.Refused { .file(path, why) }
        let head = firstBytes(path, 100)
        if head.isEmpty { throw refuse("empty (0 bytes): not an apmatrix state database") }
        if head.first == UInt8(ascii: "{") {
            throw refuse("a version-1 JSON state file; import it once into a state database with `apmatrix serve --state NEW.db --import-state \(path)`")
        }
        guard head.starts(with: Array("SQLite format 3\0".utf8)) else { throw refuse("not an SQLite database") }
        guard head.count == 100 else { throw refuse("truncated (\(head.count) bytes: not even an SQLite header)") }
        let db: SQLiteConnection, app: Int64, version: Int64
        do throws(SQLiteError) {
            db = try SQLiteConnection(path: path, readOnly: true)
            app = try db.value("PRAGMA application_id").integer ?? 0
            version = try db.value("PRAGMA user_version").integer ?? 0
        } catch {
            throw refuse("cannot be read: \(error)")
        }
        guard app == applicationID else { throw refuse("an SQLite database, but not an apmatrix state (application_id \(app))") }
        guard version <= schemaVersion else {
            throw refuse("written by a newer apmatrix (schema version \(version); this one reads up to \(schemaVersion))")
        }
        guard version == schemaVersion else { throw refuse("not an apmatrix state (schema version \(version))") }
        let check: [String], recorded: String?, json: Data
        do throws(SQLiteError) {
            check = try db.rows("PRAGMA quick_check").compactMap { $0.first?.text }
            recorded = try db.value("SELECT value FROM meta WHERE key = 'profile'").text
            json = check == ["ok"] && recorded == profile.rawValue ? try db.data(StateSchema.load) : Data()
        } catch {
            throw refuse("cannot be read: \(error)")
        }
        guard check == ["ok"] else { throw refuse("damaged: \(check.first ?? "?") (PRAGMA quick_check)") }
        guard recorded == profile.rawValue else { throw StateDocument.otherProfile(recorded, profile, path) }
        // The header was checked above: the document (tens of MB for 65,536 mdevs) is decoded once.
        return try StateDocument.decodeBody(json, path: path)
    }

    /// The first `count` bytes of a file (fewer if it is shorter).
    private static func firstBytes(_ path: String, _ count: Int) -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { Glibc.close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
        return Array(buf.prefix(max(0, n)))
    }

    /// Builds a state holding `doc` beside `path`, then renames it into place.
    private static func create(_ path: String, _ doc: StateDocument) throws(SQLiteError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temporary = (directory == "/" ? "" : directory) + "/." + name + ".new"
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(temporary + suffix) }
        do {
            let db = try SQLiteConnection(path: temporary, readOnly: false, create: true)
            try db.execute("PRAGMA synchronous=FULL; PRAGMA application_id=\(applicationID); PRAGMA user_version=\(schemaVersion)")
            let w = StateWriter(db: db, encoder: .state)
            try db.transaction { () throws(SQLiteError) in
                try db.execute(StateSchema.create)
                try db.run("INSERT INTO meta(key, value) VALUES('format', ?1), ('profile', ?2)",
                           [.text(StateDocument.formatName), .text(doc.profile.rawValue)])
                try w.write(.everything(in: doc.host), of: doc.host)
                try w.append(doc.log)
                for (guest, socket) in doc.qmpSockets.sorted(by: { $0.key < $1.key }) where doc.host.guests[guest] != nil {
                    try w.setQMPSocket(guest, socket)
                }
            }
        }
        // A WAL of an earlier state must never be applied to the new one.
        for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
        guard rename(temporary, path) == 0 else { throw SQLiteError(code: 0, message: "rename: \(String(cString: strerror(errno)))") }
        unlink(temporary + "-journal")
        let dfd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            Glibc.close(dfd)
        }
    }

    // MARK: writing

    /// Saves what one operation changed and the log entries it made, in one
    /// transaction; throws, having written nothing, when it cannot.
    func commit(_ changes: HostChanges, of host: APHost, log entries: [LogEntry]) throws(APError) {
        try write { w throws(SQLiteError) in
            try w.write(changes, of: host)
            try w.append(entries)
        }
    }

    /// Records the QMP socket of a guest (dropped with the guest's row).
    func setQMPSocket(_ guest: String, _ socket: String) throws(APError) {
        try write { w throws(SQLiteError) in try w.setQMPSocket(guest, socket) }
    }

    private func write(_ body: (StateWriter) throws(SQLiteError) -> Void) throws(APError) {
        try connection.withLock { open throws(APError) in
            guard let w = open?.writer else { throw APError(.ioError, "state file \(path): closed") }
            do throws(SQLiteError) { try w.db.transaction { () throws(SQLiteError) in try body(w) } } catch {
                throw APError(.ioError, "state file \(path): \(error)")
            }
        }
    }

    /// Rows inserted, updated or deleted since the store opened (SQLite's `total_changes`).
    var rowsWritten: Int64 {
        connection.withLock { open in open.map { sqlite3_total_changes64($0.writer.db.handle) } ?? 0 }
    }

    // MARK: checking and closing

    /// SQLite's `PRAGMA integrity_check` of the state, on a connection of its
    /// own so writers go on: `["ok"]`, or what it found wrong.
    public func integrityCheck() -> [String] {
        do throws(SQLiteError) {
            let db = try SQLiteConnection(path: path, readOnly: true)
            return try db.rows("PRAGMA integrity_check").compactMap { $0.first?.text }
        } catch {
            return ["cannot check: \(error)"]
        }
    }

    /// Waits for a running checkpoint and closes the database; the last
    /// close checkpoints the WAL into the file.
    public func close() {
        checkpointer.stop()
        connection.withLock { $0 = nil }
    }
}

/// Copies the WAL back into the database in the background, on a connection
/// of its own, each time commits have added `threshold` pages to the WAL:
/// a writer does not wait for a checkpoint, and a host that writes nothing
/// never checkpoints (it runs only after a commit). A checkpoint beside a
/// steady stream of commits cannot finish the WAL, which then grows; past
/// `limit` pages the writer checkpoints it itself, once, after its commit,
/// so the next commit starts the WAL again from its beginning.
final class Checkpointer: Sendable {
    static let threshold: Int32 = 1000
    static let limit: Int32 = 8 * threshold
    private let connection: Mutex<SQLiteConnection?>
    private let queue = DispatchQueue(label: "apmatrix.checkpoint")
    private let pending = Atomic<Bool>(false)
    /// The WAL's size (pages) at which the next checkpoint starts.
    private let nextAt = Atomic<Int32>(threshold)

    init(path: String) throws(SQLiteError) {
        let db = try SQLiteConnection(path: path, readOnly: false)
        try db.execute("PRAGMA synchronous=FULL")
        connection = Mutex(db)
    }

    /// Installs the WAL hook on the writing connection (which also turns
    /// off SQLite's own checkpoints at commit, inside the lock).
    func watch(_ db: SQLiteConnection) {
        sqlite3_wal_hook(db.handle, { context, writer, _, pages in
            Unmanaged<Checkpointer>.fromOpaque(context!).takeUnretainedValue().committed(pages: pages, writer: writer)
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func committed(pages: Int32, writer: OpaquePointer?) {
        // A WAL started again from its beginning counts again from there.
        if pages < nextAt.load(ordering: .relaxed) - Self.threshold { nextAt.store(Self.threshold, ordering: .relaxed) }
        if pages >= Self.limit {
            _ = sqlite3_wal_checkpoint_v2(writer, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            return
        }
        guard pages >= nextAt.load(ordering: .relaxed) else { return }
        nextAt.store(pages + Self.threshold, ordering: .relaxed)
        guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async { [self] in
            connection.withLock { db in
                if let db { _ = sqlite3_wal_checkpoint_v2(db.handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil) }
            }
            pending.store(false, ordering: .releasing)
        }
    }

    func stop() {
        queue.sync {}
        connection.withLock { $0 = nil }
    }
}

extension JSONEncoder {
    /// Rows' documents: keys sorted, so equal objects have equal documents.
    static var state: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
