/// The relay's tables in PostgreSQL, migrated one version at a time under an advisory lock, so
/// that several relays starting at once migrate once; a relay refuses a schema newer than it
/// knows. The same model as the SQLite store, with a lease on each room so that replicas
/// share the work: at most one delivery per room in flight anywhere.
package enum PostgresSchema {
    /// The version this build writes.
    package static let version = 1
    /// The advisory lock key that serialises migrations (any constant the relay alone uses).
    static let migrationLock = 0x6861_7070_7972_656C  // "happyrel"
    /// The advisory lock that lets one replica at a time purge old records.
    static let purgeLock = 0x6861_7070_7970_7267  // "happyprg"

    /// Deletes at most `limit` deliveries that `condition` (an SQL condition over the
    /// parameters `$1…` of `values`; `limit` is bound after them) selects, each with its
    /// attempts, in the caller's transaction; returns how many, and how many of those were dead.
    static func deleteDeliveries(
        _ connection: PostgresConnection, where condition: String, _ values: [PostgresValue], limit: Int
    ) throws(PostgresError) -> (deleted: Int, dead: Int) {
        let rows = try connection.query(
            """
            WITH chosen AS (SELECT seq, id FROM deliveries WHERE \(condition) LIMIT $\(values.count + 1)),
            attempts_gone AS (DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM chosen)),
            gone AS (DELETE FROM deliveries WHERE seq IN (SELECT seq FROM chosen) RETURNING state)
            SELECT count(*), count(*) FILTER (WHERE state = 'dead') FROM gone
            """, values + [.integer(limit)])
        return (rows.integer(0, 0), rows.integer(0, 1))
    }

    /// Session settings of the relay's connections (the writer's, the lookups', the gauges'
    /// and the operators'): the planner takes the relay's indexes even while a table's
    /// statistics say it is small (a statement with no index to use still scans). Every statement there is built on an index; a queue table grows from nothing
    /// in seconds, long before autovacuum analyzes it, and plans made (and cached with the
    /// prepared statements) while it was small scanned it whole on every statement: a new relay
    /// under load ran at a tenth of its speed for its first minute.
    package static let servingSettings = ["SET enable_seqscan TO off"]

    /// Brings the schema to the current version; returns the version found before.
    @discardableResult
    package static func migrate(_ connection: PostgresConnection) throws(PostgresError) -> Int {
        try connection.execute("BEGIN")
        do throws(PostgresError) {
            try connection.query("SELECT pg_advisory_xact_lock($1)", [.integer(migrationLock)])
            try connection.execute("CREATE TABLE IF NOT EXISTS happyrelay_schema (version INTEGER NOT NULL)")
            let current = try storedVersion(connection)
            if current < 1 {
                try connection.execute(
                    """
                    CREATE TABLE deliveries (
                        seq BIGSERIAL PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        route TEXT NOT NULL,
                        credential TEXT NOT NULL,
                        room_id TEXT NOT NULL,
                        call BYTEA NOT NULL,
                        request TEXT NOT NULL,
                        body BYTEA,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        accepted_at BIGINT NOT NULL,
                        next_attempt_at BIGINT NOT NULL,
                        last_reason TEXT,
                        redeliveries INTEGER NOT NULL DEFAULT 0
                    );
                    -- Payloads are kept for replay, rarely read: stored out of line uncompressed
                    -- (compressing every 3 KB order cost PostgreSQL more than storing it).
                    ALTER TABLE deliveries ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN request SET STORAGE EXTERNAL;
                    CREATE INDEX deliveries_finished ON deliveries (state, next_attempt_at);
                    CREATE INDEX deliveries_room ON deliveries (credential, room_id, seq) WHERE state = 'pending';
                    CREATE TABLE rooms (
                        credential TEXT NOT NULL, room_id TEXT NOT NULL, head_seq BIGINT NOT NULL, due_at BIGINT NOT NULL,
                        lease_owner TEXT, lease_until BIGINT,
                        PRIMARY KEY (credential, room_id)
                    );
                    CREATE INDEX rooms_due ON rooms (due_at);
                    CREATE INDEX rooms_lease ON rooms (lease_until) WHERE lease_until IS NOT NULL;
                    CREATE TABLE dedupe_digests (key BYTEA PRIMARY KEY, first_id TEXT NOT NULL, expires_at BIGINT NOT NULL);
                    CREATE INDEX dedupe_expiry ON dedupe_digests (expires_at);
                    CREATE TABLE bindings (
                        kind TEXT NOT NULL, value TEXT NOT NULL, uuid TEXT NOT NULL, room_id TEXT NOT NULL,
                        created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (kind, value)
                    );
                    CREATE INDEX bindings_expiry ON bindings (expires_at);
                    CREATE TABLE attempts (
                        delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at BIGINT NOT NULL, outcome TEXT NOT NULL,
                        reason TEXT NOT NULL, http_status INTEGER, code INTEGER, message TEXT, seq BIGSERIAL PRIMARY KEY
                    );
                    CREATE INDEX attempts_delivery ON attempts (delivery_id);
                    CREATE TABLE relay_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                    """)
            }
            // One row, whether there was one before or none.
            try connection.execute("DELETE FROM happyrelay_schema")
            try connection.query("INSERT INTO happyrelay_schema (version) VALUES ($1)", [.integer(version)])
            try connection.execute("COMMIT")
            return current
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    /// Whether the database holds the relay's tables, at this version's schema, for operators'
    /// tools, which neither create nor upgrade it (as for SQLite, only `serve` and `store copy`
    /// do): false when it has none, so that a mistyped URL is reported rather than given a new
    /// empty store; a schema of another version is refused with both versions and what to do.
    package static func requireCurrent(_ connection: PostgresConnection, url: String) throws(PostgresError) -> Bool {
        guard try connection.query("SELECT to_regclass('happyrelay_schema')::text").text(0, 0) != nil else { return false }
        let current = try storedVersion(connection)
        guard current == version else {
            throw PostgresError(
                "the store \(PostgresURL.redacted(url)) has schema \(current), this happyrelay's is \(version): start this version's "
                    + "`happyrelay serve` on it once (it upgrades the store at start-up), then run this again")
        }
        return true
    }

    /// The version the database's schema is at (0 before the first migration); a newer one
    /// than this happyrelay knows is refused.
    private static func storedVersion(_ connection: PostgresConnection) throws(PostgresError) -> Int {
        let rows = try connection.query("SELECT version FROM happyrelay_schema")
        let current = rows.count == 0 ? 0 : rows.integer(0, 0)
        guard current <= version else {
            throw PostgresError("the store was written by a newer happyrelay (schema \(current), this one knows \(version))")
        }
        return current
    }
}
