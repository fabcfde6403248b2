import Foundation
import TestSupport
import Testing

@testable import RelayStore

@Suite(.enabled(if: PostgresCluster.binaries != nil, "PostgreSQL is installed by deploy/install-build-deps --tests"))
struct PostgresAdminTests {
    /// Three dead deliveries on two routes, two pending in one room, a binding, an attempt.
    static func seed(_ connection: PostgresConnection) throws {
        let rows: [(String, String, String, String, Int)] = [
            ("d1", "/a", "r-1", "dead", 1_000), ("d2", "/a", "r-2", "dead", 2_000), ("d3", "/b", "r-3", "dead", 3_000),
            ("p1", "/a", "r-9", "pending", 4_000), ("p2", "/a", "r-9", "pending", 5_000),
        ]
        for (id, route, room, state, at) in rows {
            try connection.query(
                """
                INSERT INTO deliveries (id, route, credential, room_id, call, request, body, state, attempts, accepted_at, next_attempt_at, last_reason)
                VALUES ($1, $2, '', $3, $4, '{"headers":{},"query":{}}', $5, $6, 1, $7, $7, $8)
                """,
                [.text(id), .text(route), .text(room), .bytes(Array(#"{"uuid":"u","room_id":"\#(room)"}"#.utf8)), .bytes(Array("{}".utf8)), .text(state),
                 .integer(at), state == "dead" ? .text("HappyTalk refused the call: -503 room") : .null])
        }
        try connection.execute("INSERT INTO rooms (credential, room_id, head_seq, due_at) SELECT '', 'r-9', min(seq), 900000 FROM deliveries WHERE room_id = 'r-9'")
        try connection.query(
            "INSERT INTO attempts (delivery_id, attempt, at, outcome, reason, http_status, code, message) VALUES ('d1', 1, 1500, 'dead', 'HappyTalk answered -503 room', 200, -503, 'room')")
        try connection.query("INSERT INTO bindings VALUES ('order_number', '1043', 'u-1', 'r-1', 10, 99999999999)")
    }

    @Test func operatorsSeeAndChangeTheSharedStore() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            try PostgresSchema.migrate(try PostgresConnection(url: cluster.url))
            let admin = try PostgresAdmin(url: cluster.url)
            try Self.seed(try PostgresConnection(url: cluster.url))

            let page = try admin.list(DeliveryFilter(state: .dead, limit: 2))
            #expect(page.rows.map(\.id) == ["d1", "d2"] && page.next != nil)
            #expect(try admin.list(DeliveryFilter(state: .dead, after: page.next!, limit: 2)).rows.map(\.id) == ["d3"])
            #expect(try admin.list(DeliveryFilter(route: "/b")).rows.map(\.id) == ["d3"])
            #expect(try admin.list(DeliveryFilter(roomID: "r-9", since: 4_500)).rows.map(\.id) == ["p2"])

            let detail = try #require(try admin.detail(id: "d1"))
            #expect(detail.state == .dead && detail.call == Array(#"{"uuid":"u","room_id":"r-1"}"#.utf8) && detail.body == Array("{}".utf8))
            #expect(detail.attempts == [AttemptRecord(attempt: 1, at: 1500, outcome: "dead", reason: "HappyTalk answered -503 room", answer: UpstreamAnswer(status: 200, code: -503, message: "room"))])
            #expect(try admin.detail(id: "nope") == nil)

            #expect(try admin.retry(id: "p2", now: 7_000) == .scheduled(behind: 1))
            #expect(try admin.retry(id: "d1", now: 7_000) == .notPending(.dead))
            #expect(try admin.retry(id: "nope", now: 7_000) == .notFound)
            let check = try PostgresConnection(url: cluster.url)
            #expect(try check.query("SELECT due_at FROM rooms WHERE room_id = 'r-9'").integer(0, 0) == 7_000)

            let dead = try admin.deadRequests(ids: admin.deadIDs())
            #expect(dead.map(\.id) == ["d1", "d2", "d3"] && dead[0].roomID == "r-1")
            try admin.replay([(dead[0], .requeue([(roomID: "r-1", call: dead[0].call)])), (dead[1], .keepDead("replay: ignored"))], now: 8_000)
            #expect(try admin.detail(id: "d1")?.state == .pending)
            #expect(try admin.detail(id: "d2")?.lastReason == "replay: ignored")
            #expect(try check.query("SELECT count(*) FROM rooms WHERE room_id = 'r-1'").integer(0, 0) == 1)

            var gauges = try admin.gauges(now: 10_000)
            #expect(gauges.pending == 3 && gauges.dead == 2 && gauges.deadByRoute.map(\.count) == [1, 1])
            #expect(try admin.delete(id: "d2") && !(try admin.delete(id: "d2")))
            #expect(try admin.deleteDead(before: 2_500, limit: 10) == 0)
            #expect(try admin.deleteDead(before: 3_500, limit: 10) == 1)
            gauges = try admin.gauges(now: 10_000)
            #expect(gauges.dead == 0)

            #expect(try admin.bindings(kind: "order_number", value: "1043", now: 100).map(\.uuid) == ["u-1"])
            #expect(try admin.deleteBinding(kind: "order_number", value: "1043") && (try admin.bindings(kind: nil, value: nil, now: 100)).isEmpty)
            try admin.record("mappings_folder", value: "/etc/happyrelay/mappings")
            try admin.record("mappings_folder", value: "/srv/mappings")
            #expect(try admin.recorded("mappings_folder") == "/srv/mappings" && (try admin.recorded("nothing")) == nil)
        }
    }

    /// Operators' tools neither create nor upgrade the schema (only `serve` and `store copy`
    /// do): on a database no relay has served they find no store and leave it as it was, and
    /// a schema of another version is refused.
    @Test func operatorsToolsNeitherCreateNorUpgradeTheSchema() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let location = StoreLocation.postgres(url: cluster.url)
            let check = try PostgresConnection(url: cluster.url)
            #expect(try location.openAdministration() == nil)
            #expect(try location.openLookups() == nil)
            #expect(try check.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").integer(0, 0) == 0)

            try PostgresSchema.migrate(check)
            #expect(try location.openAdministration() != nil)
            #expect(try location.openLookups() != nil)

            for (found, message) in [
                (0, "the store \(PostgresURL.redacted(cluster.url)) has schema 0, this happyrelay's is 1: start this version's `happyrelay serve` on it once (it upgrades the store at start-up), then run this again"),
                (2, "the store was written by a newer happyrelay (schema 2, this one knows 1)"),
            ] {
                try check.query("UPDATE happyrelay_schema SET version = $1", [.integer(found)])
                let adminRefusal = #expect(throws: PostgresError.self) { try location.openAdministration() }
                #expect(adminRefusal?.description == message)
                let lookupsRefusal = #expect(throws: PostgresError.self) { try location.openLookups() }
                #expect(lookupsRefusal?.description == message)
                #expect(try check.query("SELECT version FROM happyrelay_schema").integer(0, 0) == found)
            }
        }
    }
}
