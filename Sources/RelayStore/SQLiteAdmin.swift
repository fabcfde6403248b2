import FoundationEssentials
import RelayMapping

/// One delivery as an operator sees it in a list.
package struct DeliverySummary: Sendable, Equatable {
    package var id: String
    package var state: DeliveryState
    package var route: String
    package var attempts: Int
    package var lastReason: String
    package var acceptedAt: UnixMilliseconds
}

/// Which deliveries a list shows: every filter optional, a page of `limit` after the cursor.
package struct DeliveryFilter: Sendable, Equatable {
    package var state: DeliveryState?
    package var route: String?
    /// Only deliveries for this chat room.
    package var roomID: String?
    /// Accepted at or after.
    package var since: UnixMilliseconds?
    /// Accepted before.
    package var until: UnixMilliseconds?
    /// The cursor a previous page returned (0: from the start).
    package var after = 0
    /// At most this many (nil: all).
    package var limit: Int?

    package init(
        state: DeliveryState? = nil, route: String? = nil, roomID: String? = nil, since: UnixMilliseconds? = nil, until: UnixMilliseconds? = nil,
        after: Int = 0, limit: Int? = nil
    ) {
        self.state = state
        self.route = route
        self.roomID = roomID
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }
}

/// One delivery in full: what arrived (secrets were never stored), the call it became
/// (without the token), every attempt with HappyTalk's answer.
package struct DeliveryDetail: Sendable, Equatable {
    package var id: String
    package var state: DeliveryState
    package var route: String
    package var credential: String
    package var roomID: String
    /// The stored call (`{}` for a webhook whose mapping failed).
    package var call: [UInt8]
    /// `{"headers":{…},"query":{…}}`.
    package var request: String
    package var body: [UInt8]?
    package var attemptCount: Int
    package var acceptedAt: UnixMilliseconds
    /// When a pending delivery is tried next; when a finished one finished.
    package var nextAttemptAt: UnixMilliseconds
    package var lastReason: String
    package var attempts: [AttemptRecord]
}

/// A dead delivery with what replay needs: the request as the route read it.
package struct StoredRequest: Sendable {
    package var id: String
    package var route: String
    package var credential: String
    /// `{"headers":{…},"query":{…}}`, and in records of earlier versions `"body"` too.
    package var request: String
    /// The body; nil in records of earlier versions (then it is inside `request`).
    package var body: [UInt8]?
    /// The call it died with (`{}` when its mapping failed), and its room.
    package var call: [UInt8]
    package var roomID: String
}

/// A binding as stored.
package struct BindingRecord: Sendable, Equatable {
    package var kind: String
    package var value: String
    package var uuid: String
    package var roomID: String
    package var createdAt: UnixMilliseconds
    package var expiresAt: UnixMilliseconds
}

