/// What operators do with a PostgreSQL store (see `DeliveryAdministration`), on a connection
/// of its own; every replica notices the changes.
package final class PostgresAdmin: DeliveryAdministration {
    private let connection: PostgresConnection

    /// Connects to a store whose schema is in place (the serving relay's, migrated as it started).
    package init(url: String) throws(PostgresError) {
        connection = try PostgresConnection(url: url, settings: PostgresSchema.servingSettings)
    }

    /// Connects to the store of an operator's tool: nil when the database holds no relay
    /// tables, refused at another schema version (`PostgresSchema.requireCurrent`).
    package static func existing(url: String) throws(PostgresError) -> PostgresAdmin? {
        let admin = try PostgresAdmin(url: url)
        return try PostgresSchema.requireCurrent(admin.connection, url: url) ? admin : nil
    }

    /// Connects again, between operations, when the server dropped the connection (a restart,
    /// a failover): a long-lived reader such as the relay's gauges keeps working.
    private func reopenIfLost() throws(PostgresError) {
        if !connection.isOpen { try connection.reconnect() }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    private func transaction<T>(_ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        try connection.execute("BEGIN")
        do throws(PostgresError) {
            let result = try body()
            try connection.execute("COMMIT")
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    package func list(_ filter: DeliveryFilter) throws -> (rows: [DeliverySummary], next: Int?) {
        try reopenIfLost()
        let rows = try connection.query(
            """
            SELECT seq, id, state, route, attempts, COALESCE(last_reason, ''), accepted_at FROM deliveries
            WHERE seq > $1 AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR route = $3) AND ($4::bigint IS NULL OR accepted_at >= $4)
              AND ($5::bigint IS NULL OR accepted_at < $5) AND ($7::text IS NULL OR room_id = $7)
            ORDER BY seq LIMIT $6
            """,
            [
                .integer(filter.after), filter.state.map { .text($0.rawValue) } ?? .null, filter.route.map(PostgresValue.text) ?? .null,
                filter.since.map(PostgresValue.integer) ?? .null, filter.until.map(PostgresValue.integer) ?? .null,
                filter.limit.map { .integer($0 + 1) } ?? .null, filter.roomID.map(PostgresValue.text) ?? .null,
            ])
        var summaries: [DeliverySummary] = []
        for row in 0..<rows.count {
            summaries.append(
                DeliverySummary(
                    id: rows.text(row, 1) ?? "", state: DeliveryState(rawValue: rows.text(row, 2) ?? "") ?? .dead, route: rows.text(row, 3) ?? "",
                    attempts: rows.integer(row, 4), lastReason: rows.text(row, 5) ?? "", acceptedAt: rows.integer(row, 6)))
        }
        // One row more than the page tells whether another page follows.
        guard let limit = filter.limit, summaries.count > limit else { return (summaries, nil) }
        return (Array(summaries.prefix(limit)), rows.integer(limit - 1, 0))
    }

    package func detail(id: String) throws -> DeliveryDetail? {
        try reopenIfLost()
        let rows = try connection.query(
            """
            SELECT id, state, route, credential, room_id, call, request, body, attempts, accepted_at, next_attempt_at, COALESCE(last_reason, '')
            FROM deliveries WHERE id = $1
            """, [.text(id)])
        guard rows.count == 1 else { return nil }
        var detail = DeliveryDetail(
            id: rows.text(0, 0) ?? "", state: DeliveryState(rawValue: rows.text(0, 1) ?? "") ?? .dead, route: rows.text(0, 2) ?? "",
            credential: rows.text(0, 3) ?? "", roomID: rows.text(0, 4) ?? "", call: rows.bytes(0, 5), request: rows.text(0, 6) ?? "{}",
            body: rows.isNull(0, 7) ? nil : rows.bytes(0, 7), attemptCount: rows.integer(0, 8), acceptedAt: rows.integer(0, 9),
            nextAttemptAt: rows.integer(0, 10), lastReason: rows.text(0, 11) ?? "", attempts: [])
        let attempts = try connection.query(
            "SELECT attempt, at, outcome, reason, http_status, code, message FROM attempts WHERE delivery_id = $1 ORDER BY seq", [.text(id)])
        for row in 0..<attempts.count {
            detail.attempts.append(
                AttemptRecord(
                    attempt: attempts.integer(row, 0), at: attempts.integer(row, 1), outcome: attempts.text(row, 2) ?? "",
                    reason: attempts.text(row, 3) ?? "",
                    answer: UpstreamAnswer(
                        status: attempts.isNull(row, 4) ? nil : attempts.integer(row, 4), code: attempts.isNull(row, 5) ? nil : attempts.integer(row, 5),
                        message: attempts.text(row, 6))))
        }
        // The successful attempt is the row itself, as in the SQLite store.
        if detail.state == .delivered {
            detail.attempts.append(
                AttemptRecord(attempt: detail.attemptCount, at: detail.nextAttemptAt, outcome: "delivered", reason: "delivered", answer: UpstreamAnswer(status: 200)))
        }
        return detail
    }

    package func delete(id: String) throws -> Bool {
        try reopenIfLost()
        return try transaction { () throws(PostgresError) -> Bool in
            try connection.query("DELETE FROM attempts WHERE delivery_id = $1", [.text(id)])
            return try connection.query("DELETE FROM deliveries WHERE id = $1 RETURNING id", [.text(id)]).count == 1
        }
    }

    package func deleteDead(before cutoff: UnixMilliseconds, limit: Int) throws -> Int {
        try reopenIfLost()
        return try transaction { () throws(PostgresError) -> Int in
            try PostgresSchema.deleteDeliveries(connection, where: "state = 'dead' AND next_attempt_at < $1", [.integer(cutoff)], limit: limit).deleted
        }
    }

    package func retry(id: String, now: UnixMilliseconds) throws -> DeliveryRetryResult {
        try reopenIfLost()
        return try transaction { () throws(PostgresError) -> DeliveryRetryResult in
            let found = try connection.query("SELECT seq, state, credential, room_id FROM deliveries WHERE id = $1", [.text(id)])
            guard found.count == 1 else { return .notFound }
            let state = DeliveryState(rawValue: found.text(0, 1) ?? "") ?? .dead
            guard state == .pending else { return .notPending(state) }
            let (seq, credential, room) = (found.integer(0, 0), found.text(0, 2) ?? "", found.text(0, 3) ?? "")
            let moved = try connection.query(
                """
                UPDATE deliveries SET next_attempt_at = $1
                WHERE state = 'pending' AND credential = $2 AND room_id = $3 AND seq <= $4 RETURNING id
                """, [.integer(now), .text(credential), .text(room), .integer(seq)]).count
            // Replicas read the room's due time from `rooms`, not from the deliveries.
            try connection.query("UPDATE rooms SET due_at = $1 WHERE credential = $2 AND room_id = $3", [.integer(now), .text(credential), .text(room)])
            return .scheduled(behind: max(moved - 1, 0))
        }
    }

    package func deadIDs() throws -> [String] {
        try reopenIfLost()
        let rows = try connection.query("SELECT id FROM deliveries WHERE state = 'dead' ORDER BY seq")
        return (0..<rows.count).map { rows.text($0, 0) ?? "" }
    }

    package func deadRequests(ids: [String]) throws -> [StoredRequest] {
        guard !ids.isEmpty else { return [] }
        try reopenIfLost()
        let rows = try connection.query(
            "SELECT id, route, credential, request, body, call, room_id FROM deliveries WHERE state = 'dead' AND id = ANY($1::text[]) ORDER BY seq",
            [.textArray(ids)])
        return (0..<rows.count).map { row in
            StoredRequest(
                id: rows.text(row, 0) ?? "", route: rows.text(row, 1) ?? "", credential: rows.text(row, 2) ?? "", request: rows.text(row, 3) ?? "{}",
                body: rows.isNull(row, 4) ? nil : rows.bytes(row, 4), call: rows.bytes(row, 5), roomID: rows.text(row, 6) ?? "")
        }
    }

    package func replay(_ changes: [(request: StoredRequest, change: ReplayChange)], now: UnixMilliseconds) throws {
        try reopenIfLost()
        return try transaction { () throws(PostgresError) in
            for (request, change) in changes {
                switch change {
                case .keepDead(let reason):
                    try connection.query("UPDATE deliveries SET last_reason = $1 WHERE id = $2", [.text(reason), .text(request.id)])
                case .requeue(let calls):
                    for (index, call) in calls.enumerated() {
                        let id = index == 0 ? request.id : "\(request.id)-r\(index)"
                        let seq: Int
                        if index == 0 {
                            seq = try connection.query(
                                """
                                UPDATE deliveries SET state = 'pending', room_id = $1, call = $2, attempts = 0, accepted_at = $3, next_attempt_at = $3,
                                    last_reason = 'replayed' WHERE id = $4 RETURNING seq
                                """, [.text(call.roomID), .bytes(call.call), .integer(now), .text(id)]).integer(0, 0)
                        } else {
                            seq = try connection.query(
                                """
                                INSERT INTO deliveries (id, route, credential, room_id, call, request, body, state, attempts, accepted_at, next_attempt_at)
                                VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8) RETURNING seq
                                """,
                                [
                                    .text(id), .text(request.route), .text(request.credential), .text(call.roomID), .bytes(call.call), .text(request.request),
                                    request.body.map(PostgresValue.bytes) ?? .null, .integer(now),
                                ]).integer(0, 0)
                        }
                        // The room's head is its oldest pending delivery.
                        try connection.query(
                            """
                            INSERT INTO rooms (credential, room_id, head_seq, due_at) VALUES ($1, $2, $3, $4)
                            ON CONFLICT (credential, room_id) DO UPDATE SET head_seq = excluded.head_seq, due_at = excluded.due_at
                            WHERE excluded.head_seq < rooms.head_seq
                            """, [.text(request.credential), .text(call.roomID), .integer(seq), .integer(now)])
                    }
                }
            }
        }
    }

    package func bindings(kind: String?, value: String?, now: UnixMilliseconds) throws -> [BindingRecord] {
        try reopenIfLost()
        let rows = try connection.query(
            """
            SELECT kind, value, uuid, room_id, created_at, expires_at FROM bindings
            WHERE expires_at > $1 AND ($2::text IS NULL OR (kind = $2 AND value = $3)) ORDER BY kind, value
            """, [.integer(now), kind.map(PostgresValue.text) ?? .null, value.map(PostgresValue.text) ?? .null])
        return (0..<rows.count).map { row in
            BindingRecord(
                kind: rows.text(row, 0) ?? "", value: rows.text(row, 1) ?? "", uuid: rows.text(row, 2) ?? "", roomID: rows.text(row, 3) ?? "",
                createdAt: rows.integer(row, 4), expiresAt: rows.integer(row, 5))
        }
    }

    package func deleteBinding(kind: String, value: String) throws -> Bool {
        try reopenIfLost()
        return try connection.query("DELETE FROM bindings WHERE kind = $1 AND value = $2 RETURNING kind", [.text(kind), .text(value)]).count == 1
    }

    package func gauges(now: UnixMilliseconds) throws -> QueueGauges {
        try reopenIfLost()
        let rows = try connection.query(
            """
            SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'), (SELECT count(*) FROM deliveries WHERE state = 'dead'),
                   (SELECT min((SELECT accepted_at FROM deliveries WHERE seq = r.head_seq)) FROM rooms r)
            """)
        // (The oldest head per room by index lookups: as a join, the planner scanned every delivery ever kept.)
        let age = rows.isNull(0, 2) ? 0 : max(now - rows.integer(0, 2), 0)
        var gauges = QueueGauges(pending: rows.integer(0, 0), dead: rows.integer(0, 1), oldestPendingAge: Double(age) / 1000)
        let dead = try connection.query("SELECT route, count(*) FROM deliveries WHERE state = 'dead' GROUP BY route ORDER BY route")
        for row in 0..<dead.count { gauges.deadByRoute.append((dead.text(row, 0) ?? "", dead.integer(row, 1))) }
        return gauges
    }

    package func recorded(_ name: String) throws -> String? {
        try reopenIfLost()
        let rows = try connection.query("SELECT value FROM relay_state WHERE name = $1", [.text(name)])
        return rows.count == 1 ? rows.text(0, 0) : nil
    }

    package func record(_ name: String, value: String) throws {
        try reopenIfLost()
        try connection.query(
            "INSERT INTO relay_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [.text(name), .text(value)])
    }
}
