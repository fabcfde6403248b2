import Foundation
import RelayMapping

/// The delivery store in a PostgreSQL database that several relays share. The same model as
/// the SQLite store (a room's head and due time in `rooms`), plus a lease: a replica claims a
/// due room by writing its name and a deadline (`FOR UPDATE SKIP LOCKED`, so replicas never
/// wait for each other), and only the holder sends the room's head. Recording the outcome
/// clears the lease; a replica that dies leaves its leases to expire after `claimTimeout`,
/// and whichever replica claims such a room next sends the head again (a redelivery).
/// Used from the store writer's thread only.
package final class PostgresDeliveryStore: DeliveryStore {
    package struct Configuration: Sendable {
        /// How long a claim holds before another replica may take the room over.
        package var claimTimeout: Duration = .seconds(30)
        /// This replica's name in leases.
        package var owner = "relay-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)

        package init() {}
    }

    private let connection: PostgresConnection
    private let configuration: Configuration
    private var lastCount = 0

    package init(url: String, configuration: Configuration = Configuration()) throws(PostgresError) {
        connection = try PostgresConnection(url: url)
        try PostgresSchema.migrate(connection)
        // A webhook is answered 202 only after its commit is durable, whatever the server's default.
        try connection.execute("SET synchronous_commit TO on")
        self.configuration = configuration
    }

    /// A failure as the relay answers it; a lost connection is tried again on the next call.
    private func storeError(_ error: PostgresError) -> StoreError {
        if error.isConnectionLost { try? connection.reconnect() }
        return .unavailable(error.description)
    }

    // MARK: Writes

    package func commit(_ writes: [WebhookWrite], outcomes: [DeliveryOutcome], now: UnixMilliseconds) throws(StoreError)
        -> [Result<StoreOutcome, StoreError>]
    {
        var results: [Result<StoreOutcome, StoreError>] = []
        do throws(PostgresError) {
            try connection.execute("BEGIN")
            for outcome in outcomes { try record(outcome, now: now) }
            for write in writes { results.append(try store(write, now: now)) }
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw storeError(error)
        }
        return results
    }

    private func record(_ outcome: DeliveryOutcome, now: UnixMilliseconds) throws(PostgresError) {
        let id = PostgresValue.text(outcome.id)
        let answer = outcome.answer ?? UpstreamAnswer()
        let attempt: [PostgresValue] = [
            id, .integer(outcome.attempts), .integer(outcome.attemptedAt != 0 ? outcome.attemptedAt : now), .text(outcome.reason),
            answer.status.map(PostgresValue.integer) ?? .null, answer.code.map(PostgresValue.integer) ?? .null,
            answer.message.map(PostgresValue.text) ?? .null,
        ]
        let room: [PostgresValue] = [.text(outcome.room.credential), .text(outcome.room.roomID)]
        switch outcome.disposition {
        case .delivered:
            let updated = try connection.query(
                "UPDATE deliveries SET state = 'delivered', attempts = $2, next_attempt_at = $3, last_reason = NULL WHERE id = $1 RETURNING seq",
                [id, .integer(outcome.attempts), .integer(now)])
            try advanceHead(room, past: updated.count == 1 ? updated.integer(0, 0) : nil)
        case .dead(let why):
            let updated = try connection.query(
                "UPDATE deliveries SET state = 'dead', attempts = $2, next_attempt_at = $3, last_reason = $4 WHERE id = $1 RETURNING seq",
                [id, .integer(outcome.attempts), .integer(now), .text(why)])
            try connection.query(
                "INSERT INTO attempts (delivery_id, attempt, at, outcome, reason, http_status, code, message) VALUES ($1, $2, $3, 'dead', $4, $5, $6, $7)", attempt)
            try advanceHead(room, past: updated.count == 1 ? updated.integer(0, 0) : nil)
        case .retry(let at):
            let updated = try connection.query(
                "UPDATE deliveries SET attempts = $2, next_attempt_at = $3, last_reason = $4 WHERE id = $1 AND state = 'pending' RETURNING seq",
                [id, .integer(outcome.attempts), .integer(at), .text(outcome.reason)])
            try connection.query(
                "INSERT INTO attempts (delivery_id, attempt, at, outcome, reason, http_status, code, message) VALUES ($1, $2, $3, 'retry', $4, $5, $6, $7)", attempt)
            // The room waits for the retry only while this delivery is its head (another replica
            // that took it over may have finished it meanwhile); this replica's lease ends anyway.
            try connection.query(
                """
                UPDATE rooms SET due_at = CASE WHEN head_seq = $3 THEN $4 ELSE due_at END, lease_owner = NULL, lease_until = NULL
                WHERE credential = $1 AND room_id = $2 AND (head_seq = $3 OR lease_owner = $5)
                """, room + [.integer(updated.count == 1 ? updated.integer(0, 0) : -1), .integer(at), .text(configuration.owner)])
        }
    }

    /// Points the room past the finished delivery `seq` at its oldest pending one (lease
    /// cleared), or removes it. Only when `seq` is still the room's head: when a replica that
    /// was taken over for being slow records it after the one that took over, the room has
    /// moved on already, and only this replica's lease (if any) is cleared. The room is locked
    /// first: a replica storing a delivery for it at the same moment waits (see `store`), so
    /// its delivery is either seen here or finds no room and makes one.
    private func advanceHead(_ room: [PostgresValue], past seq: Int?) throws(PostgresError) {
        let head = try connection.query("SELECT head_seq FROM rooms WHERE credential = $1 AND room_id = $2 FOR UPDATE", room)
        // A delivery deleted while in flight (nil) leaves its room to `claimDue`'s repair.
        guard head.count == 1, let seq, head.integer(0, 0) == seq else {
            try connection.query(
                "UPDATE rooms SET lease_owner = NULL, lease_until = NULL WHERE credential = $1 AND room_id = $2 AND lease_owner = $3",
                room + [.text(configuration.owner)])
            return
        }
        let next = try connection.query(
            "SELECT seq, next_attempt_at FROM deliveries WHERE state = 'pending' AND credential = $1 AND room_id = $2 ORDER BY seq LIMIT 1", room)
        if next.count == 1 {
            try connection.query(
                "UPDATE rooms SET head_seq = $3, due_at = $4, lease_owner = NULL, lease_until = NULL WHERE credential = $1 AND room_id = $2",
                room + [.integer(next.integer(0, 0)), .integer(next.integer(0, 1))])
        } else {
            try connection.query("DELETE FROM rooms WHERE credential = $1 AND room_id = $2", room)
        }
    }

    /// One webhook's writes in a savepoint: its dedupe key, its bindings, its deliveries.
    private func store(_ write: WebhookWrite, now: UnixMilliseconds) throws(PostgresError) -> Result<StoreOutcome, StoreError> {
        try connection.execute("SAVEPOINT webhook")
        do throws(PostgresError) {
            if let dedupe = write.dedupe {
                // Stored unless a live key is there; a replica racing on the same key waits for
                // the other's transaction and then finds it.
                let stored = try connection.query(
                    """
                    INSERT INTO dedupe_digests (key, first_id, expires_at) VALUES ($1, $2, $3)
                    ON CONFLICT (key) DO UPDATE SET first_id = excluded.first_id, expires_at = excluded.expires_at
                    WHERE dedupe_digests.expires_at <= $4 RETURNING first_id
                    """, [.bytes(dedupe.digest.bytes), .text(dedupe.firstID), .integer(dedupe.expiresAt), .integer(now)])
                if stored.count == 0 {
                    let first = try connection.query("SELECT first_id FROM dedupe_digests WHERE key = $1", [.bytes(dedupe.digest.bytes)])
                    try connection.execute("RELEASE SAVEPOINT webhook")
                    return .success(.duplicate(firstID: first.text(0, 0) ?? ""))
                }
            }
            if !write.bindings.isEmpty {
                var current: [(uuid: String, roomID: String)?] = []
                for binding in write.bindings {
                    let rows = try connection.query(
                        "SELECT uuid, room_id FROM bindings WHERE kind = $1 AND value = $2 AND expires_at > $3 FOR UPDATE",
                        [.text(binding.kind), .text(binding.value), .integer(now)])
                    current.append(rows.count == 1 ? (rows.text(0, 0) ?? "", rows.text(0, 1) ?? "") : nil)
                }
                if let kind = BindingWrite.conflict(write.bindings, current: current) {
                    try connection.execute("ROLLBACK TO SAVEPOINT webhook; RELEASE SAVEPOINT webhook")
                    return .failure(.bindingConflict(kind: kind))
                }
                for binding in write.bindings {
                    try connection.query(
                        """
                        INSERT INTO bindings (kind, value, uuid, room_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
                        ON CONFLICT (kind, value) DO UPDATE SET uuid = excluded.uuid, room_id = excluded.room_id,
                            created_at = excluded.created_at, expires_at = excluded.expires_at
                        """,
                        [.text(binding.kind), .text(binding.value), .text(binding.uuid), .text(binding.roomID), .integer(now),
                         .integer(now.addingSaturating(binding.ttl.wholeMilliseconds))])
                }
            }
            for delivery in write.deliveries {
                let pending = delivery.deadReason == nil
                let seq = try connection.query(
                    """
                    INSERT INTO deliveries (id, route, credential, room_id, call, request, body, state, attempts, accepted_at, next_attempt_at, last_reason)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $10) RETURNING seq
                    """,
                    [.text(delivery.id), .text(delivery.route), .text(delivery.room.credential), .text(delivery.room.roomID), .bytes(delivery.call),
                     .text(delivery.request), .bytes(delivery.body), .text(pending ? "pending" : "dead"), .integer(now),
                     delivery.deadReason.map(PostgresValue.text) ?? .null]).integer(0, 0)
                if pending {
                    // An existing room keeps its head, but is locked (DO UPDATE, not DO NOTHING): a
                    // replica advancing its head waits for this commit and then sees the delivery.
                    try connection.query(
                        """
                        INSERT INTO rooms (credential, room_id, head_seq, due_at) VALUES ($1, $2, $3, $4)
                        ON CONFLICT (credential, room_id) DO UPDATE SET head_seq = rooms.head_seq
                        """,
                        [.text(delivery.room.credential), .text(delivery.room.roomID), .integer(seq), .integer(now)])
                }
            }
            try connection.execute("RELEASE SAVEPOINT webhook")
            return .success(.stored)
        } catch where !error.isConnectionLost {
            try connection.execute("ROLLBACK TO SAVEPOINT webhook; RELEASE SAVEPOINT webhook")
            return .failure(.unavailable(error.description))
        }
    }

    // MARK: Dispatch

    package func claimDue(limit: Int, now: UnixMilliseconds, busy: Set<RoomKey>) throws(StoreError) -> [DueDelivery] {
        guard limit > 0 else { return [] }
        do throws(PostgresError) {
            let claimed = try connection.query(
                """
                WITH picked AS (
                    SELECT credential, room_id, lease_owner IS NOT NULL AS taken_over FROM rooms
                    WHERE due_at <= $1 AND (lease_owner IS NULL OR lease_until < $1)
                    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                UPDATE rooms r SET lease_owner = $3, lease_until = $4 FROM picked p
                WHERE r.credential = p.credential AND r.room_id = p.room_id
                RETURNING r.head_seq, p.taken_over, r.credential, r.room_id
                """,
                [.integer(now), .integer(limit), .text(configuration.owner), .integer(now.addingSaturating(configuration.claimTimeout.wholeMilliseconds))])
            var due: [DueDelivery] = []
            for row in 0..<claimed.count {
                let seq = claimed.integer(row, 0)
                let isTakenOver = claimed.text(row, 1) == "t"
                if isTakenOver {
                    // Its holder died while sending: sent again, and counted.
                    try connection.query("UPDATE deliveries SET redeliveries = redeliveries + 1 WHERE seq = $1", [.integer(seq)])
                }
                let rows = try connection.query(
                    "SELECT id, route, credential, room_id, call, attempts, accepted_at FROM deliveries WHERE seq = $1 AND state = 'pending'", [.integer(seq)])
                guard rows.count == 1 else {
                    // Its head was deleted by an operator: the room moves to its next delivery.
                    try connection.execute("BEGIN")
                    try advanceHead([.text(claimed.text(row, 2) ?? ""), .text(claimed.text(row, 3) ?? "")], past: seq)
                    try connection.execute("COMMIT")
                    continue
                }
                due.append(
                    DueDelivery(
                        id: rows.text(0, 0) ?? "", route: rows.text(0, 1) ?? "", room: RoomKey(credential: rows.text(0, 2) ?? "", roomID: rows.text(0, 3) ?? ""),
                        call: rows.bytes(0, 4), attempts: rows.integer(0, 5), acceptedAt: rows.integer(0, 6), isRedelivery: isTakenOver))
            }
            return due
        } catch {
            try? connection.execute("ROLLBACK")
            throw storeError(error)
        }
    }

    package func nextDueTime(after now: UnixMilliseconds) throws(StoreError) -> UnixMilliseconds? {
        do throws(PostgresError) {
            // A room leased by another replica is due again when its lease runs out.
            let rows = try connection.query(
                "SELECT min(GREATEST(due_at, COALESCE(lease_until, 0))) FROM rooms WHERE GREATEST(due_at, COALESCE(lease_until, 0)) > $1", [.integer(now)])
            return rows.isNull(0, 0) ? nil : rows.integer(0, 0)
        } catch {
            throw storeError(error)
        }
    }

    package func pendingCount() throws(StoreError) -> Int {
        do throws(PostgresError) {
            return try connection.query("SELECT count(*) FROM deliveries WHERE state = 'pending'").integer(0, 0)
        } catch {
            throw storeError(error)
        }
    }

    /// Other replicas write all the time: the count is taken again at most once a second.
    package func changedElsewhere() -> Bool {
        let second = Int(Date().timeIntervalSince1970)
        defer { lastCount = second }
        return second != lastCount
    }

    package func probe(now: UnixMilliseconds) throws(StoreError) {
        do throws(PostgresError) {
            try connection.query(
                "INSERT INTO relay_state (name, value) VALUES ('write_probe', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [.text(String(now))])
        } catch {
            throw storeError(error)
        }
    }

    package func purge(now: UnixMilliseconds, deliveredBefore: UnixMilliseconds, deadBefore: UnixMilliseconds) throws(StoreError) -> Int {
        do throws(PostgresError) {
            try connection.execute("BEGIN")
            // One replica purges at a time (the others find the lock taken and skip this round):
            // replicas deleting the same rows at once could deadlock each other.
            guard try connection.query("SELECT pg_try_advisory_xact_lock($1)", [.integer(PostgresSchema.purgeLock)]).text(0, 0) == "t" else {
                try connection.execute("COMMIT")
                return 0
            }
            let finished = "(state = 'delivered' AND next_attempt_at < $1) OR (state = 'dead' AND next_attempt_at < $2)"
            try connection.query("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE \(finished))", [.integer(deliveredBefore), .integer(deadBefore)])
            let dead = try connection.query("SELECT count(*) FROM deliveries WHERE state = 'dead' AND next_attempt_at < $1", [.integer(deadBefore)]).integer(0, 0)
            try connection.query("DELETE FROM deliveries WHERE \(finished)", [.integer(deliveredBefore), .integer(deadBefore)])
            try connection.query("DELETE FROM dedupe_digests WHERE expires_at < $1", [.integer(now)])
            try connection.query("DELETE FROM bindings WHERE expires_at <= $1", [.integer(now)])
            try connection.execute("COMMIT")
            return dead
        } catch {
            try? connection.execute("ROLLBACK")
            throw storeError(error)
        }
    }

    package func refusal() -> StoreError? {
        connection.isOpen ? nil : .unavailable("the database cannot be reached")
    }
}