/// What operators do with the store — list, replay, bindings, gauges — on a connection of its
/// own, safe beside a running relay (SQLite's locking; a running relay notices the changes).
package final class SQLiteAdmin: DeliveryAdministration {
    private let database: SQLiteDatabase

    /// Opens the database of a data directory that exists (nil when it has none), at this
    /// version's schema (`SQLiteSchema.requireCurrent`).
    package init?(directory: String) throws(SQLiteError) {
        let path = SQLiteSchema.path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        database = try SQLiteDatabase(path: path)
        try SQLiteSchema.requireCurrent(database, path: path)
    }

    /// Deliveries, oldest first, in one state or all.
    package func list(state: DeliveryState?) throws(SQLiteError) -> [DeliverySummary] {
        try list(DeliveryFilter(state: state)).rows
    }

    /// One page of the deliveries that pass `filter`, oldest first, and the cursor of the
    /// next page (nil on the last).
    package func list(_ filter: DeliveryFilter) throws(SQLiteError) -> (rows: [DeliverySummary], next: Int?) {
        let query = try database.prepare(
            """
            SELECT seq, id, state, route, attempts, IFNULL(last_reason, ''), accepted_at FROM deliveries
            WHERE seq > ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR route = ?3) AND (?4 IS NULL OR accepted_at >= ?4)
              AND (?5 IS NULL OR accepted_at < ?5) AND (?7 IS NULL OR room_id = ?7)
            ORDER BY seq LIMIT ?6
            """)
        try query.bind([
            .integer(filter.after), filter.state.map { .text($0.rawValue) } ?? .null, filter.route.map(SQLiteValue.text) ?? .null,
            filter.since.map(SQLiteValue.integer) ?? .null, filter.until.map(SQLiteValue.integer) ?? .null,
            .integer(filter.limit.map { $0 + 1 } ?? -1), filter.roomID.map(SQLiteValue.text) ?? .null,
        ])
        var rows: [DeliverySummary] = []
        var sequences: [Int] = []
        while try query.step() {
            sequences.append(query.integer(0))
            rows.append(
                DeliverySummary(
                    id: query.text(1) ?? "", state: DeliveryState(rawValue: query.text(2) ?? "") ?? .dead, route: query.text(3) ?? "",
                    attempts: query.integer(4), lastReason: query.text(5) ?? "", acceptedAt: query.integer(6)))
        }
        // One row more than the page tells whether another page follows.
        guard let limit = filter.limit, rows.count > limit else { return (rows, nil) }
        return (Array(rows.prefix(limit)), sequences[limit - 1])
    }

    /// One delivery with everything an operator needs to see why it is where it is.
    package func detail(id: String) throws(SQLiteError) -> DeliveryDetail? {
        let select = try database.prepare(
            """
            SELECT d.id, d.state, d.route, d.credential, d.room_id, d.call, p.request, p.body, d.attempts, d.accepted_at, d.next_attempt_at,
                IFNULL(d.last_reason, '')
            FROM deliveries d LEFT JOIN payloads p ON p.seq = d.seq WHERE d.id = ?
            """)
        try select.bind([.text(id)])
        guard try select.step() else { return nil }
        var detail = DeliveryDetail(
            id: select.text(0) ?? "", state: DeliveryState(rawValue: select.text(1) ?? "") ?? .dead, route: select.text(2) ?? "",
            credential: select.text(3) ?? "", roomID: select.text(4) ?? "", call: select.bytes(5), request: select.text(6) ?? "{}",
            body: select.isNull(7) ? nil : select.bytes(7), attemptCount: select.integer(8), acceptedAt: select.integer(9),
            nextAttemptAt: select.integer(10), lastReason: select.text(11) ?? "", attempts: [])
        select.reset()
        let attempts = try database.prepare(
            "SELECT attempt, at, outcome, reason, http_status, code, message FROM attempts WHERE delivery_id = ? ORDER BY rowid")
        try attempts.bind([.text(id)])
        while try attempts.step() {
            detail.attempts.append(
                AttemptRecord(
                    attempt: attempts.integer(0), at: attempts.integer(1), outcome: attempts.text(2) ?? "", reason: attempts.text(3) ?? "",
                    answer: UpstreamAnswer(
                        status: attempts.isNull(4) ? nil : attempts.integer(4), code: attempts.isNull(5) ? nil : attempts.integer(5),
                        message: attempts.text(6))))
        }
        // The successful attempt is the row itself (see `SQLiteDeliveryStore.record`).
        if detail.state == .delivered {
            detail.attempts.append(
                AttemptRecord(
                    attempt: detail.attemptCount, at: detail.nextAttemptAt, outcome: "delivered", reason: "delivered",
                    answer: UpstreamAnswer(status: 200)))
        }
        return detail
    }

    /// Deletes one delivery (in any state) with its attempts; false when there was none. A
    /// running relay moves the delivery's room on to the next one.
    package func delete(id: String) throws(SQLiteError) -> Bool {
        try database.writeTransaction { () throws(SQLiteError) in
            try database.prepare("DELETE FROM attempts WHERE delivery_id = ?").run([.text(id)])
            try database.prepare("DELETE FROM deliveries WHERE id = ?").run([.text(id)])
            return database.changes > 0
        }
    }

    package func deleteDead(before cutoff: UnixMilliseconds, limit: Int) throws(SQLiteError) -> Int {
        try database.writeTransaction { () throws(SQLiteError) in
            try SQLiteSchema.deleteDeliveries(database, where: "state = 'dead' AND next_attempt_at < ?", [.integer(cutoff)], limit: limit).deleted
        }
    }

    /// Makes a pending delivery, and its room's deliveries before it, due now.
    package func retry(id: String, now: UnixMilliseconds) throws(SQLiteError) -> DeliveryRetryResult {
        try database.writeTransaction { () throws(SQLiteError) in
            let select = try database.prepare("SELECT seq, state, credential, room_id FROM deliveries WHERE id = ?")
            try select.bind([.text(id)])
            guard try select.step() else {
                select.reset()
                return .notFound
            }
            let (seq, state, credential, room) = (select.integer(0), DeliveryState(rawValue: select.text(1) ?? "") ?? .dead, select.text(2) ?? "", select.text(3) ?? "")
            select.reset()
            guard state == .pending else { return .notPending(state) }
            let inRoom: [SQLiteValue] = [.integer(now), .text(credential), .text(room), .integer(seq)]
            try database.prepare(
                "UPDATE deliveries SET next_attempt_at = ?1 WHERE state = 'pending' AND credential = ?2 AND room_id = ?3 AND seq <= ?4"
            ).run(inRoom)
            // The running relay notices the change and derives its room heads again from the
            // deliveries (`SQLiteDeliveryStore.changedElsewhere`): the room is due now there too.
            return .scheduled(behind: max(database.changes - 1, 0))
        }
    }

    /// A value the serving relay recorded for the CLI (its mappings folder), or nil.
    package func recorded(_ name: String) throws(SQLiteError) -> String? {
        let select = try database.prepare("SELECT value FROM relay_state WHERE name = ?")
        try select.bind([.text(name)])
        return try select.step() ? select.text(0) : nil
    }

    /// Records a value for the CLI.
    package func record(_ name: String, value: String) throws(SQLiteError) {
        try database.writeTransaction { () throws(SQLiteError) in
            try database.prepare("INSERT OR REPLACE INTO relay_state (name, value) VALUES (?, ?)").run([.text(name), .text(value)])
        }
    }

    package func deadIDs() throws(SQLiteError) -> [String] {
        let select = try database.prepare("SELECT id FROM deliveries WHERE state = 'dead' ORDER BY seq")
        var ids: [String] = []
        while try select.step() { ids.append(select.text(0) ?? "") }
        return ids
    }

    package func deadRequests(ids: [String]) throws(SQLiteError) -> [StoredRequest] {
        guard !ids.isEmpty else { return [] }
        let select = try database.prepare(
            """
            SELECT d.id, d.route, d.credential, p.request, p.body, d.call, d.room_id FROM deliveries d LEFT JOIN payloads p ON p.seq = d.seq
            WHERE d.state = 'dead' AND d.id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ","))) ORDER BY d.seq
            """)
        try select.bind(ids.map(SQLiteValue.text))
        var rows: [StoredRequest] = []
        while try select.step() {
            rows.append(
                StoredRequest(
                    id: select.text(0) ?? "", route: select.text(1) ?? "", credential: select.text(2) ?? "", request: select.text(3) ?? "{}",
                    body: select.isNull(4) ? nil : select.bytes(4), call: select.bytes(5), roomID: select.text(6) ?? ""))
        }
        return rows
    }

    /// Applies replay changes in one transaction; requeued deliveries go to the head of their
    /// room's queue if they are older than what is pending there (the serving relay derives
    /// its rooms' heads again when it notices the change).
    package func replay(_ changes: [(request: StoredRequest, change: ReplayChange)], now: UnixMilliseconds) throws(SQLiteError) {
        try database.writeTransaction { () throws(SQLiteError) in
            let requeue = try database.prepare(
                "UPDATE deliveries SET state = 'pending', room_id = ?, call = ?, attempts = 0, accepted_at = ?, next_attempt_at = ?, last_reason = 'replayed' WHERE id = ?")
            let keepDead = try database.prepare("UPDATE deliveries SET last_reason = ? WHERE id = ?")
            let insert = try database.prepare(
                """
                INSERT INTO deliveries (id, route, credential, room_id, call, state, attempts, accepted_at, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
                """)
            let insertPayload = try database.prepare(SQLiteSchema.insertPayload)
            for (request, change) in changes {
                switch change {
                case .keepDead(let reason):
                    try keepDead.run([.text(reason), .text(request.id)])
                case .requeue(let calls):
                    for (index, call) in calls.enumerated() {
                        let id = index == 0 ? request.id : "\(request.id)-r\(index)"
                        if index == 0 {
                            try requeue.run([.text(call.roomID), .blob(call.call), .integer(now), .integer(now), .text(id)])
                        } else {
                            try insert.run([
                                .text(id), .text(request.route), .text(request.credential), .text(call.roomID), .blob(call.call), .integer(now),
                                .integer(now),
                            ])
                            try insertPayload.run([
                                .integer(database.lastInsertedRowID), .text(request.request), request.body.map(SQLiteValue.blob) ?? .null,
                            ])
                        }
                    }
                }
            }
        }
    }

    /// Unexpired bindings (of one key, or all), by kind and value.
    package func bindings(kind: String?, value: String?, now: UnixMilliseconds) throws(SQLiteError) -> [BindingRecord] {
        let query = try database.prepare(
            """
            SELECT kind, value, uuid, room_id, created_at, expires_at FROM bindings
            WHERE expires_at > ?1 AND (?2 IS NULL OR (kind = ?2 AND value = ?3)) ORDER BY kind, value
            """)
        try query.bind([.integer(now), kind.map(SQLiteValue.text) ?? .null, value.map(SQLiteValue.text) ?? .null])
        var rows: [BindingRecord] = []
        while try query.step() {
            rows.append(
                BindingRecord(
                    kind: query.text(0) ?? "", value: query.text(1) ?? "", uuid: query.text(2) ?? "", roomID: query.text(3) ?? "",
                    createdAt: query.integer(4), expiresAt: query.integer(5)))
        }
        return rows
    }

    /// Deletes one binding; false when there was none.
    package func deleteBinding(kind: String, value: String) throws(SQLiteError) -> Bool {
        try database.writeTransaction { () throws(SQLiteError) in
            try database.prepare("DELETE FROM bindings WHERE kind = ? AND value = ?").run([.text(kind), .text(value)])
            return database.changes > 0
        }
    }

    /// Pending and dead deliveries, and when the oldest pending one was accepted.
    static let countsQuery = """
        SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'), (SELECT COUNT(*) FROM deliveries WHERE state = 'dead'),
               (SELECT MIN(accepted_at) FROM deliveries WHERE seq IN (SELECT MIN(seq) \(SQLiteSchema.pendingByRoom)))
        """

    /// The queue's counts. The oldest pending delivery is the oldest room head (each room's
    /// head is its oldest): the heads come from the index of pending rows, as the count does,
    /// and only they are read from the table.
    package func gauges(now: UnixMilliseconds) throws(SQLiteError) -> QueueGauges {
        let statement = try database.prepare(Self.countsQuery)
        guard try statement.step() else { return QueueGauges(pending: 0, dead: 0, oldestPendingAge: 0) }
        let age = statement.isNull(2) ? nil : now.subtractingIfFits(statement.integer(2))
        var gauges = QueueGauges(pending: statement.integer(0), dead: statement.integer(1), oldestPendingAge: Double(max(age ?? 0, 0)) / 1000)
        statement.reset()
        let dead = try database.prepare("SELECT route, COUNT(*) FROM deliveries WHERE state = 'dead' GROUP BY route ORDER BY route")
        while try dead.step() { gauges.deadByRoute.append((dead.text(0) ?? "", dead.integer(1))) }
        return gauges
    }
}
