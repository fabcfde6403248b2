import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// A failed SQLite call, with SQLite's own message.
package struct SQLiteError: Error, CustomStringConvertible {
    package let code: Int32
    package let description: String

    package init(code: Int32, description: String) {
        self.code = code
        self.description = description
    }

    /// SQLITE_FULL: the disk (or the file's size limit) has no room.
    package var isFull: Bool { code == SQLITE_FULL }

    /// SQLITE_ERROR: SQLite refused the statement itself (an SQL error, or a write that
    /// defensive mode forbids), not the disk or a lock.
    package var isStatementRefused: Bool { code == SQLITE_ERROR }
}

/// One SQLite connection. Not thread-safe by itself: its owner serialises access.
package final class SQLiteDatabase {
    private var handle: OpaquePointer?

    /// Set before the process's first connection opens (SQLite reads it once).
    private static let processSettings: Void = { _ = csqlite_disable_memory_statistics() }()

    /// The bytes SQLite counts as allocated: 0 while its memory statistics are off.
    static var countedMemory: Int64 { sqlite3_memory_used() }

    /// Opens (creating if needed) the database file.
    package init(path: String) throws(SQLiteError) {
        Self.processSettings
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw SQLiteError(code: status, description: "\(path): \(message)")
        }
        sqlite3_busy_handler(handle, { _, tries in
            // SQLite's own busy timeout sleeps longer and longer (up to 100 ms) between tries: a
            // writer whose turn has come (`beginImmediate`) would wait up to 100 ms longer than
            // the transaction before it. Tried every millisecond; given up after `busyTries`
            // (about 5 s).
            usleep(1000)
            return tries < SQLiteDatabase.busyTries ? 1 : 0
        }, nil)
    }

    /// How many times a busy database is tried again, a millisecond apart, before the
    /// statement fails with `SQLITE_BUSY`.
    static let busyTries: Int32 = 5000

    /// The writers' turnstile of this connection's file, opened by its first write
    /// transaction; nil for a database in memory.
    private lazy var turnstile: SQLiteWriteTurnstile? = {
        guard let name = sqlite3_db_filename(handle, "main"), name.pointee != 0 else { return nil }
        return SQLiteWriteTurnstile(databasePath: String(cString: name))
    }()

    /// Begins a write transaction (`BEGIN IMMEDIATE`) in turn with the other connections that
    /// write this file (`SQLiteWriteTurnstile`): beside a writer that commits back to back, a
    /// connection waits for one transaction, not until it happens to try in the moment between two.
    package func beginImmediate() throws(SQLiteError) {
        let hasTurn = turnstile?.take(tries: Self.busyTries) ?? false
        defer { if hasTurn { turnstile?.release() } }
        try execute("BEGIN IMMEDIATE")
    }

    /// Runs `body` in a write transaction begun in turn (`beginImmediate`): committed when it
    /// returns, rolled back when it throws. A write outside one would wait for SQLite's lock
    /// alone, and beside a busy writer seldom get it.
    package func writeTransaction<Result>(_ body: () throws(SQLiteError) -> Result) throws(SQLiteError) -> Result {
        try beginImmediate()
        do throws(SQLiteError) {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs statements that return no rows.
    package func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        guard status == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "error \(status)"
            sqlite3_free(message)
            throw SQLiteError(code: status, description: text)
        }
    }

    /// A prepared statement.
    package func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status) }
        return SQLiteStatement(statement: statement, database: self)
    }

    func error(_ status: Int32) -> SQLiteError {
        SQLiteError(code: status, description: String(cString: sqlite3_errmsg(handle)))
    }

    /// SQLite's defensive mode for this connection (some builds turn it on by default): the
    /// schema table cannot be written.
    package func setDefensive(_ on: Bool) {
        _ = csqlite_set_defensive(handle, on ? 1 : 0)
    }

    /// Whether the database file was deleted, renamed or replaced since this connection opened
    /// it (`SQLITE_FCNTL_HAS_MOVED`: its path no longer names the file the connection writes).
    package var fileHasMoved: Bool {
        var moved: Int32 = 0
        return sqlite3_file_control(handle, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved != 0
    }

    /// Rows changed by the last statement.
    package var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last row inserted on this connection.
    package var lastInsertedRowID: Int { Int(sqlite3_last_insert_rowid(handle)) }

    /// After each commit on this connection, SQLite calls `hook` on the committing thread with
    /// `context` and the write-ahead log's size in pages; nil removes it (`sqlite3_wal_hook`).
    package func setWALHook(
        _ hook: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32)?,
        context: UnsafeMutableRawPointer?
    ) {
        sqlite3_wal_hook(handle, hook, context)
    }

    /// Copies what it can of the write-ahead log into the database file without waiting for
    /// readers or writers (`SQLITE_CHECKPOINT_PASSIVE`); returns the log's size in pages and
    /// how many of them are now in the database file.
    @discardableResult
    package func checkpointPassively() throws(SQLiteError) -> (logPages: Int, checkpointedPages: Int) {
        var log: Int32 = 0
        var checkpointed: Int32 = 0
        let status = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &checkpointed)
        guard status == SQLITE_OK else { throw error(status) }
        return (Int(log), Int(checkpointed))
    }

    /// The first column of the first row of a query, as an integer.
    package func integer(_ sql: String) throws(SQLiteError) -> Int {
        let statement = try prepare(sql)
        guard try statement.step() else { return 0 }
        return statement.integer(0)
    }
}

