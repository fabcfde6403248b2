import Foundation
import RelayMapping
import TestSupport
import Testing

@testable import RelayStore

@Suite(.enabled(if: PostgresCluster.binaries != nil, "PostgreSQL is installed by deploy/install-build-deps --tests"))
struct PostgresDeliveryStoreTests {
    /// Two replicas' writer stores on one database, with 30 s claims.
    static func replicas(on cluster: PostgresCluster, _ first: String, _ second: String) throws -> (PostgresDeliveryStore, PostgresDeliveryStore) {
        var configuration = PostgresDeliveryStore.Configuration()
        configuration.claimTimeout = .seconds(30)
        configuration.owner = first
        let one = try PostgresDeliveryStore(url: cluster.url, configuration: configuration)
        configuration.owner = second
        return (one, try PostgresDeliveryStore(url: cluster.url, configuration: configuration))
    }

    static func delivery(_ id: String, room: String) -> NewDelivery {
        NewDelivery(
            id: id, route: "/r", room: RoomKey(credential: "", roomID: room), call: Array(#"{"uuid":"u","room_id":"\#(room)"}"#.utf8),
            request: #"{"headers":{},"query":{}}"#, body: Array("{}".utf8))
    }

    @Test func replicasShareDedupeBindingsAndEachRoomInOrderAndTakeOverADeadReplicasRooms() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let (a, b) = try Self.replicas(on: cluster, "replica-a", "replica-b")
            let now = 1_000_000
            let key = DedupeRecord(digest: DedupeDigest(route: "/r", key: "evt-1"), firstID: "w1", expiresAt: now + 60_000)

            // One webhook on replica A: two calls for room r-1, one for r-2.
            let stored = try a.commit(
                [WebhookWrite(deliveries: [Self.delivery("w1", room: "r-1"), Self.delivery("w1-1", room: "r-1"), Self.delivery("w1-2", room: "r-2")], dedupe: key)],
                outcomes: [], now: now)
            #expect(stored == [.success(.stored)])
            // The same event reaching replica B is a duplicate of A's.
            let again = try b.commit([WebhookWrite(deliveries: [Self.delivery("w2", room: "r-1")], dedupe: DedupeRecord(digest: key.digest, firstID: "w2", expiresAt: now + 60_000))], outcomes: [], now: now)
            #expect(again == [.success(.duplicate(firstID: "w1"))])
            #expect(try b.pendingCount() == 3)

            // A claims both rooms' heads; B finds nothing to send while A holds them.
            let claimedByA = try a.claimDue(limit: 10, now: now, busy: [])
            #expect(Set(claimedByA.map(\.id)) == ["w1", "w1-2"])
            #expect(try b.claimDue(limit: 10, now: now, busy: []).isEmpty)
            // A delivers r-1's head: the room's next call is B's to send now, in order.
            let first = try #require(claimedByA.first { $0.id == "w1" })
            _ = try a.commit([], outcomes: [DeliveryOutcome(id: first.id, room: first.room, disposition: .delivered, attempts: 1, reason: "delivered")], now: now + 10)
            let claimedByB = try b.claimDue(limit: 10, now: now + 20, busy: [])
            #expect(claimedByB.map(\.id) == ["w1-1"])

            // A dies holding r-2: once its lease runs out, B takes the room and sends it again.
            #expect(try b.nextDueTime(after: now + 20) == now + 30_000)
            #expect(try b.claimDue(limit: 10, now: now + 29_000, busy: []).isEmpty)
            let takenOver = try b.claimDue(limit: 10, now: now + 30_001, busy: [])
            #expect(takenOver.map(\.id) == ["w1-2"])
            let check = try PostgresConnection(url: cluster.url)
            #expect(try check.query("SELECT redeliveries FROM deliveries WHERE id = 'w1-2'").integer(0, 0) == 1)

            // A retry keeps the room's order and frees it at its due time; a death moves the head on.
            _ = try b.commit([], outcomes: [DeliveryOutcome(id: "w1-1", room: RoomKey(credential: "", roomID: "r-1"), disposition: .retry(at: now + 50_000), attempts: 1, reason: "HTTP 503", answer: UpstreamAnswer(status: 503))], now: now + 40_000)
            #expect(try a.claimDue(limit: 10, now: now + 40_001, busy: []).isEmpty)
            #expect(try a.claimDue(limit: 10, now: now + 50_000, busy: []).map(\.id) == ["w1-1"])
            _ = try a.commit([], outcomes: [DeliveryOutcome(id: "w1-1", room: RoomKey(credential: "", roomID: "r-1"), disposition: .dead(reason: "HappyTalk refused the call: -503 room"), attempts: 2, reason: "HappyTalk answered -503 room", answer: UpstreamAnswer(status: 200, code: -503, message: "room"))], now: now + 50_010)
            #expect(try check.query("SELECT count(*) FROM rooms WHERE room_id = 'r-1'").integer(0, 0) == 0)
            let admin = try PostgresAdmin(url: cluster.url)
            #expect(try admin.detail(id: "w1-1")?.attempts.map(\.outcome) == ["retry", "dead"])

            // A chat bound on A cannot be taken by another customer on B.
            let bind = BindingWrite(kind: "order_number", value: "1043", uuid: "u-1", roomID: "r-1", ttl: .seconds(3600))
            #expect(try a.commit([WebhookWrite(bindings: [bind])], outcomes: [], now: now) == [.success(.stored)])
            var hijack = bind
            hijack.uuid = "u-evil"
            #expect(try b.commit([WebhookWrite(bindings: [hijack])], outcomes: [], now: now) == [.failure(.bindingConflict(kind: "order_number"))])
            // A refused bind leaves nothing behind, not even its dedupe key: the event is not a duplicate later.
            let hijackKey = DedupeRecord(digest: DedupeDigest(route: "/bind", key: "evt-h"), firstID: "h1", expiresAt: now + 60_000)
            #expect(try b.commit([WebhookWrite(dedupe: hijackKey, bindings: [hijack])], outcomes: [], now: now) == [.failure(.bindingConflict(kind: "order_number"))])
            #expect(try b.commit([WebhookWrite(dedupe: hijackKey)], outcomes: [], now: now) == [.success(.stored)])

            // Purging follows the retention settings.
            #expect(try a.purge(now: now + 100_000, deliveredBefore: now + 100_000, deadBefore: now + 100_000, limit: 500) == PurgeResult(deadDeleted: 1, isComplete: true))
        }
    }

