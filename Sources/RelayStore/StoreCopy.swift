import FoundationEssentials

/// Moving a relay from SQLite to PostgreSQL: what a data directory holds that the relays still
/// need — pending and dead deliveries with their attempts, unexpired dedupe keys and bindings —
/// copied into the shared store in one transaction, in acceptance order. Running it again copies
/// nothing twice: rows already there (the same delivery id, key or binding) are left as they are.
/// Delivered records (history only) stay behind.
package enum StoreCopy {
    /// What a copy did.
    package struct Report: Equatable, Sendable {
        package var pending = 0
        package var dead = 0
        package var attempts = 0
        package var dedupeKeys = 0
        package var bindings = 0
        /// Rows skipped because the destination had them already.
        package var deliveriesPresent = 0
        package var dedupeKeysPresent = 0
        package var bindingsPresent = 0

        package init() {}
    }

    /// A failure, with what it concerns (never the database password).
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// Copies from the SQLite store in `directory` into the PostgreSQL database at `url`.
    /// Deliveries copied into a room that already has pending ones in PostgreSQL go after them:
    /// copy before the relays on PostgreSQL take that room's traffic.
    package static func copy(fromDataDirectory directory: String, to url: String, now: UnixMilliseconds) throws -> Report {
        let path = SQLiteSchema.path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { throw Failure(description: "no delivery queue in \(directory)") }
        let source = try SQLiteDatabase(path: path)
        try SQLiteSchema.migrate(source)
        let destination = try PostgresConnection(url: url)
        try PostgresSchema.migrate(destination)
        var report = Report()
        try destination.execute("BEGIN")
        do {
            let deliveries = try source.prepare(
                """
                SELECT d.id, d.route, d.credential, d.room_id, d.call, p.request, p.body, d.state, d.attempts, d.accepted_at, d.next_attempt_at,
                    d.last_reason
                FROM deliveries d LEFT JOIN payloads p ON p.seq = d.seq WHERE d.state IN ('pending', 'dead') ORDER BY d.seq
                """)
            let attempts = try source.prepare(
                "SELECT attempt, at, outcome, reason, http_status, code, message FROM attempts WHERE delivery_id = ? ORDER BY rowid")
            while try deliveries.step() {
                let id = deliveries.text(0) ?? ""
                let state = deliveries.text(7) ?? ""
                let copied = try destination.query(
                    """
                    INSERT INTO deliveries (id, route, credential, room_id, call, request, body, state, attempts, accepted_at, next_attempt_at, last_reason)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING RETURNING seq
                    """,
                    [
                        .text(id), .text(deliveries.text(1) ?? ""), .text(deliveries.text(2) ?? ""), .text(deliveries.text(3) ?? ""),
                        .bytes(deliveries.bytes(4)), .text(deliveries.text(5) ?? ""), deliveries.isNull(6) ? .null : .bytes(deliveries.bytes(6)),
                        .text(state), .integer(deliveries.integer(8)), .integer(deliveries.integer(9)), .integer(deliveries.integer(10)),
                        deliveries.isNull(11) ? .null : .text(deliveries.text(11) ?? ""),
                    ])
                guard copied.count == 1 else {
                    report.deliveriesPresent += 1
                    continue
                }
                if state == "pending" {
                    report.pending += 1
                    // The room's head is its first pending delivery copied (the oldest), unless it has one.
                    try destination.query(
                        """
                        INSERT INTO rooms (credential, room_id, head_seq, due_at) VALUES ($1, $2, $3, $4)
                        ON CONFLICT (credential, room_id) DO UPDATE SET head_seq = rooms.head_seq
                        """,
                        [.text(deliveries.text(2) ?? ""), .text(deliveries.text(3) ?? ""), .integer(copied.integer(0, 0)), .integer(deliveries.integer(10))])
                } else {
                    report.dead += 1
                }
                try attempts.bind([.text(id)])
                while try attempts.step() {
                    try destination.query(
                        "INSERT INTO attempts (delivery_id, attempt, at, outcome, reason, http_status, code, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        [
                            .text(id), .integer(attempts.integer(0)), .integer(attempts.integer(1)), .text(attempts.text(2) ?? ""), .text(attempts.text(3) ?? ""),
                            attempts.isNull(4) ? .null : .integer(attempts.integer(4)), attempts.isNull(5) ? .null : .integer(attempts.integer(5)),
                            attempts.isNull(6) ? .null : .text(attempts.text(6) ?? ""),
                        ])
                    report.attempts += 1
                }
                attempts.reset()
            }
            let keys = try source.prepare("SELECT key, first_id, expires_at FROM dedupe_digests WHERE expires_at > ?")
            try keys.bind([.integer(now)])
            while try keys.step() {
                let copied = try destination.query(
                    "INSERT INTO dedupe_digests (key, first_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING RETURNING first_id",
                    [.bytes(keys.bytes(0)), .text(keys.text(1) ?? ""), .integer(keys.integer(2))])
                if copied.count == 1 { report.dedupeKeys += 1 } else { report.dedupeKeysPresent += 1 }
            }
            let bindings = try source.prepare("SELECT kind, value, uuid, room_id, created_at, expires_at FROM bindings WHERE expires_at > ?")
            try bindings.bind([.integer(now)])
            while try bindings.step() {
                let copied = try destination.query(
                    """
                    INSERT INTO bindings (kind, value, uuid, room_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (kind, value) DO NOTHING RETURNING kind
                    """,
                    [.text(bindings.text(0) ?? ""), .text(bindings.text(1) ?? ""), .text(bindings.text(2) ?? ""), .text(bindings.text(3) ?? ""),
                     .integer(bindings.integer(4)), .integer(bindings.integer(5))])
                if copied.count == 1 { report.bindings += 1 } else { report.bindingsPresent += 1 }
            }
            try destination.execute("COMMIT")
        } catch {
            try? destination.execute("ROLLBACK")
            throw error
        }
        return report
    }
}