/// A prepared statement; bind, step, read columns, reset.
package final class SQLiteStatement {
    private let statement: OpaquePointer
    private let database: SQLiteDatabase
    // SQLITE_TRANSIENT: SQLite copies bound text (the macro does not import).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit { sqlite3_finalize(statement) }

    /// Binds `values` (SQLite copies text and blobs: the statement may be stepped later).
    package func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .text(var text) where !text.isEmpty:
                // A String passed where C wants `const char *` is copied to the heap when it is
                // small (stored inline); its UTF-8 taken here never is.
                status = text.withUTF8 { utf8 in
                    utf8.withMemoryRebound(to: CChar.self) { chars in
                        sqlite3_bind_text(statement, index, chars.baseAddress, Int32(chars.count), Self.transient)
                    }
                }
            case .blob(let bytes) where !bytes.isEmpty:
                status = bytes.withUnsafeBytes { raw in
                    sqlite3_bind_blob(statement, index, raw.baseAddress, Int32(raw.count), Self.transient)
                }
            default: status = bindWithoutBytes(value, at: index)
            }
            guard status == SQLITE_OK else { throw database.error(status) }
        }
    }

    /// Binds a value that has no bytes to borrow: a number, NULL, empty text or an empty blob.
    private func bindWithoutBytes(_ value: SQLiteValue, at index: Int32) -> Int32 {
        switch value {
        case .integer(let number): sqlite3_bind_int64(statement, index, sqlite3_int64(number))
        // Empty text, not NULL (an empty string's UTF-8 may have no address).
        case .text: sqlite3_bind_text(statement, index, "", 0, Self.transient)
        // An empty BLOB, not NULL (a NULL pointer would bind NULL).
        case .blob: sqlite3_bind_zeroblob(statement, index, 0)
        case .null: sqlite3_bind_null(statement, index)
        }
    }

    /// Advances; true when a row is available.
    package func step() throws(SQLiteError) -> Bool {
        let status = sqlite3_step(statement)
        if status == SQLITE_ROW { return true }
        if status == SQLITE_DONE { return false }
        throw database.error(status)
    }

    /// Binds, runs to completion, resets. Text and blobs are bound where they are, not copied
    /// (the statement runs while they are borrowed), and unbound before it returns.
    package func run(_ values: [SQLiteValue]) throws(SQLiteError) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        if let failure = runBorrowing(values, from: 0) { throw failure }
    }

    /// Binds `values[index...]`, each inside the access to its bytes, and steps the statement to
    /// completion inside the innermost one; returns the first failure.
    private func runBorrowing(_ values: [SQLiteValue], from index: Int) -> SQLiteError? {
        guard index < values.count else {
            do throws(SQLiteError) {
                while try step() {}
                return nil
            } catch {
                return error
            }
        }
        let position = Int32(index + 1)
        switch values[index] {
        case .text(var text) where !text.isEmpty:
            return text.withUTF8 { utf8 in
                utf8.withMemoryRebound(to: CChar.self) { chars in
                    // No destructor (SQLITE_STATIC): SQLite reads the bytes where they are.
                    let status = sqlite3_bind_text(statement, position, chars.baseAddress, Int32(chars.count), nil)
                    return status == SQLITE_OK ? runBorrowing(values, from: index + 1) : database.error(status)
                }
            }
        case .blob(let bytes) where !bytes.isEmpty:
            return bytes.withUnsafeBytes { raw in
                let status = sqlite3_bind_blob(statement, position, raw.baseAddress, Int32(raw.count), nil)
                return status == SQLITE_OK ? runBorrowing(values, from: index + 1) : database.error(status)
            }
        case let value:
            let status = bindWithoutBytes(value, at: position)
            return status == SQLITE_OK ? runBorrowing(values, from: index + 1) : database.error(status)
        }
    }

    /// Ends the current read, releasing its snapshot of the database.
    package func reset() { sqlite3_reset(statement) }

    package func integer(_ column: Int32) -> Int { Int(sqlite3_column_int64(statement, column)) }

    /// Whether a column is NULL.
    package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    package func text(_ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(statement, column) else { return nil }
        // By length, not up to the first NUL.
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// A column's bytes (TEXT or BLOB) as they are stored, without decoding; empty for NULL.
    package func bytes(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// A value to bind.
package enum SQLiteValue {
    case integer(Int)
    case text(String)
    case blob([UInt8])
    case null
}
