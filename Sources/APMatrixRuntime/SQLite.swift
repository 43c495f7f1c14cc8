import CSQLite
import FoundationEssentials

/// What SQLite answered when it refused: its message and result code.
struct SQLiteError: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    var description: String { "\(message) (SQLite error \(code))" }
}

/// A value bound to or read from a statement.
enum SQLValue: Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    var text: String? { if case .text(let s) = self { return s } else { return nil } }
    var integer: Int64? { if case .integer(let i) = self { return i } else { return nil } }
}

/// One connection to an SQLite database (the system's libsqlite3), with
/// its prepared statements kept by their text. Used by one thread at a
/// time: the store's under the runtime's lock, the others by their owner.
final class SQLiteConnection: @unchecked Sendable {
    let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    /// Opens `path`; `create` makes it if missing (never with `readOnly`).
    init(path: String, readOnly: Bool, create: Bool = false) throws(SQLiteError) {
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0))
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: message)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        for s in statements.values { sqlite3_finalize(s) }
        sqlite3_close_v2(handle)
    }

    private func failure(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Runs one or more statements without parameters.
    func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw failure(rc) }
    }

    /// Runs one statement with `values` bound to its parameters, in order.
    func run(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) {
        _ = try query(sql, values, collect: false)
    }

    /// The rows one statement answers.
    func rows(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> [[SQLValue]] {
        try query(sql, values, collect: true)
    }

    /// The first column of the first row as bytes (a large text without a copy into a String).
    func data(_ sql: String) throws(SQLiteError) -> Data {
        let stmt = try prepared(sql)
        defer { sqlite3_reset(stmt) }
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_ROW else {
            if rc == SQLITE_DONE { return Data() }
            throw failure(rc)
        }
        guard let p = sqlite3_column_blob(stmt, 0) else { return Data() }
        return Data(bytes: p, count: Int(sqlite3_column_bytes(stmt, 0)))
    }

    /// The first column of the first row, or null.
    func value(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> SQLValue {
        try rows(sql, values).first?.first ?? .null
    }

    private func query(_ sql: String, _ values: [SQLValue], collect: Bool) throws(SQLiteError) -> [[SQLValue]] {
        let stmt = try prepared(sql)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .integer(let n): rc = sqlite3_bind_int64(stmt, index, n)
            case .real(let d): rc = sqlite3_bind_double(stmt, index, d)
            case .text(let s): rc = sqlite3_bind_text(stmt, index, s, -1, transient)
            }
            guard rc == SQLITE_OK else { throw failure(rc) }
        }
        var out: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { return out }
            guard rc == SQLITE_ROW else { throw failure(rc) }
            guard collect else { continue }
            out.append((0..<sqlite3_column_count(stmt)).map { column(stmt, $0) })
        }
    }

    private func column(_ stmt: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(stmt, i))
        case SQLITE_NULL: return .null
        default:
            guard let p = sqlite3_column_text(stmt, i) else { return .null }
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, i))), as: UTF8.self))
        }
    }

    private func prepared(_ sql: String) throws(SQLiteError) -> OpaquePointer {
        if let s = statements[sql] { return s }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw failure(rc) }
        statements[sql] = stmt
        return stmt
    }

    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    func transaction(_ body: () throws(SQLiteError) -> Void) throws(SQLiteError) {
        try execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            try body()
            try execute("COMMIT")
        } catch {
            // A failed COMMIT may already have rolled back; a second rollback then says so, harmlessly.
            _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }
}

/// SQLite copies a bound text at once (`SQLITE_TRANSIENT`, a macro Swift does not import).
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
