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

    /// The writer's session settings, whatever the server's defaults: a webhook is answered 202
    /// only after its commit is durable, and the serving statements' plans use their indexes.
    static let sessionSettings = ["SET synchronous_commit TO on"] + PostgresSchema.servingSettings

    package init(url: String, configuration: Configuration = Configuration()) throws(PostgresError) {
        connection = try PostgresConnection(url: url, settings: Self.sessionSettings)
        try PostgresSchema.migrate(connection)
        self.configuration = configuration
    }

    /// Statements run so far: a batch of writes costs the same number whatever it holds.
    package var statementsRun: Int { connection.statementsRun }

    /// A failure as the relay answers it; a lost connection is tried again on the next call.
    private func storeError(_ error: PostgresError) -> StoreError {
        if error.isConnectionLost { try? connection.reconnect() }
        return .unavailable(error.description)
    }

    // MARK: Writes

    package func commit(_ writes: [WebhookWrite], outcomes: [DeliveryOutcome], now: UnixMilliseconds) throws(StoreError)
        -> [Result<StoreOutcome, StoreError>]
    {
        do throws(PostgresError) {
            do throws(PostgresError) {
                return try commitOnce(writes, outcomes: outcomes, now: now, isolated: false)
            } catch where !error.isConnectionLost && !writes.isEmpty {
                // A webhook's write failed, and the transaction with it: again, each webhook in a
                // savepoint of its own, so that only the failing one fails. (Savepoints cost two
                // round trips per webhook; a failing write is rare.)
                return try commitOnce(writes, outcomes: outcomes, now: now, isolated: true)
            }
        } catch {
            throw storeError(error)
        }
    }

    /// One transaction; `isolated` puts each webhook's writes in a savepoint. Otherwise every
    /// kind of write is one statement for the whole batch (arrays bound with `unnest`), so
    /// that a batch costs the same round trips whether it holds one webhook or a hundred.
    private func commitOnce(_ writes: [WebhookWrite], outcomes: [DeliveryOutcome], now: UnixMilliseconds, isolated: Bool) throws(PostgresError)
        -> [Result<StoreOutcome, StoreError>]
    {
        var results: [Result<StoreOutcome, StoreError>] = []
        var rooms: [RoomKey: RoomWork] = [:]
        do throws(PostgresError) {
            try connection.execute("BEGIN")
            try record(outcomes, now: now, rooms: &rooms)
            if isolated {
                for write in writes { results.append(try storeIsolated(write, now: now, rooms: &rooms)) }
            } else {
                results = try store(writes, now: now, rooms: &rooms)
            }
            try settle(rooms, now: now)
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
        return results
    }

    /// What a transaction did to one room's deliveries, settled on the room at its end.
    private struct RoomWork {
        /// Deliveries delivered or dead (by seq).
        var finished: [Int] = []
        /// Deliveries to try again, and when.
        var retries: [(seq: Int, at: UnixMilliseconds)] = []
        /// This replica recorded an outcome here (its lease, if any, ends).
        var hadOutcome = false
        /// A pending delivery was stored for the room.
        var hasNewPending = false
    }

    /// The outcomes of sends: one update of their deliveries, one insert of the attempts that
    /// failed.
    private func record(_ outcomes: [DeliveryOutcome], now: UnixMilliseconds, rooms: inout [RoomKey: RoomWork]) throws(PostgresError) {
        guard !outcomes.isEmpty else { return }
        var ids: [String?] = [], states: [String?] = [], attempts: [Int?] = [], times: [Int?] = [], reasons: [String?] = []
        var failed: [DeliveryOutcome] = []
        for outcome in outcomes {
            rooms[outcome.room, default: RoomWork()].hadOutcome = true
            ids.append(outcome.id)
            attempts.append(outcome.attempts)
            switch outcome.disposition {
            case .delivered:
                states.append("delivered")
                times.append(now)
                reasons.append(nil)
            case .dead(let why):
                states.append("dead")
                times.append(now)
                reasons.append(why)
                failed.append(outcome)
            case .retry(let at):
                // Still pending; the update skips a delivery that is no longer (an operator's).
                states.append("pending")
                times.append(at)
                reasons.append(outcome.reason)
                failed.append(outcome)
            }
        }
        let updated = try connection.query(
            """
            UPDATE deliveries d SET state = u.state, attempts = u.attempts, next_attempt_at = u.at, last_reason = u.reason
            FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) AS u(id, state, attempts, at, reason)
            WHERE d.id = u.id AND (u.state <> 'pending' OR d.state = 'pending')
            RETURNING d.id, d.seq
            """, [.textArray(ids), .textArray(states), .integerArray(attempts), .integerArray(times), .textArray(reasons)])
        var seqs: [String: Int] = [:]
        for row in 0..<updated.count { seqs[updated.text(row, 0) ?? ""] = updated.integer(row, 1) }
        for outcome in outcomes {
            guard let seq = seqs[outcome.id] else { continue }
            if case .retry(let at) = outcome.disposition {
                rooms[outcome.room]!.retries.append((seq, at))
            } else {
                rooms[outcome.room]!.finished.append(seq)
            }
        }
        guard !failed.isEmpty else { return }
        let answers = failed.map { $0.answer ?? UpstreamAnswer() }
        try connection.query(
            """
            INSERT INTO attempts (delivery_id, attempt, at, outcome, reason, http_status, code, message)
            SELECT id, attempt, at, outcome, reason, status, code, message
            FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::text[])
                AS u(id, attempt, at, outcome, reason, status, code, message)
            """,
            [.textArray(failed.map(\.id)), .integerArray(failed.map(\.attempts)),
             .integerArray(failed.map { $0.attemptedAt != 0 ? $0.attemptedAt : now }),
             .textArray(failed.map { if case .dead = $0.disposition { "dead" } else { "retry" } }), .textArray(failed.map(\.reason)),
             .integerArray(answers.map(\.status)), .integerArray(answers.map(\.code)), .textArray(answers.map(\.message))])
    }

    /// The oldest pending delivery of room `k` (its next head), for a `LATERAL` join.
    private static let oldestPending = """
        SELECT seq, next_attempt_at FROM deliveries
        WHERE state = 'pending' AND credential = k.credential AND room_id = k.room_id ORDER BY seq LIMIT 1
        """

    /// Brings the touched rooms in line with what the transaction did, their rows locked first
    /// (a replica storing a delivery for one meanwhile waits, then sees that delivery; without
    /// the lock, a delivery stored while another replica emptied the room was left without a
    /// head). An outcome moves a room only while its delivery is the head: a replica taken over
    /// for being slow that records late leaves the room, and the lease of whoever sends its next
    /// delivery, alone; only its own lease ends.
    private func settle(_ rooms: [RoomKey: RoomWork], now: UnixMilliseconds) throws(PostgresError) {
        guard !rooms.isEmpty else { return }
        // Locked in one order on every replica (two batches that touch the same rooms never
        // deadlock), in one statement: a room that exists is locked and kept as it is (DO UPDATE,
        // not DO NOTHING, so that a replica moving its head now is waited for, or waits); one that
        // does not is made, headed by its oldest pending delivery (-1 when it has none: removed
        // below).
        let keys = rooms.keys.sorted { ($0.credential, $0.roomID) < ($1.credential, $1.roomID) }
        let locked = try connection.query(
            """
            INSERT INTO rooms (credential, room_id, head_seq, due_at)
            SELECT k.credential, k.room_id, coalesce(d.seq, -1), coalesce(d.next_attempt_at, 0)
            FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(credential, room_id, n)
            LEFT JOIN LATERAL (\(Self.oldestPending)) d ON true
            ORDER BY k.n
            ON CONFLICT (credential, room_id) DO UPDATE SET head_seq = rooms.head_seq
            RETURNING credential, room_id, head_seq
            """, [.textArray(keys.map(\.credential)), .textArray(keys.map(\.roomID))])
        var moved: [RoomKey] = [], retried: [(room: RoomKey, at: UnixMilliseconds)] = [], released: [RoomKey] = []
        for row in 0..<locked.count {
            let room = RoomKey(credential: locked.text(row, 0) ?? "", roomID: locked.text(row, 1) ?? "")
            let head = locked.integer(row, 2)
            guard let work = rooms[room] else { continue }
            if head == -1 || work.finished.contains(head) {
                moved.append(room)
            } else if let retry = work.retries.first(where: { $0.seq == head }) {
                retried.append((room, retry.at))
            } else if work.hadOutcome {
                released.append(room)
            }
        }
        if !moved.isEmpty {
            // Each room to its oldest pending delivery (lease cleared), or removed when it has none.
            try connection.query(
                """
                WITH next AS (
                    SELECT k.credential, k.room_id, d.seq, d.next_attempt_at FROM unnest($1::text[], $2::text[]) AS k(credential, room_id)
                    LEFT JOIN LATERAL (\(Self.oldestPending)) d ON true),
                headed AS (
                    UPDATE rooms r SET head_seq = n.seq, due_at = n.next_attempt_at, lease_owner = NULL, lease_until = NULL FROM next n
                    WHERE r.credential = n.credential AND r.room_id = n.room_id AND n.seq IS NOT NULL)
                DELETE FROM rooms r USING next n WHERE r.credential = n.credential AND r.room_id = n.room_id AND n.seq IS NULL
                """, [.textArray(moved.map(\.credential)), .textArray(moved.map(\.roomID))])
        }
        if !retried.isEmpty {
            try connection.query(
                """
                UPDATE rooms r SET due_at = u.at, lease_owner = NULL, lease_until = NULL
                FROM unnest($1::text[], $2::text[], $3::int8[]) AS u(credential, room_id, at)
                WHERE r.credential = u.credential AND r.room_id = u.room_id
                """, [.textArray(retried.map(\.room.credential)), .textArray(retried.map(\.room.roomID)), .integerArray(retried.map(\.at))])
        }
        if !released.isEmpty {
            // Due again when its head is (the room's due time was the end of the lease).
            try connection.query(
                """
                UPDATE rooms r SET lease_owner = NULL, lease_until = NULL,
                    due_at = coalesce((SELECT next_attempt_at FROM deliveries WHERE seq = r.head_seq AND state = 'pending'), $4)
                FROM unnest($1::text[], $2::text[]) AS u(credential, room_id)
                WHERE r.credential = u.credential AND r.room_id = u.room_id AND r.lease_owner = $3
                """, [.textArray(released.map(\.credential)), .textArray(released.map(\.roomID)), .text(configuration.owner), .integer(now)])
        }
    }

    /// The webhooks' writes in order: runs of webhooks without bindings in one statement per
    /// table; a webhook with bindings alone (its bindings are checked against those stored
    /// before it, the batch's earlier ones included).
    private func store(_ writes: [WebhookWrite], now: UnixMilliseconds, rooms: inout [RoomKey: RoomWork]) throws(PostgresError)
        -> [Result<StoreOutcome, StoreError>]
    {
        var results: [Result<StoreOutcome, StoreError>] = []
        results.reserveCapacity(writes.count)
        var run: [WebhookWrite] = []
        for write in writes {
            if write.bindings.isEmpty {
                run.append(write)
                continue
            }
            results += try storeRun(run, now: now, rooms: &rooms)
            run.removeAll(keepingCapacity: true)
            results.append(try store(write, now: now, rooms: &rooms))
        }
        results += try storeRun(run, now: now, rooms: &rooms)
        return results
    }

    /// Webhooks without bindings: their dedupe keys in one statement, the deliveries of those
    /// that are not duplicates in another, in acceptance order (a room's order is its `seq`).
    private func storeRun(_ run: [WebhookWrite], now: UnixMilliseconds, rooms: inout [RoomKey: RoomWork]) throws(PostgresError)
        -> [Result<StoreOutcome, StoreError>]
    {
        guard !run.isEmpty else { return [] }
        var results = [Result<StoreOutcome, StoreError>](repeating: .success(.stored), count: run.count)
        // Keys in one order on every replica (two replicas storing the same keys never deadlock);
        // a key repeated within the run is stored once, for the first webhook that has it.
        var firstWith: [DedupeDigest: Int] = [:]
        for (index, write) in run.enumerated() {
            if let dedupe = write.dedupe, firstWith[dedupe.digest] == nil { firstWith[dedupe.digest] = index }
        }
        if !firstWith.isEmpty {
            let keyed = firstWith.sorted { ($0.key.high, $0.key.low) < ($1.key.high, $1.key.low) }.map { run[$0.value].dedupe! }
            let stored = try connection.query(
                """
                INSERT INTO dedupe_digests (key, first_id, expires_at)
                SELECT key, first_id, expires_at FROM unnest($1::bytea[], $2::text[], $3::int8[]) WITH ORDINALITY AS u(key, first_id, expires_at, n)
                ORDER BY n
                ON CONFLICT (key) DO UPDATE SET first_id = excluded.first_id, expires_at = excluded.expires_at
                WHERE dedupe_digests.expires_at <= $4 RETURNING key
                """, [.bytesArray(keyed.map(\.digest.bytes)), .textArray(keyed.map(\.firstID)), .integerArray(keyed.map(\.expiresAt)), .integer(now)])
            let isNew = Set((0..<stored.count).map { DedupeDigest(digest: stored.bytes($0, 0)) })
            // A live key stored before: which webhook had it first (rare: a provider's retry).
            let taken = keyed.filter { !isNew.contains($0.digest) }
            var firstIDs: [DedupeDigest: String] = [:]
            if !taken.isEmpty {
                let rows = try connection.query(
                    "SELECT key, first_id FROM dedupe_digests WHERE key = ANY($1::bytea[])", [.bytesArray(taken.map(\.digest.bytes))])
                for row in 0..<rows.count { firstIDs[DedupeDigest(digest: rows.bytes(row, 0))] = rows.text(row, 1) ?? "" }
            }
            for (index, write) in run.enumerated() {
                guard let dedupe = write.dedupe else { continue }
                let first = firstWith[dedupe.digest]!
                if isNew.contains(dedupe.digest) {
                    if first != index { results[index] = .success(.duplicate(firstID: run[first].dedupe!.firstID)) }
                } else {
                    results[index] = .success(.duplicate(firstID: firstIDs[dedupe.digest] ?? ""))
                }
            }
        }
        var deliveries: [NewDelivery] = []
        for (write, result) in zip(run, results) where result == .success(.stored) {
            deliveries += write.deliveries
        }
        guard !deliveries.isEmpty else { return results }
        try connection.query(
            """
            INSERT INTO deliveries (id, route, credential, room_id, call, request, body, state, attempts, accepted_at, next_attempt_at, last_reason)
            SELECT id, route, credential, room_id, call, request, body, CASE WHEN dead IS NULL THEN 'pending' ELSE 'dead' END, 0, $9, $9, dead
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::bytea[], $8::text[])
                WITH ORDINALITY AS u(id, route, credential, room_id, call, request, body, dead, n)
            ORDER BY n
            """,
            [.textArray(deliveries.map(\.id)), .textArray(deliveries.map(\.route)), .textArray(deliveries.map(\.room.credential)),
             .textArray(deliveries.map(\.room.roomID)), .bytesArray(deliveries.map(\.call)), .textArray(deliveries.map(\.request)),
             .bytesArray(deliveries.map(\.body)), .textArray(deliveries.map(\.deadReason)), .integer(now)])
        for delivery in deliveries where delivery.deadReason == nil { rooms[delivery.room, default: RoomWork()].hasNewPending = true }
        return results
    }

    /// One webhook's writes in a savepoint of its own: a failing write fails this webhook only.
    private func storeIsolated(_ write: WebhookWrite, now: UnixMilliseconds, rooms: inout [RoomKey: RoomWork]) throws(PostgresError)
        -> Result<StoreOutcome, StoreError>
    {
        try connection.execute("SAVEPOINT webhook")
        var touched = rooms
        do throws(PostgresError) {
            let result = try store(write, now: now, rooms: &touched)
            try connection.execute("RELEASE SAVEPOINT webhook")
            rooms = touched
            return result
        } catch where !error.isConnectionLost {
            try connection.execute("ROLLBACK TO SAVEPOINT webhook; RELEASE SAVEPOINT webhook")
            return .failure(.unavailable(error.description))
        }
    }

    /// One webhook's writes: its dedupe key, its bindings, its deliveries. A duplicate or a
    /// binding conflict leaves nothing behind; a failing statement throws (the caller rolls
    /// the transaction back, or the savepoint).
    private func store(_ write: WebhookWrite, now: UnixMilliseconds, rooms: inout [RoomKey: RoomWork]) throws(PostgresError)
        -> Result<StoreOutcome, StoreError>
    {
        if let dedupe = write.dedupe {
            // Stored unless a live key is there; a replica racing on the same key waits for the
            // other's transaction and then finds it.
            let stored = try connection.query(
                """
                INSERT INTO dedupe_digests (key, first_id, expires_at) VALUES ($1, $2, $3)
                ON CONFLICT (key) DO UPDATE SET first_id = excluded.first_id, expires_at = excluded.expires_at
                WHERE dedupe_digests.expires_at <= $4 RETURNING first_id
                """, [.bytes(dedupe.digest.bytes), .text(dedupe.firstID), .integer(dedupe.expiresAt), .integer(now)])
            if stored.count == 0 {
                let first = try connection.query("SELECT first_id FROM dedupe_digests WHERE key = $1", [.bytes(dedupe.digest.bytes)])
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
                // The key this webhook just stored goes with it (it was free, or expired).
                if let dedupe = write.dedupe {
                    try connection.query("DELETE FROM dedupe_digests WHERE key = $1", [.bytes(dedupe.digest.bytes)])
                }
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
            try connection.query(
                """
                INSERT INTO deliveries (id, route, credential, room_id, call, request, body, state, attempts, accepted_at, next_attempt_at, last_reason)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $10)
                """,
                [.text(delivery.id), .text(delivery.route), .text(delivery.room.credential), .text(delivery.room.roomID), .bytes(delivery.call),
                 .text(delivery.request), .bytes(delivery.body), .text(pending ? "pending" : "dead"), .integer(now),
                 delivery.deadReason.map(PostgresValue.text) ?? .null])
            if pending { rooms[delivery.room, default: RoomWork()].hasNewPending = true }
        }
        return .success(.stored)
    }

    // MARK: Dispatch

    package func claimDue(limit: Int, now: UnixMilliseconds, busy: Set<RoomKey>) throws(StoreError) -> [DueDelivery] {
        guard limit > 0 else { return [] }
        do throws(PostgresError) {
            // One round trip: the rooms claimed (lease written), a taken-over head counted as a
            // redelivery, and the heads' rows. Every step is an index lookup per claimed room (=
            // ANY of an array, LATERAL): as joins, the planner chose to scan every delivery ever
            // kept, on every claim, and an idle relay burned half a core. The heads are read by
            // `seq` alone and their state checked here: with `state = 'pending'` in the lookup
            // the planner may walk the pending-by-room index, every pending row, once per room.
            // A claimed room is due again when its lease runs out, so that the due index leads
            // with rooms that can be taken, not every room in flight; the lease is checked all
            // the same (an operator's retry or replay may make a held room due now).
            let claimed = try connection.query(
                """
                WITH picked AS (
                    SELECT credential, room_id, lease_owner IS NOT NULL AS taken_over FROM rooms
                    WHERE due_at <= $1 AND (lease_owner IS NULL OR lease_until < $1)
                    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED),
                claimed AS (
                    UPDATE rooms r SET lease_owner = $3, lease_until = $4, due_at = $4 FROM picked p
                    WHERE r.credential = p.credential AND r.room_id = p.room_id
                    RETURNING r.head_seq, p.taken_over, r.credential, r.room_id),
                counted AS (
                    UPDATE deliveries SET redeliveries = CASE WHEN state = 'pending' THEN redeliveries + 1 ELSE redeliveries END
                    WHERE seq = ANY(ARRAY(SELECT head_seq FROM claimed WHERE taken_over)) RETURNING seq)
                SELECT c.head_seq, c.taken_over, c.credential, c.room_id, d.id, d.route, d.call, d.attempts, d.accepted_at, d.state
                FROM claimed c LEFT JOIN LATERAL (
                    SELECT id, route, call, attempts, accepted_at, state FROM deliveries WHERE seq = c.head_seq) d ON true
                """,
                [.integer(now), .integer(limit), .text(configuration.owner), .integer(now.addingSaturating(configuration.claimTimeout.wholeMilliseconds))])
            var due: [DueDelivery] = []
            for row in 0..<claimed.count {
                let seq = claimed.integer(row, 0)
                let room = RoomKey(credential: claimed.text(row, 2) ?? "", roomID: claimed.text(row, 3) ?? "")
                guard let id = claimed.text(row, 4), claimed.text(row, 9) == DeliveryState.pending.rawValue else {
                    // Its head was deleted by an operator, or is no longer pending: the room moves
                    // to its next delivery.
                    try connection.execute("BEGIN")
                    var work = RoomWork()
                    work.finished = [seq]
                    work.hadOutcome = true
                    try settle([room: work], now: now)
                    try connection.execute("COMMIT")
                    continue
                }
                // A taken-over head: its holder stopped answering while sending it; sent again.
                due.append(
                    DueDelivery(
                        id: id, route: claimed.text(row, 5) ?? "", room: room, call: claimed.bytes(row, 6), attempts: claimed.integer(row, 7),
                        acceptedAt: claimed.integer(row, 8), isRedelivery: claimed.text(row, 1) == "t"))
            }
            return due
        } catch {
            try? connection.execute("ROLLBACK")
            throw storeError(error)
        }
    }

    package func nextDueTime(after now: UnixMilliseconds) throws(StoreError) -> UnixMilliseconds? {
        do throws(PostgresError) {
            // The next due time, a held room's being the end of its lease (another replica's may
            // be taken over then): one index lookup, however many rooms wait. Waking early, for a
            // lease that ends with its outcome recorded, costs one empty claim.
            let rows = try connection.query("SELECT min(due_at) FROM rooms WHERE due_at > $1", [.integer(now)])
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
        let second = currentUnixMilliseconds() / 1000
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

    package func purge(now: UnixMilliseconds, deliveredBefore: UnixMilliseconds, deadBefore: UnixMilliseconds, limit: Int) throws(StoreError)
        -> PurgeResult
    {
        do throws(PostgresError) {
            try connection.execute("BEGIN")
            // One replica purges at a time (the others find the lock taken and skip this round):
            // replicas deleting the same rows at once could deadlock each other.
            guard try connection.query("SELECT pg_try_advisory_xact_lock($1)", [.integer(PostgresSchema.purgeLock)]).text(0, 0) == "t" else {
                try connection.execute("COMMIT")
                return PurgeResult(deadDeleted: 0, isComplete: true)
            }
            // A finished delivery's `next_attempt_at` is when it finished.
            let gone = try PostgresSchema.deleteDeliveries(
                connection, where: "(state = 'delivered' AND next_attempt_at < $1) OR (state = 'dead' AND next_attempt_at < $2)",
                [.integer(deliveredBefore), .integer(deadBefore)], limit: limit)
            let keys = try connection.query(
                """
                WITH gone AS (DELETE FROM dedupe_digests WHERE key IN (SELECT key FROM dedupe_digests WHERE expires_at < $1 LIMIT $2) RETURNING 1)
                SELECT count(*) FROM gone
                """, [.integer(now), .integer(limit)])
            let bindings = try connection.query(
                """
                WITH gone AS (
                    DELETE FROM bindings WHERE (kind, value) IN (SELECT kind, value FROM bindings WHERE expires_at <= $1 LIMIT $2) RETURNING 1)
                SELECT count(*) FROM gone
                """, [.integer(now), .integer(limit)])
            try connection.execute("COMMIT")
            let isComplete = gone.deleted < limit && keys.integer(0, 0) < limit && bindings.integer(0, 0) < limit
            return PurgeResult(deadDeleted: gone.dead, isComplete: isComplete)
        } catch {
            try? connection.execute("ROLLBACK")
            throw storeError(error)
        }
    }

    package func refusal() -> StoreError? {
        connection.isOpen ? nil : .unavailable("the database cannot be reached")
    }
}
