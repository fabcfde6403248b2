import Foundation
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

/// A dead delivery with what replay needs: the request as the route read it.
package struct StoredRequest: Sendable {
    package var id: String
    package var route: String
    package var credential: String
    /// `{"headers":{…},"query":{…}}`, and in records of earlier versions `"body"` too.
    package var request: String
    /// The body; nil in records of earlier versions (then it is inside `request`).
    package var body: [UInt8]?
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
package final class SQLiteAdmin {
    private let database: SQLiteDatabase

    /// Opens the database of a data directory that exists (nil when it has none).
    package init?(directory: String) throws(SQLiteError) {
        let path = SQLiteSchema.path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        database = try SQLiteDatabase(path: path)
        try SQLiteSchema.migrate(database)
    }

    /// Deliveries, oldest first, in one state or all.
    package func list(state: DeliveryState?) throws(SQLiteError) -> [DeliverySummary] {
        let query = try database.prepare(
            "SELECT id, state, route, attempts, IFNULL(last_reason, ''), accepted_at FROM deliveries WHERE (?1 IS NULL OR state = ?1) ORDER BY seq")
        try query.bind([state.map { .text($0.rawValue) } ?? .null])
        var rows: [DeliverySummary] = []
        while try query.step() {
            rows.append(
                DeliverySummary(
                    id: query.text(0) ?? "", state: DeliveryState(rawValue: query.text(1) ?? "") ?? .dead, route: query.text(2) ?? "",
                    attempts: query.integer(3), lastReason: query.text(4) ?? "", acceptedAt: query.integer(5)))
        }
        return rows
    }

    /// Dead deliveries (one, or all), with their requests.
    package func deadRequests(id: String?) throws(SQLiteError) -> [StoredRequest] {
        let select = try database.prepare(
            "SELECT id, route, credential, request, body FROM deliveries WHERE state = 'dead' AND (?1 IS NULL OR id = ?1) ORDER BY seq")
        try select.bind([id.map(SQLiteValue.text) ?? .null])
        var rows: [StoredRequest] = []
        while try select.step() {
            rows.append(
                StoredRequest(
                    id: select.text(0) ?? "", route: select.text(1) ?? "", credential: select.text(2) ?? "", request: select.text(3) ?? "{}",
                    body: select.isNull(4) ? nil : select.bytes(4)))
        }
        return rows
    }

    /// What a replay does to one dead delivery.
    package enum ReplayChange {
        /// Pending again with these calls (the first keeps the delivery's id; others get `ID-rN`).
        case requeue([(roomID: String, call: [UInt8])])
        /// Still dead, with this reason.
        case keepDead(String)
    }

    /// Applies replay changes in one transaction; requeued deliveries go to the head of their
    /// room's queue if they are older than what is pending there.
    package func replay(_ changes: [(request: StoredRequest, change: ReplayChange)], now: UnixMilliseconds) throws(SQLiteError) {
        try database.execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            let requeue = try database.prepare(
                "UPDATE deliveries SET state = 'pending', room_id = ?, call = ?, attempts = 0, accepted_at = ?, next_attempt_at = ?, last_reason = 'replayed' WHERE id = ?")
            let keepDead = try database.prepare("UPDATE deliveries SET last_reason = ? WHERE id = ?")
            let insert = try database.prepare(
                """
                INSERT INTO deliveries (id, route, credential, room_id, call, request, body, state, attempts, accepted_at, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)
                """)
            let seq = try database.prepare("SELECT seq FROM deliveries WHERE id = ?")
            let head = try database.prepare(
                """
                INSERT INTO rooms (credential, room_id, head_seq, due_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (credential, room_id) DO UPDATE SET head_seq = excluded.head_seq, due_at = excluded.due_at
                WHERE excluded.head_seq < rooms.head_seq
                """)
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
                                .text(id), .text(request.route), .text(request.credential), .text(call.roomID), .blob(call.call),
                                .text(request.request), request.body.map(SQLiteValue.blob) ?? .null, .integer(now), .integer(now),
                            ])
                        }
                        try seq.bind([.text(id)])
                        guard try seq.step() else { continue }
                        let rowSeq = seq.integer(0)
                        seq.reset()
                        try head.run([.text(request.credential), .text(call.roomID), .integer(rowSeq), .integer(now)])
                    }
                }
            }
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw error
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
        let delete = try database.prepare("DELETE FROM bindings WHERE kind = ? AND value = ?")
        try delete.run([.text(kind), .text(value)])
        return database.changes > 0
    }

    /// The queue's counts. The oldest pending delivery is the oldest room head (each room's
    /// head is its oldest), so that age costs O(rooms), not O(backlog).
    package func gauges(now: UnixMilliseconds) throws(SQLiteError) -> QueueGauges {
        let statement = try database.prepare(
            """
            SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'), (SELECT COUNT(*) FROM deliveries WHERE state = 'dead'),
                   (SELECT MIN(d.accepted_at) FROM rooms r JOIN deliveries d ON d.seq = r.head_seq)
            """)
        guard try statement.step() else { return QueueGauges(pending: 0, dead: 0, oldestPendingAge: 0) }
        let age = statement.isNull(2) ? nil : now.subtractingIfFits(statement.integer(2))
        return QueueGauges(pending: statement.integer(0), dead: statement.integer(1), oldestPendingAge: Double(max(age ?? 0, 0)) / 1000)
    }
}