    /// A replica too slow to record its outcome was taken over: whichever records first moves
    /// the room on; the late one records its attempt but leaves the room (and the lease of
    /// the replica now sending its next delivery) alone, so the room never has two in flight.
    @Test func aLateOutcomeFromATakenOverReplicaLeavesTheRoomAlone() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let (slow, quick) = try Self.replicas(on: cluster, "slow", "quick")
            let now = 1_000_000
            _ = try slow.commit([WebhookWrite(deliveries: ["x", "y", "z"].map { Self.delivery($0, room: "r-1") })], outcomes: [], now: now)
            let room = RoomKey(credential: "", roomID: "r-1")
            #expect(try slow.claimDue(limit: 10, now: now, busy: []).map(\.id) == ["x"])
            // The lease runs out: quick takes x over, delivers it, and claims y.
            #expect(try quick.claimDue(limit: 10, now: now + 30_001, busy: []).map(\.id) == ["x"])
            _ = try quick.commit([], outcomes: [DeliveryOutcome(id: "x", room: room, disposition: .delivered, attempts: 1, reason: "delivered")], now: now + 30_010)
            #expect(try quick.claimDue(limit: 10, now: now + 30_020, busy: []).map(\.id) == ["y"])
            // slow's outcome for x comes last (delivered, or a retry): y stays quick's alone.
            _ = try slow.commit([], outcomes: [DeliveryOutcome(id: "x", room: room, disposition: .delivered, attempts: 1, reason: "delivered")], now: now + 30_030)
            #expect(try slow.claimDue(limit: 10, now: now + 30_040, busy: []).isEmpty)
            _ = try slow.commit([], outcomes: [DeliveryOutcome(id: "x", room: room, disposition: .retry(at: now + 30_050), attempts: 2, reason: "HTTP 503")], now: now + 30_045)
            #expect(try slow.claimDue(limit: 10, now: now + 30_060, busy: []).isEmpty)
            let check = try PostgresConnection(url: cluster.url)
            #expect(try check.query("SELECT state FROM deliveries WHERE id = 'x'").text(0, 0) == "delivered")
            // y's outcome moves the room on to z as usual.
            _ = try quick.commit([], outcomes: [DeliveryOutcome(id: "y", room: room, disposition: .delivered, attempts: 1, reason: "delivered")], now: now + 30_070)
            #expect(try slow.claimDue(limit: 10, now: now + 30_080, busy: []).map(\.id) == ["z"])
            // An operator deleting the head while it waits: the room moves to its next delivery.
            let admin = try PostgresAdmin(url: cluster.url)
            _ = try slow.commit([], outcomes: [DeliveryOutcome(id: "z", room: room, disposition: .retry(at: now + 40_000), attempts: 1, reason: "HTTP 503")], now: now + 30_090)
            _ = try slow.commit([WebhookWrite(deliveries: [Self.delivery("w", room: "r-1")])], outcomes: [], now: now + 30_100)
            #expect(try admin.delete(id: "z"))
            #expect(try quick.claimDue(limit: 10, now: now + 40_000, busy: []).isEmpty)
            #expect(try quick.claimDue(limit: 10, now: now + 40_010, busy: []).map(\.id) == ["w"])
        }
    }

    /// A batch is one statement per kind of write: forty webhooks, or their forty outcomes, cost
    /// the round trips of one (a store thread waiting on a round trip per row could not keep up).
    @Test func aBatchCostsTheSameStatementsWhateverItsSize() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let (store, _) = try Self.replicas(on: cluster, "one", "other")
            let now = 1_000_000
            func webhook(_ index: Int) -> WebhookWrite {
                WebhookWrite(
                    deliveries: [Self.delivery("w\(index)", room: "r-\(index)")],
                    dedupe: DedupeRecord(digest: DedupeDigest(route: "/r", key: "evt-\(index)"), firstID: "w\(index)", expiresAt: now + 60_000))
            }
            func statements(_ work: () throws -> Void) rethrows -> Int {
                let before = store.statementsRun
                try work()
                return store.statementsRun - before
            }
            func delivered(_ due: [DueDelivery]) -> [DeliveryOutcome] {
                due.map { DeliveryOutcome(id: $0.id, room: $0.room, disposition: .delivered, attempts: 1, reason: "delivered") }
            }
            let one = try statements { _ = try store.commit([webhook(0)], outcomes: [], now: now) }
            let forty = try statements { _ = try store.commit((1...40).map(webhook), outcomes: [], now: now) }
            #expect(forty == one, "one webhook: \(one) statements, forty: \(forty)")
            let first = try store.claimDue(limit: 1, now: now, busy: [])
            let rest = try store.claimDue(limit: 100, now: now, busy: [])
            #expect(first.count == 1 && rest.count == 40)
            let oneOutcome = try statements { _ = try store.commit([], outcomes: delivered(first), now: now + 1) }
            let fortyOutcomes = try statements { _ = try store.commit([], outcomes: delivered(rest), now: now + 1) }
            #expect(fortyOutcomes == oneOutcome, "one outcome: \(oneOutcome) statements, forty: \(fortyOutcomes)")
            #expect(try store.pendingCount() == 0)
        }
    }

    /// A commit locks its rooms in one order, whatever order its webhooks came in: held up on
    /// the first room, it holds none of the others; held up on the last, it holds all the others
    /// (two replicas locking the same rooms in different orders would deadlock; under load that
    /// race is too rare to catch).
    @Test func aCommitLocksItsRoomsInOneOrder() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let (store, _) = try Self.replicas(on: cluster, "one", "other")
            let rooms = (1...12).map { "r-" + ($0 < 10 ? "0" : "") + "\($0)" }
            _ = try store.commit([WebhookWrite(deliveries: rooms.map { Self.delivery("first-\($0)", room: $0) })], outcomes: [], now: 1_000)
            let probe = try PostgresConnection(url: cluster.url)
            for (round, held) in [rooms.first!, rooms.last!].enumerated() {
                let blocker = try PostgresConnection(url: cluster.url)
                try blocker.execute("BEGIN")
                try blocker.query("SELECT 1 FROM rooms WHERE room_id = $1 FOR UPDATE", [.text(held)])
                let committed = DispatchSemaphore(value: 0)
                // Used by that thread alone until it signals.
                nonisolated(unsafe) let writer = store
                Thread {
                    let webhooks = rooms.shuffled().map { WebhookWrite(deliveries: [Self.delivery("round-\(round)-\($0)", room: $0)]) }
                    _ = try? writer.commit(webhooks, outcomes: [], now: 2_000)
                    committed.signal()
                }.start()
                let deadline = Date().addingTimeInterval(10)
                while try probe.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").integer(0, 0) == 0 && Date() < deadline {
                    _ = committed.wait(timeout: .now() + .milliseconds(5))
                }
                for room in rooms where room != held {
                    try probe.execute("BEGIN")
                    do {
                        try probe.query("SELECT 1 FROM rooms WHERE room_id = $1 FOR UPDATE NOWAIT", [.text(room)])
                        #expect(held == rooms.first, "\(room) was not locked before \(held), the last room")
                    } catch {
                        #expect(held == rooms.last, "\(room) was locked before \(held), the first room")
                    }
                    try probe.execute("ROLLBACK")
                }
                try blocker.execute("COMMIT")
                #expect(committed.wait(timeout: .now() + 10) == .success)
            }
            #expect(try store.pendingCount() == 36)
        }
    }

    /// An operator's retry or replay touching a room another replica is sending from leaves
    /// the room to it: a room never has two deliveries in flight.
    @Test func aRetryOrReplayOfAHeldRoomDoesNotSendItTwice() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let (a, b) = try Self.replicas(on: cluster, "a", "b")
            let admin = try PostgresAdmin(url: cluster.url)
            let now = Int(Date().timeIntervalSince1970 * 1000)
            let room = RoomKey(credential: "", roomID: "r-1")
            _ = try a.commit([WebhookWrite(deliveries: [Self.delivery("old", room: "r-1")])], outcomes: [], now: now)
            #expect(try a.claimDue(limit: 10, now: now, busy: []).map(\.id) == ["old"])
            _ = try a.commit([], outcomes: [DeliveryOutcome(id: "old", room: room, disposition: .dead(reason: "refused"), attempts: 1, reason: "refused")], now: now)
            _ = try a.commit([WebhookWrite(deliveries: ["x", "y"].map { Self.delivery($0, room: "r-1") })], outcomes: [], now: now)
            #expect(try a.claimDue(limit: 10, now: now, busy: []).map(\.id) == ["x"])
            // A holds the room, sending x: "retry y now" and a replay of the older dead delivery
            // wait for x's outcome.
            #expect(try admin.retry(id: "y", now: now + 10) == .scheduled(behind: 1))
            let dead = try admin.deadRequests(ids: ["old"])
            try admin.replay(dead.map { ($0, .requeue([(roomID: "r-1", call: $0.call)])) }, now: now + 20)
            #expect(try b.claimDue(limit: 10, now: now + 30, busy: []).isEmpty)
            // x delivered: the room goes on from its oldest pending delivery, the replayed one.
            _ = try a.commit([], outcomes: [DeliveryOutcome(id: "x", room: room, disposition: .delivered, attempts: 1, reason: "delivered")], now: now + 40)
            #expect(try b.claimDue(limit: 10, now: now + 50, busy: []).map(\.id) == ["old"])
        }
    }

    @Test func theDatabaseGoingAwayIsAnAnswerNotACrash() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let store = try PostgresDeliveryStore(url: cluster.url)
            try cluster.kill()
            #expect(throws: StoreError.self) { _ = try store.commit([WebhookWrite(deliveries: [Self.delivery("x", room: "r")])], outcomes: [], now: 1) }
            #expect(store.refusal() != nil)
            try cluster.start()
            // The failed call reconnected; the next one works.
            _ = try? store.pendingCount()
            #expect(try store.commit([WebhookWrite(deliveries: [Self.delivery("x", room: "r")])], outcomes: [], now: 1) == [.success(.stored)])
            #expect(store.refusal() == nil)
        }
    }
}
