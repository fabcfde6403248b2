import Foundation
import Synchronization
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
        // Claimed rooms wait for their outcomes (b1's never comes in this test).
        #expect(try store.claimDue(limit: 10, now: 1000, busy: []).isEmpty)
        // a1 fails: retried at 5000. Room A waits for it; a2 does not overtake it.
        _ = try store.commit(
            [], outcomes: [DeliveryOutcome(id: "a1", room: RoomKey(credential: "", roomID: "A"), disposition: .retry(at: 5000), attempts: 1, reason: "503")],
            now: 1100)
        #expect(try store.claimDue(limit: 10, now: 1100, busy: []).isEmpty)
        #expect(try store.nextDueTime(after: 1100) == 5000)
        #expect(try store.claimDue(limit: 10, now: 5000, busy: []).map(\.id) == ["a1"])
        // a1 delivered: a2 is the head of room A, due at once.
        _ = try store.commit(
            [], outcomes: [DeliveryOutcome(id: "a1", room: RoomKey(credential: "", roomID: "A"), disposition: .delivered, attempts: 2, reason: "")],
            now: 5100)
        #expect(try store.claimDue(limit: 10, now: 5100, busy: []).map(\.id) == ["a2"])
        // A dead head moves the room on too; the last one removes the room.
        for (id, next) in [("a2", "a3"), ("a3", nil)] as [(String, String?)] {
            _ = try store.commit(
                [], outcomes: [DeliveryOutcome(id: id, room: RoomKey(credential: "", roomID: "A"), disposition: .dead(reason: "x"), attempts: 1, reason: "x")],
                now: 6000)
            #expect(try store.claimDue(limit: 10, now: 6000, busy: [RoomKey(credential: "", roomID: "B")]).first?.id == next)
        }
        #expect(try store.pendingCount() == 1)
    }

    /// A busy room is skipped and leaves the due order until the outcome of its send comes,
    /// and a limit is a limit.
    @Test func aBusyRoomWaitsForItsOutcome() throws {
        let folder = Folder()
        let store = try store(folder)
        let (a, b) = (RoomKey(credential: "", roomID: "A"), RoomKey(credential: "", roomID: "B"))
        let writes = ["A", "B", "C"].map { WebhookWrite(deliveries: [delivery("\($0.lowercased())1", room: $0)]) }
        #expect(try store.commit(writes, outcomes: [], now: 1000).allSatisfy { $0 == .success(.stored) })
        #expect(try store.claimDue(limit: 1, now: 1000, busy: [a]).map(\.id) == ["b1"])
        #expect(try store.claimDue(limit: 10, now: 1000, busy: [b]).map(\.id) == ["c1"])
        #expect(try store.claimDue(limit: 10, now: 2000, busy: []).isEmpty)
        #expect(try store.nextDueTime(after: 2000) == nil)
        // Room A's send fails: its head is back, due at 3000.
        _ = try store.commit([], outcomes: [DeliveryOutcome(id: "a1", room: a, disposition: .retry(at: 3000), attempts: 1, reason: "503")], now: 2000)
        #expect(try store.nextDueTime(after: 2000) == 3000)
        #expect(try store.claimDue(limit: 10, now: 3000, busy: []).map(\.id) == ["a1"])
    }

    /// A disk error a test seam returns while it is on.
    final class Fault: Sendable {
        private let isOn = Atomic(false)
        func set(_ on: Bool) { isOn.store(on, ordering: .relaxed) }
        var error: SQLiteError? { isOn.load(ordering: .relaxed) ? SQLiteError(code: 10, description: "disk I/O error") : nil }
    }

    /// A store whose test seam `seam` fails while `fault` is on.
    func store(
        _ folder: Folder, failing seam: WritableKeyPath<SQLiteDeliveryStore.Configuration, (@Sendable () -> SQLiteError?)?>, with fault: Fault
    ) throws -> SQLiteDeliveryStore {
        var configuration = SQLiteDeliveryStore.Configuration()
        configuration[keyPath: seam] = { fault.error }
        return try SQLiteDeliveryStore(directory: folder.path, configuration: configuration)
    }

    /// The heads a transaction set are forgotten when it rolls back: the row a rolled-back
    /// head named may be another room's after the next commit (its `seq` is used again).
    @Test func aRolledBackTransactionsHeadsAreForgotten() throws {
        let folder = Folder()
        let fault = Fault()
        let store = try store(folder, failing: \.commitFault, with: fault)
        let a = RoomKey(credential: "", roomID: "A")
        _ = try store.commit([WebhookWrite(deliveries: [delivery("a1", room: "A")])], outcomes: [], now: 1000)
        #expect(try store.claimDue(limit: 10, now: 1000, busy: []).map(\.id) == ["a1"])
        fault.set(true)
        let delivered = DeliveryOutcome(id: "a1", room: a, disposition: .delivered, attempts: 1, reason: "")
        #expect(throws: StoreError.self) {
            _ = try store.commit([WebhookWrite(deliveries: [delivery("b1", room: "B")])], outcomes: [delivered], now: 1100)
        }
        fault.set(false)
        #expect(try store.claimDue(limit: 10, now: 1100, busy: [a]).isEmpty)
        _ = try store.commit([WebhookWrite(deliveries: [delivery("c1", room: "C")])], outcomes: [delivered], now: 1200)
        let due = try store.claimDue(limit: 10, now: 1200, busy: [])
        #expect(due.map(\.id) == ["c1"] && due.map(\.room.roomID) == ["C"], "\(due)")
    }

    /// A claim that cannot read its heads' rows claims nothing, and its rooms are due again.
    @Test func aFailedClaimPutsItsHeadsBack() throws {
        let folder = Folder()
        let fault = Fault()
        let store = try store(folder, failing: \.claimFault, with: fault)
        let writes = ["A", "B"].map { WebhookWrite(deliveries: [delivery("\($0.lowercased())1", room: $0)]) }
        #expect(try store.commit(writes, outcomes: [], now: 1000).allSatisfy { $0 == .success(.stored) })
        fault.set(true)
        #expect(throws: StoreError.self) { _ = try store.claimDue(limit: 10, now: 1000, busy: []) }
        fault.set(false)
        #expect(try store.claimDue(limit: 10, now: 1000, busy: []).map(\.id) == ["a1", "b1"])
    }

    /// A claim reads all its heads from one snapshot (one read transaction, not one per head):
    /// a change another connection commits between two of its reads is not seen half-way.
    @Test func aClaimReadsItsHeadsFromOneSnapshot() throws {
        let folder = Folder()
        let reads = Atomic(0)
        let path = SQLiteSchema.path(in: folder.path)
        var configuration = SQLiteDeliveryStore.Configuration()
        configuration.claimFault = {
            // Before the second head's row is read, another connection marks it dead.
            if reads.add(1, ordering: .relaxed).newValue == 2 {
                try? SQLiteDatabase(path: path).execute("UPDATE deliveries SET state = 'dead' WHERE id = 'b1'")
            }
            return nil
        }
        let store = try SQLiteDeliveryStore(directory: folder.path, configuration: configuration)
        let writes = ["A", "B"].map { WebhookWrite(deliveries: [delivery("\($0.lowercased())1", room: $0)]) }
        #expect(try store.commit(writes, outcomes: [], now: 1000).allSatisfy { $0 == .success(.stored) })
        #expect(try store.claimDue(limit: 10, now: 1000, busy: []).map(\.id) == ["a1", "b1"])
        #expect(reads.load(ordering: .relaxed) == 2)
        // The change is there for the next look.
        let check = try SQLiteDatabase(path: path)
        #expect(try check.integer("SELECT COUNT(*) FROM deliveries WHERE id = 'b1' AND state = 'dead'") == 1)
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

    /// The steps of SQLite's plan for `query`, in a fresh store.
    func plan(of query: String) throws -> [String] {
        let folder = Folder()
        _ = try store(folder)
        let database = try SQLiteDatabase(path: SQLiteSchema.path(in: folder.path))
        let plan = try database.prepare("EXPLAIN QUERY PLAN " + query)
        var steps: [String] = []
        while try plan.step() { steps.append(plan.text(3) ?? "") }
        return steps
    }

    /// A claimed head's row is read by its `seq`, whatever the backlog.
    @Test func aClaimReadsTheHeadsRowByItsKey() throws {
        let steps = try plan(of: SQLiteDeliveryStore.headRowQuery)
        #expect(steps == ["SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)"], "\(steps)")
    }

    /// The rooms' heads are derived in the order of the index of pending rows, without a sort.
    @Test func headsAreDerivedFromTheIndexOfPendingRows() throws {
        let steps = try plan(of: SQLiteDeliveryStore.headsQuery)
        #expect(steps == ["SCAN deliveries USING INDEX deliveries_room"], "\(steps)")
    }

    /// The oldest pending delivery's age walks the index of pending rows (as their count
    /// does) and then reads only the heads' rows.
    @Test func theOldestPendingAgeReadsOnlyTheHeadsRows() throws {
        let steps = try plan(of: SQLiteAdmin.countsQuery)
        #expect(steps.contains("SCAN deliveries USING INDEX deliveries_room"), "\(steps)")
        #expect(steps.contains { $0.contains("SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)") }, "\(steps)")
        #expect(!steps.contains { $0.contains("TEMP B-TREE") }, "\(steps)")
    }

    @Test func aRoomsNextHeadIsReadFromPendingRowsOnly() throws {
        let steps = try plan(of: SQLiteDeliveryStore.nextHeadQuery)
        #expect(steps.contains { $0.contains("USING INDEX deliveries_room (credential=? AND room_id=?)") }, "\(steps)")
        #expect(!steps.contains { $0.contains("TEMP B-TREE") }, "\(steps)")
        let folder = Folder()
        _ = try store(folder)
        let database = try SQLiteDatabase(path: SQLiteSchema.path(in: folder.path))
        // Delivered and dead rows are not in it: the index is partial.
        let definition = try database.prepare("SELECT sql FROM sqlite_master WHERE name = 'deliveries_room'")
        _ = try definition.step()
        #expect(definition.text(0)?.hasSuffix("WHERE state = 'pending'") == true, "\(definition.text(0) ?? "")")
    }

    @Test func headsAreRebuiltFromRowsWrittenElsewhere() throws {
        let folder = Folder()
        let store = try store(folder)
        _ = try store.commit([WebhookWrite(deliveries: [delivery("x2", room: "X")])], outcomes: [], now: 1000)
        // Another process writes a row (by hand, say): the heads are derived from the rows again.
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
        let dead = try admin.deadRequests(ids: ["old"])
        try admin.replay([(dead[0], .requeue([(roomID: "R", call: Array(#"{"uuid":"u","room_id":"R"}"#.utf8))]))], now: 3000)
        _ = store.changedElsewhere()
        #expect(try store.claimDue(limit: 10, now: 3000, busy: []).map(\.id) == ["old"])
        #expect(try admin.gauges(now: 4000) == QueueGauges(pending: 2, dead: 0, oldestPendingAge: 1))
    }

    /// The heads are derived again no sooner than a multiple of the last derivation's time
    /// after it (a replay in steps changes the file every few milliseconds); until then the
    /// stale heads claim nothing: here the stale head of R is "new", and "old" was replayed
    /// in front of it.
    @Test func whileChangesElsewhereWaitToBeTakenInNothingIsClaimed() throws {
        let folder = Folder()
        var configuration = SQLiteDeliveryStore.Configuration()
        configuration.rebuildSpacing = 1_000_000_000
        let store = try SQLiteDeliveryStore(directory: folder.path, configuration: configuration)
        _ = try store.commit([WebhookWrite(deliveries: [delivery("old", room: "R", dead: "mapping failed")])], outcomes: [], now: 1000)
        _ = try store.commit([WebhookWrite(deliveries: [delivery("new", room: "R")])], outcomes: [], now: 2000)
        // A first change elsewhere is taken in at once, and spaces the next one.
        try SQLiteDatabase(path: SQLiteSchema.path(in: folder.path)).execute("INSERT INTO meta (name, value) VALUES ('elsewhere', 1)")
        #expect(store.changedElsewhere())
        let admin = try #require(try SQLiteAdmin(directory: folder.path))
        try admin.replay([(try admin.deadRequests(ids: ["old"])[0], .requeue([(roomID: "R", call: Array(#"{"uuid":"u","room_id":"R"}"#.utf8))]))], now: 3000)
        #expect(!store.changedElsewhere())
        #expect(try store.claimDue(limit: 10, now: 3000, busy: []).isEmpty)
        // The writer is told to look again later, not that nothing is due.
        #expect(try store.nextDueTime(after: 3000).map { $0 > 3000 } == true)
    }

    /// A process's POSIX locks on a file go with the close of any descriptor of it, SQLite's
    /// or not. A store opened beside a connection of the same process that reads (the lookups,
    /// the admin API) must leave that connection's lock on the database file: without it,
    /// another process closing its last connection takes the file for itself and deletes the
    /// write-ahead log that this process still writes to.
    @Test func openingAStoreKeepsTheLocksOfTheProcesssOtherConnections() throws {
        let folder = Folder()
        _ = try store(folder)
        let path = SQLiteSchema.path(in: folder.path)
        let reader = try SQLiteDatabase(path: path)
        try reader.execute("BEGIN")
        _ = try reader.integer("SELECT COUNT(*) FROM deliveries")
        let probe = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(probe) }
        // SQLite's shared lock is a read lock on 510 bytes after its pending byte (1 GiB); an
        // open-file-description lock conflicts with it even within this process.
        func sharedLockIsHeld() -> Bool {
            var query = flock()
            query.l_type = Int16(F_WRLCK)
            query.l_whence = Int16(SEEK_SET)
            query.l_start = 0x4000_0002
            query.l_len = 510
            let ofdGetLock: Int32 = 36  // F_OFD_GETLK on Linux (a _GNU_SOURCE macro, not imported)
            return fcntl(probe, ofdGetLock, &query) == 0 && query.l_type != Int16(F_UNLCK)
        }
        #expect(sharedLockIsHeld())
        let second = try store(folder)
        #expect(sharedLockIsHeld(), "opening the store dropped the reader's lock")
        withExtendedLifetime(second) {}
        try reader.execute("COMMIT")
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
