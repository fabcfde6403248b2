import Foundation
import Testing

@testable import RelayStore

/// The SQLite engine alone: room heads, claims, outcomes, and what the dispatch query costs.
@Suite struct SQLiteDeliveryStoreTests {
    final class Folder {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-store-\(UUID().uuidString)").path
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    func delivery(_ id: String, room: String, dead: String? = nil) -> NewDelivery {
        NewDelivery(
            id: id, route: "/r", room: RoomKey(credential: "", roomID: room), call: Array(#"{"uuid":"u","room_id":"\#(room)"}"#.utf8),
            request: "{}", body: Array("{}".utf8), deadReason: dead)
    }

    func store(_ folder: Folder) throws -> SQLiteDeliveryStore { try SQLiteDeliveryStore(directory: folder.path) }

    @Test func eachRoomHasOneDueDeliveryAndARetryHoldsTheRoomsLaterOnes() throws {
        let folder = Folder()
        let store = try store(folder)
        let writes = [
            WebhookWrite(deliveries: [delivery("a1", room: "A")]), WebhookWrite(deliveries: [delivery("b1", room: "B")]),
            WebhookWrite(deliveries: [delivery("a2", room: "A")]), WebhookWrite(deliveries: [delivery("a3", room: "A")]),
        ]
        #expect(try store.commit(writes, outcomes: [], now: 1000).allSatisfy { $0 == .success(.stored) })
        #expect(try store.claimDue(limit: 10, now: 1000, busy: []).map(\.id) == ["a1", "b1"])
        // A busy room is skipped, and a limit is a limit.
        #expect(try store.claimDue(limit: 10, now: 1000, busy: [RoomKey(credential: "", roomID: "A")]).map(\.id) == ["b1"])
        #expect(try store.claimDue(limit: 1, now: 1000, busy: []).count == 1)
        // a1 fails: retried at 5000. Room A waits for it; a2 does not overtake it.
        _ = try store.commit(
            [], outcomes: [DeliveryOutcome(id: "a1", room: RoomKey(credential: "", roomID: "A"), disposition: .retry(at: 5000), attempts: 1, reason: "503")],
            now: 1100)
        #expect(try store.claimDue(limit: 10, now: 1100, busy: []).map(\.id) == ["b1"])
        #expect(try store.nextDueTime(after: 1100) == 5000)
        #expect(try store.claimDue(limit: 10, now: 5000, busy: []).map(\.id) == ["b1", "a1"])
        // a1 delivered: a2 is the head of room A, due at once.
        _ = try store.commit(
            [], outcomes: [DeliveryOutcome(id: "a1", room: RoomKey(credential: "", roomID: "A"), disposition: .delivered, attempts: 2, reason: "")],
            now: 5100)
        #expect(try store.claimDue(limit: 10, now: 5100, busy: []).map(\.id).sorted() == ["a2", "b1"])
        // A dead head moves the room on too; the last one removes the room.
        for (id, next) in [("a2", "a3"), ("a3", nil)] as [(String, String?)] {
            _ = try store.commit(
                [], outcomes: [DeliveryOutcome(id: id, room: RoomKey(credential: "", roomID: "A"), disposition: .dead(reason: "x"), attempts: 1, reason: "x")],
                now: 6000)
            #expect(try store.claimDue(limit: 10, now: 6000, busy: [RoomKey(credential: "", roomID: "B")]).first?.id == next)
        }
        #expect(try store.pendingCount() == 1)
    }

    /// Pages of write-ahead log in the data folder's database (its file size over the page size).
    func logPages(_ folder: Folder) -> Int {
        let size = (try? FileManager.default.attributesOfItem(atPath: SQLiteSchema.path(in: folder.path) + "-wal")[.size] as? Int) ?? 0
        return size / 4096
    }

    /// Webhooks of about 8 KB each (two pages and more), committed one write at a time.
    func commitLargeWebhooks(_ store: SQLiteDeliveryStore, count: Int, from first: Int) throws {
        for index in first..<first + count {
            var large = delivery("w\(index)", room: "r\(index % 7)")
            large.body = Array(repeating: UInt8(ascii: "x"), count: 8192)
            #expect(try store.commit([WebhookWrite(deliveries: [large])], outcomes: [], now: 1000) == [.success(.stored)])
        }
    }

    /// A store whose write-ahead log is checkpointed past `pages` pages.
    func store(_ folder: Folder, checkpointPages pages: Int) throws -> SQLiteDeliveryStore {
        var configuration = SQLiteDeliveryStore.Configuration()
        configuration.checkpointPages = pages
        return try SQLiteDeliveryStore(directory: folder.path, configuration: configuration)
    }

    /// SQLite's memory statistics are off (they take a process-wide mutex around each of
    /// SQLite's allocations): nothing is counted however much the store allocates.
    @Test func sqliteCountsNoMemory() throws {
        let folder = Folder()
        let store = try store(folder)
        let writes = (0..<50).map { WebhookWrite(deliveries: [delivery("m-\($0)", room: "\($0)")]) }
        #expect(try store.commit(writes, outcomes: [], now: 1000).allSatisfy { $0 == .success(.stored) })
        #expect(SQLiteDatabase.countedMemory == 0)
    }

    /// The writer's commits never checkpoint (SQLite's own would at 1,000 pages): the log grows
    /// past that until the checkpointer's limit.
    @Test func theWriterNeverCheckpointsItself() throws {
        let folder = Folder()
        let store = try store(folder, checkpointPages: 100_000)
        try commitLargeWebhooks(store, count: 500, from: 0)
        #expect(logPages(folder) > 1200, "\(logPages(folder)) pages of log")
        #expect(store.lastBackgroundCheckpoint == nil)
    }

    /// Past its limit, and below the size at which the writer would finish it, the log is
    /// checkpointed whole off the writer's thread (on a connection that knows the database is
    /// in WAL mode, not one whose checkpoint reports success and copies nothing), and the next
    /// writes start it over: the file does not grow.
    @Test func theLogIsCheckpointedOffTheWritersThreadAndStartsOver() throws {
        let folder = Folder()
        let store = try store(folder, checkpointPages: 60)
        var written = 0
        while logPages(folder) < 60 {
            try commitLargeWebhooks(store, count: 1, from: written)
            written += 1
        }
        #expect(logPages(folder) < 60 * SQLiteCheckpointer.finishingFactor)
        // The checkpoint runs on its own queue: wait (bounded) for it to end.
        let deadline = Date().addingTimeInterval(10)
        while store.lastBackgroundCheckpoint == nil && Date() < deadline { usleep(1000) }
        let result = try #require(store.lastBackgroundCheckpoint)
        #expect(result.logPages >= 60 && result.checkpointedPages == result.logPages, "\(result)")
        let highWater = logPages(folder)
        // About 30 pages more, below the limit: written from the log's start, not after its end.
        try commitLargeWebhooks(store, count: 3, from: written)
        #expect(logPages(folder) == highWater, "\(logPages(folder)) pages of log after \(highWater)")
    }

    /// Writes that never pause (a background checkpoint never finds the writer between
    /// writes): the writer finishes the log at `finishingFactor` times the limit, so it stays
    /// bounded.
    @Test func theLogStaysBoundedUnderWritesThatNeverPause() throws {
        let folder = Folder()
        let store = try store(folder, checkpointPages: 50)
        // Some 5,000 pages; without checkpoints the log would hold them all.
        try commitLargeWebhooks(store, count: 600, from: 0)
        #expect(logPages(folder) < 50 * SQLiteCheckpointer.finishingFactor + 60, "\(logPages(folder)) pages of log")
        #expect(try store.pendingCount() == 600)
    }

    @Test func dispatchReadsTheRoomsIndexNotTheBacklog() throws {
        let folder = Folder()
        _ = try store(folder)
        let database = try SQLiteDatabase(path: SQLiteSchema.path(in: folder.path))
        let plan = try database.prepare(
            """
            EXPLAIN QUERY PLAN SELECT r.credential, r.room_id, d.id, d.route, d.call, d.attempts, d.accepted_at, d.state
            FROM rooms r LEFT JOIN deliveries d ON d.seq = r.head_seq WHERE r.due_at <= ? ORDER BY r.due_at LIMIT ?
            """)
        var steps: [String] = []
        while try plan.step() { steps.append(plan.text(3) ?? "") }
        #expect(steps.contains { $0.contains("USING INDEX rooms_due") }, "\(steps)")
        #expect(steps.contains { $0.contains("d USING INTEGER PRIMARY KEY") }, "\(steps)")
        #expect(!steps.contains { $0.contains("SCAN d") || $0.contains("TEMP B-TREE") }, "\(steps)")
    }

    @Test func aRoomsNextHeadIsReadFromPendingRowsOnly() throws {
        let folder = Folder()
        _ = try store(folder)
        let database = try SQLiteDatabase(path: SQLiteSchema.path(in: folder.path))
        let plan = try database.prepare(
            "EXPLAIN QUERY PLAN SELECT seq, next_attempt_at FROM deliveries WHERE state = 'pending' AND credential = ? AND room_id = ? ORDER BY seq LIMIT 1")
        var steps: [String] = []
        while try plan.step() { steps.append(plan.text(3) ?? "") }
        #expect(steps.contains { $0.contains("USING INDEX deliveries_room (credential=? AND room_id=?)") }, "\(steps)")
        #expect(!steps.contains { $0.contains("TEMP B-TREE") }, "\(steps)")
        // Delivered and dead rows are not in it: the index is partial.
        let definition = try database.prepare("SELECT sql FROM sqlite_master WHERE name = 'deliveries_room'")
        _ = try definition.step()
        #expect(definition.text(0)?.hasSuffix("WHERE state = 'pending'") == true, "\(definition.text(0) ?? "")")
    }

    @Test func headsAreRebuiltFromRowsWrittenElsewhere() throws {
        let folder = Folder()
        let store = try store(folder)
        _ = try store.commit([WebhookWrite(deliveries: [delivery("x2", room: "X")])], outcomes: [], now: 1000)
        // Another process writes a row without its room (an older version, or by hand).
        let other = try SQLiteDatabase(path: SQLiteSchema.path(in: folder.path))
        try other.execute(
            "INSERT INTO deliveries (id, route, credential, room_id, call, state, attempts, accepted_at, next_attempt_at) VALUES ('y1', '/r', '', 'Y', '{}', 'pending', 0, 1, 1)")
        #expect(store.changedElsewhere())
        #expect(try store.claimDue(limit: 10, now: 2000, busy: []).map(\.id).sorted() == ["x2", "y1"])
        #expect(!store.changedElsewhere())
    }

    @Test func replayPutsAnOlderDeliveryAtTheHeadOfItsRoom() throws {
        let folder = Folder()
        let store = try store(folder)
        _ = try store.commit([WebhookWrite(deliveries: [delivery("old", room: "R", dead: "mapping failed")])], outcomes: [], now: 1000)
        _ = try store.commit([WebhookWrite(deliveries: [delivery("new", room: "R")])], outcomes: [], now: 2000)
        let admin = try #require(try SQLiteAdmin(directory: folder.path))
        let dead = try admin.deadRequests(id: "old")
        try admin.replay([(dead[0], .requeue([(roomID: "R", call: Array(#"{"uuid":"u","room_id":"R"}"#.utf8))]))], now: 3000)
        _ = store.changedElsewhere()
        #expect(try store.claimDue(limit: 10, now: 3000, busy: []).map(\.id) == ["old"])
        #expect(try admin.gauges(now: 4000) == QueueGauges(pending: 2, dead: 0, oldestPendingAge: 1))
    }

    @Test func aDeletedFileIsRefused() throws {
        let folder = Folder()
        let store = try store(folder)
        #expect(store.refusal() == nil)
        unlink(SQLiteSchema.path(in: folder.path))
        #expect(store.refusal() == .unavailable("the queue database file was deleted; restart the relay"))
        #expect(throws: StoreError.self) { _ = try store.commit([WebhookWrite(deliveries: [delivery("z", room: "Z")])], outcomes: [], now: 1) }
    }
}
