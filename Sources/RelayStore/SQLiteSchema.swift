import FoundationEssentials

#if canImport(Glibc)
import Glibc
import RelayMapping
#endif

/// The SQLite database of a data directory: where it is, how it is created (private to its
/// owner), and its schema, migrated one version at a time (`PRAGMA user_version`).
package enum SQLiteSchema {
    /// The file inside the data directory.
    package static let fileName = "happyrelay.sqlite"
    /// The version this build writes; a newer file is refused.
    package static let version = 10

    /// Each room's oldest pending delivery, `MIN(seq)` (its head), read in the order of the index
    /// of pending rows: without `INDEXED BY` SQLite picks the index by state and sorts every
    /// pending row (seven times slower at 100,000). Completes a `SELECT … MIN(seq) …`.
    static let pendingByRoom = "FROM deliveries INDEXED BY deliveries_room WHERE state = 'pending' GROUP BY credential, room_id"

    /// Writes a delivery's request and body (`seq`, `request`, `body`), beside its row.
    static let insertPayload = "INSERT INTO payloads (seq, request, body) VALUES (?, ?, ?)"

    /// Deletes at most `limit` deliveries that `condition` (an SQL condition over `values`)
    /// selects, each with its attempts (its payload goes by trigger), in the caller's
    /// transaction; returns how many, and how many of those were dead.
    static func deleteDeliveries(
        _ database: SQLiteDatabase, where condition: String, _ values: [SQLiteValue], limit: Int
    ) throws(SQLiteError) -> (deleted: Int, dead: Int) {
        let chosen = try database.prepare("SELECT seq, id, state = 'dead' FROM deliveries WHERE \(condition) LIMIT \(limit)")
        try chosen.bind(values)
        var rows: [(seq: Int, id: String)] = []
        var dead = 0
        while try chosen.step() {
            rows.append((chosen.integer(0), chosen.text(1) ?? ""))
            dead += chosen.integer(2)
        }
        chosen.reset()
        let attempts = try database.prepare("DELETE FROM attempts WHERE delivery_id = ?")
        let delivery = try database.prepare("DELETE FROM deliveries WHERE seq = ?")
        for (seq, id) in rows {
            try attempts.run([.text(id)])
            try delivery.run([.integer(seq)])
        }
        return (rows.count, dead)
    }

    /// The database file in `directory`.
    package static func path(in directory: String) -> String {
        FilePath.join(directory, fileName)
    }

    /// Creates the data directory (0700) and the database file (0600) when missing: they hold
    /// payloads with names, phone numbers and e-mail addresses. SQLite gives its WAL and
    /// shared-memory files the database file's mode; files an earlier version created with the
    /// default mode are tightened too.
    package static func prepareFile(in directory: String) throws(SQLiteError) -> String {
        let isDirectory = FilePath.isDirectory(directory)
        if isDirectory == nil {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SQLiteError(code: -1, description: "cannot create \(directory)")
            }
        } else if isDirectory == false {
            throw SQLiteError(code: -1, description: "\(directory) is not a directory")
        }
        let path = path(in: directory)
        // Created only when missing (`O_EXCL`): an existing file is never opened and closed
        // here, as closing any descriptor of a file drops every POSIX lock this process holds
        // on it, SQLite's too (another connection of this process may be reading it).
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
        } else if errno != EEXIST {
            throw SQLiteError(code: -1, description: "cannot create \(path): \(String(cString: strerror(errno)))")
        } else if access(path, R_OK | W_OK) != 0 {
            throw SQLiteError(code: -1, description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        for file in [path, path + "-wal", path + "-shm"] { _ = chmod(file, 0o600) }
        return path
    }

    /// Opens an existing queue for an operator's command, which never migrates it: a relay of
    /// an earlier version may be serving the file, and its statements would fail on the
    /// upgraded schema (version 9 dropped a table such a relay writes on every commit). Only
    /// `serve` upgrades a queue, at start-up.
    package static func requireCurrent(_ database: SQLiteDatabase, path: String) throws(SQLiteError) {
        try database.execute("PRAGMA synchronous=FULL")
        let current = try knownVersion(of: database)
        guard current == version else {
            throw SQLiteError(
                code: -1,
                description: "the queue \(path) has schema \(current), this happyrelay's is \(version): stop the relay of the earlier version "
                    + "that serves it and start this version's `happyrelay serve` once (it upgrades the queue at start-up), then run this again")
        }
    }

    /// The file's schema version; a newer one than this happyrelay knows is refused.
    private static func knownVersion(of database: SQLiteDatabase) throws(SQLiteError) -> Int {
        let current = try database.integer("PRAGMA user_version")
        guard current <= version else {
            throw SQLiteError(code: -1, description: "the queue was written by a newer happyrelay (schema \(current))")
        }
        return current
    }

    /// Brings the schema to the current version, one step at a time.
    package static func migrate(_ database: SQLiteDatabase) throws(SQLiteError) {
        try database.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        let current = try knownVersion(of: database)
        if current < 1 {
            try database.execute(
                """
                BEGIN;
                CREATE TABLE deliveries (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    route TEXT NOT NULL,
                    credential TEXT NOT NULL,
                    room_id TEXT NOT NULL,
                    call TEXT NOT NULL,
                    request TEXT NOT NULL,
                    state TEXT NOT NULL \(stateCheckAsList),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    accepted_at INTEGER NOT NULL,
                    next_attempt_at INTEGER NOT NULL,
                    last_reason TEXT
                );
                CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
                CREATE INDEX deliveries_room ON deliveries (state, credential, room_id, seq);
                PRAGMA user_version = 1;
                COMMIT;
                """)
        }
        if current < 2 {
            // Version 2: dedupe keys outlive a restart.
            try database.execute(
                """
                BEGIN;
                CREATE TABLE dedupe (key TEXT PRIMARY KEY, first_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
                PRAGMA user_version = 2;
                COMMIT;
                """)
        }
        if current < 3 {
            // Version 3: bindings, keyed by (kind, value).
            try database.execute(
                """
                BEGIN;
                CREATE TABLE bindings (
                    kind TEXT NOT NULL, value TEXT NOT NULL, uuid TEXT NOT NULL, room_id TEXT NOT NULL,
                    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (kind, value)
                ) WITHOUT ROWID;
                CREATE INDEX bindings_expiry ON bindings (expires_at);
                PRAGMA user_version = 3;
                COMMIT;
                """)
        }
        if current < 4 {
            // Version 4: dedupe keys stored as 16-byte digests (a sender chooses a key's length),
            // and a table for the write probe that tells when a failing disk works again.
            try database.execute(
                """
                BEGIN;
                CREATE TABLE dedupe_digests (key BLOB PRIMARY KEY, first_id TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE INDEX dedupe_expiry ON dedupe_digests (expires_at);
                CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                """)
            do throws(SQLiteError) {
                let old = try database.prepare("SELECT key, first_id, expires_at FROM dedupe")
                let insert = try database.prepare("INSERT OR REPLACE INTO dedupe_digests (key, first_id, expires_at) VALUES (?, ?, ?)")
                var rows: [(DedupeDigest, String, Int)] = []
                while try old.step() {
                    // Version 2 keys are "route NUL key".
                    let parts = (old.text(0) ?? "").split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2 else { continue }
                    rows.append((DedupeDigest(route: String(parts[0]), key: String(parts[1])), old.text(1) ?? "", old.integer(2)))
                }
                old.reset()
                for (digest, id, expires) in rows { try insert.run([.blob(digest.bytes), .text(id), .integer(expires)]) }
                try database.execute("DROP TABLE dedupe; PRAGMA user_version = 4; COMMIT;")
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
        }
        if current < 5 {
            // Version 5: the head of each room's queue in a table of its own, so that finding the
            // next due delivery costs O(log n) however long the backlog; request bodies as BLOBs.
            try database.execute(
                """
                BEGIN;
                CREATE TABLE rooms (
                    credential TEXT NOT NULL, room_id TEXT NOT NULL, head_seq INTEGER NOT NULL, due_at INTEGER NOT NULL,
                    PRIMARY KEY (credential, room_id)
                ) WITHOUT ROWID;
                CREATE INDEX rooms_due ON rooms (due_at);
                INSERT INTO rooms (credential, room_id, head_seq, due_at)
                    SELECT credential, room_id, MIN(seq), 0 FROM deliveries WHERE state = 'pending' GROUP BY credential, room_id;
                UPDATE rooms SET due_at = (SELECT next_attempt_at FROM deliveries WHERE seq = rooms.head_seq);
                ALTER TABLE deliveries ADD COLUMN body BLOB;
                PRAGMA user_version = 5;
                COMMIT;
                """)
        }
        if current < 6 {
            // Version 6: every attempt of a delivery with HappyTalk's answer, in order, a replay's
            // included (for `deliveries show`), and what the serving relay records for the CLI (its mappings folder).
            try database.execute(
                """
                BEGIN;
                CREATE TABLE attempts (
                    delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL, outcome TEXT NOT NULL,
                    reason TEXT NOT NULL, http_status INTEGER, code INTEGER, message TEXT
                );
                CREATE INDEX attempts_delivery ON attempts (delivery_id);
                CREATE TABLE relay_state (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                PRAGMA user_version = 6;
                COMMIT;
                """)
        }
        if current < 7 {
            // Version 7: a delivery's request and body in a table of their own, written once:
            // recording an outcome rewrote the whole row, its 3 KB payload with it. A deleted
            // delivery takes its payload along (the trigger), whoever deletes it.
            try database.execute(
                """
                BEGIN;
                CREATE TABLE payloads (seq INTEGER PRIMARY KEY, request TEXT NOT NULL, body BLOB);
                INSERT INTO payloads (seq, request, body) SELECT seq, request, body FROM deliveries;
                ALTER TABLE deliveries DROP COLUMN request;
                ALTER TABLE deliveries DROP COLUMN body;
                CREATE TRIGGER payload_goes_with_its_delivery AFTER DELETE ON deliveries
                    BEGIN DELETE FROM payloads WHERE seq = old.seq; END;
                PRAGMA user_version = 7;
                COMMIT;
                """)
        }
        if current < 8 {
            // Version 8: the rooms' index holds pending deliveries only (PostgreSQL's has from
            // the start). With delivered rows in it, each webhook wrote two more of its pages,
            // scattered over the whole history: one when accepted, one when delivered.
            try database.execute(
                """
                BEGIN;
                DROP INDEX IF EXISTS deliveries_room;
                CREATE INDEX deliveries_room ON deliveries (credential, room_id, seq) WHERE state = 'pending';
                PRAGMA user_version = 8;
                COMMIT;
                """)
        }
        if current < 9 {
            // Version 9: the rooms' heads are kept in memory by the relay that serves
            // (`RoomHeads`), derived from the pending rows when it starts; the table cost each
            // webhook two more rows written, and two more index pages per commit.
            try database.execute(
                """
                BEGIN;
                DROP TABLE IF EXISTS rooms;
                PRAGMA user_version = 9;
                COMMIT;
                """)
        }
        if current < 10 { try rewriteStateCheck(database) }
    }

    /// The state's CHECK of version 1, and the same constraint as comparisons.
    static let stateCheckAsList = "CHECK (state IN ('pending', 'delivered', 'dead'))"
    static let stateCheckAsComparisons = "CHECK (state = 'pending' OR state = 'delivered' OR state = 'dead')"

    /// Version 10: the deliveries' state CHECK written as comparisons. SQLite tests `IN` of
    /// three values against a temporary b-tree that it builds for every row it checks: 2 µs of
    /// each insert and each change of state, on the one writer. Both forms accept the same rows,
    /// so only the table's definition changes, the way SQLite documents for changing a CHECK
    /// constraint without copying the table (ALTER TABLE, "other kinds of table schema
    /// changes"): the new text written with `writable_schema` on, and a new `schema_version`
    /// so that every connection reads it again. A SQLite that forbids writing the schema
    /// (defensive mode) keeps the `IN` form, which accepts the same rows.
    static func rewriteStateCheck(_ database: SQLiteDatabase) throws(SQLiteError) {
        try database.writeTransaction { () throws(SQLiteError) in
            // Read again inside the write lock: another process may have migrated meanwhile.
            guard try database.integer("PRAGMA user_version") < 10 else { return }
            try rewriteDeliveriesDefinition(database, replacing: stateCheckAsList, with: stateCheckAsComparisons)
            try database.execute("PRAGMA user_version = 10")
        }
    }

    /// Replaces `old` by `new` in the deliveries table's definition, inside the caller's
    /// transaction, and raises `schema_version` so that every connection reads it again. A
    /// SQLite in defensive mode refuses to write the schema: the definition then stays as it is.
    static func rewriteDeliveriesDefinition(_ database: SQLiteDatabase, replacing old: String, with new: String) throws(SQLiteError) {
        let schemaVersion = try database.integer("PRAGMA schema_version")
        try database.execute("PRAGMA writable_schema = ON")
        defer { try? database.execute("PRAGMA writable_schema = OFF") }
        do throws(SQLiteError) {
            let rewrite = try database.prepare("UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'deliveries'")
            try rewrite.run([.text(old), .text(new)])
        } catch {
            // Defensive mode refuses the statement (SQLITE_ERROR) and writes nothing; a
            // failing disk or a lock is still an error.
            guard error.isStatementRefused else { throw error }
            return
        }
        try database.execute("PRAGMA schema_version = \(schemaVersion + 1)")
    }
}
