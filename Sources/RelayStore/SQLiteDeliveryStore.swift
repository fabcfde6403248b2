import RelayMapping

#if canImport(Glibc)
import Glibc
#endif

/// The delivery store in one SQLite file (WAL, `synchronous=FULL`): one write connection,
/// its statements prepared once. Used from the store writer's thread only.
///
/// Each room with pending deliveries has a head, its oldest pending delivery and when that is
/// due, kept in memory (`RoomHeads`): dispatch takes the due heads from a heap instead of
/// scanning the backlog, and a head moves on when its delivery is delivered or dead (the next
/// one read through an index of pending rows). The heads are derived from the rows at start-up
/// and whenever another process changed the file, so they need no writes of their own.
package final class SQLiteDeliveryStore: DeliveryStore {
    /// Limits and test seams.
    package struct Configuration: Sendable {
        /// Past this many bytes of database new writes are refused (`full`), while results of
        /// sends are still recorded. Nil: only the disk limits it.
        package var maxBytes: Int?
        /// Test seam: called before each COMMIT; an error returned is taken as the commit's.
        package var commitFault: (@Sendable () -> SQLiteError?)?
        /// Test seam: called before a claimed head's row is read; an error returned is taken as the read's.
        package var claimFault: (@Sendable () -> SQLiteError?)?
        /// Test seam: called right before and right after the COMMIT of webhooks' writes.
        package var aroundCommit: (@Sendable (_ committed: Bool) -> Void)?
        /// The write-ahead log's size in pages past which it is checkpointed, off the writer's
        /// thread (SQLite's own default is the same 1,000 pages, about 4 MB).
        package var checkpointPages = 1000
        /// How many times its own duration the writer waits after deriving the rooms' heads
        /// before it derives them again: at most a fifth of its time while another process
        /// keeps changing the file (a test makes it long, to see claims wait).
        package var rebuildSpacing = 4

        package init() {}
    }

    package let path: String
    private let configuration: Configuration
    private let database: SQLiteDatabase
    private let checkpointer: SQLiteCheckpointer
    private var dataVersion = 0
    /// Another process changed the rows since the heads were derived: until they are derived
    /// again, nothing is claimed (a replayed delivery may be older than its room's head).
    private var headsAreStale = false
    /// When the heads may be derived again: `Configuration.rebuildSpacing` times the last
    /// derivation's own duration after it ended.
    private var nextRebuild = ContinuousClock.now
    // Read on every pass of the writer's loop: prepared once.
    private let dataVersionQuery: SQLiteStatement
    private var isOverSize = false

    private let insertDelivery: SQLiteStatement
    /// A delivery's request and body, in a table of their own (outcomes rewrite the delivery's row).
    private let insertPayload: SQLiteStatement
    private let updateState: SQLiteStatement
    private let updateRetry: SQLiteStatement
    private let roomHead: SQLiteStatement
    private let headRow: SQLiteStatement
    private let beginRead: SQLiteStatement
    private let endRead: SQLiteStatement
    private var rooms = RoomHeads()
    private let seenKey: SQLiteStatement
    private let rememberKey: SQLiteStatement
    private let currentBinding: SQLiteStatement
    private let insertBinding: SQLiteStatement
    private let insertAttempt: SQLiteStatement
    // Each webhook's savepoint, prepared once (as statement text, SQLite parses it every time).
    private let savepoint: SQLiteStatement
    private let release: SQLiteStatement

    /// A room's oldest pending delivery: its `seq` and when it is due.
    static let nextHeadQuery =
        "SELECT seq, next_attempt_at FROM deliveries WHERE state = 'pending' AND credential = ? AND room_id = ? ORDER BY seq LIMIT 1"
    /// A claimed head's row, by its `seq`.
    static let headRowQuery = "SELECT id, route, call, attempts, accepted_at, state FROM deliveries WHERE seq = ?"
    /// Every room's head (with one MIN(), SQLite takes the other columns from the row that has it).
    static let headsQuery = "SELECT credential, room_id, MIN(seq), next_attempt_at \(SQLiteSchema.pendingByRoom)"

    /// Opens (creating and migrating) the database in `directory`.
    package init(directory: String, configuration: Configuration = Configuration()) throws(SQLiteError) {
        path = try SQLiteSchema.prepareFile(in: directory)
        let database = try SQLiteDatabase(path: path)
        try SQLiteSchema.migrate(database)
        self.database = database
        checkpointer = try SQLiteCheckpointer(path: path, writer: database, pages: configuration.checkpointPages)
        self.configuration = configuration
        insertDelivery = try database.prepare(
            """
            INSERT INTO deliveries (id, route, credential, room_id, call, state, attempts, accepted_at, next_attempt_at, last_reason)
            VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
            """)
        insertPayload = try database.prepare(SQLiteSchema.insertPayload)
        updateState = try database.prepare("UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_reason = ? WHERE id = ?")
        updateRetry = try database.prepare("UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_reason = ? WHERE id = ? AND state = 'pending'")
        roomHead = try database.prepare(Self.nextHeadQuery)
        headRow = try database.prepare(Self.headRowQuery)
        seenKey = try database.prepare("SELECT first_id FROM dedupe_digests WHERE key = ? AND expires_at > ?")
        rememberKey = try database.prepare("INSERT OR REPLACE INTO dedupe_digests (key, first_id, expires_at) VALUES (?, ?, ?)")
        currentBinding = try database.prepare("SELECT uuid, room_id FROM bindings WHERE kind = ? AND value = ? AND expires_at > ?")
        insertBinding = try database.prepare(
            "INSERT OR REPLACE INTO bindings (kind, value, uuid, room_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
        insertAttempt = try database.prepare(
            """
            INSERT INTO attempts (delivery_id, attempt, at, outcome, reason, http_status, code, message)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
        savepoint = try database.prepare("SAVEPOINT webhook")
        dataVersionQuery = try database.prepare("PRAGMA data_version")
        release = try database.prepare("RELEASE webhook")
        beginRead = try database.prepare("BEGIN")
        endRead = try database.prepare("COMMIT")
        try rebuildRooms()
    }

    deinit {
        // Before the writer closes: the last connection to close checkpoints the whole log.
        checkpointer.stop()
    }

    /// What the last checkpoint off the writer's thread reported (for tests).
    package var lastBackgroundCheckpoint: (logPages: Int, checkpointedPages: Int)? { checkpointer.lastBackgroundCheckpoint }

    // MARK: Writes

    package func commit(_ writes: [WebhookWrite], outcomes: [DeliveryOutcome], now: UnixMilliseconds) throws(StoreError)
        -> [Result<StoreOutcome, StoreError>]
    {
        if let refusal = deletedFileRefusal() { throw refusal }
        do throws(SQLiteError) {
            if let results = try commitOnce(writes, outcomes: outcomes, now: now, isolated: false) { return results }
            // A webhook's write failed, and the transaction with it: again, each webhook in a
            // savepoint of its own, so that only the failing one fails. (Savepoints cost 8 % of
            // the store's instructions per webhook, Benchmarks/run-store; a failing write is rare.)
            return try commitOnce(writes, outcomes: outcomes, now: now, isolated: true) ?? []
        } catch {
            throw Self.storeError(error)
        }
    }

    /// One transaction: the outcomes first (a failing webhook cannot drop them), then the
    /// writes. Not `isolated`, a failing write rolls the whole transaction back and returns nil;
    /// `isolated`, each webhook's writes are in a savepoint of their own.
    private func commitOnce(_ writes: [WebhookWrite], outcomes: [DeliveryOutcome], now: UnixMilliseconds, isolated: Bool) throws(SQLiteError)
        -> [Result<StoreOutcome, StoreError>]?
    {
        var results: [Result<StoreOutcome, StoreError>] = []
        // Each write's new room heads, staged once the write stands.
        var newHeads: [(room: RoomKey, head: RoomHeads.Head)] = []
        do throws(SQLiteError) {
            try database.beginImmediate()
            for outcome in outcomes { try record(outcome, now: now) }
            if !writes.isEmpty, let maxBytes = configuration.maxBytes {
                isOverSize = try database.integer("PRAGMA page_count") * database.integer("PRAGMA page_size") >= maxBytes
            }
            for write in writes {
                if isOverSize {
                    results.append(.failure(.full("the queue database is full")))
                } else if isolated {
                    results.append(storeIsolated(write, now: now, newHeads: &newHeads))
                } else {
                    do throws(SQLiteError) {
                        results.append(try store(write, now: now, newHeads: &newHeads))
                        stage(newHeads)
                    } catch {
                        try? database.execute("ROLLBACK")
                        rooms.discardStaged()
                        return nil
                    }
                }
            }
            if let fault = configuration.commitFault?() { throw fault }
            if !writes.isEmpty { configuration.aroundCommit?(false) }
            try database.execute("COMMIT")
            rooms.commitStaged()
            if !writes.isEmpty { configuration.aroundCommit?(true) }
        } catch {
            try? database.execute("ROLLBACK")
            rooms.discardStaged()
            throw error
        }
        return results
    }

    /// A SQLite failure as the relay answers it.
    static func storeError(_ error: SQLiteError) -> StoreError {
        error.isFull ? .diskFull : .unavailable(error.description)
    }

    private func record(_ outcome: DeliveryOutcome, now: UnixMilliseconds) throws(SQLiteError) {
        // A success is recorded by the delivery's own row (state, attempts, time): writing it
        // again would cost every delivery a row; `SQLiteAdmin.detail` shows it from there.
        let kind: String
        switch outcome.disposition {
        case .delivered: kind = ""
        case .retry: kind = "retry"
        case .dead: kind = "dead"
        }
        let answer = outcome.answer ?? UpstreamAnswer()
        if !kind.isEmpty {
            try insertAttempt.run([
                .text(outcome.id), .integer(outcome.attempts), .integer(outcome.attemptedAt != 0 ? outcome.attemptedAt : now), .text(kind),
                .text(outcome.reason), answer.status.map(SQLiteValue.integer) ?? .null, answer.code.map(SQLiteValue.integer) ?? .null,
                answer.message.map(SQLiteValue.text) ?? .null,
            ])
        }
        switch outcome.disposition {
        case .delivered:
            try updateState.run([.text(DeliveryState.delivered.rawValue), .integer(outcome.attempts), .integer(now), .null, .text(outcome.id)])
        case .dead(let why):
            try updateState.run([.text(DeliveryState.dead.rawValue), .integer(outcome.attempts), .integer(now), .text(why), .text(outcome.id)])
        case .retry(let at):
            try updateRetry.run([.integer(outcome.attempts), .integer(at), .text(outcome.reason), .text(outcome.id)])
        }
        // The room left the due order when its head was taken: its head (the next delivery, or
        // the same one due later) goes back.
        rooms.stage(try nextHead(of: outcome.room), for: outcome.room)
    }

    /// The room's oldest pending delivery, read from the rows; nil when none is left.
    private func nextHead(of room: RoomKey) throws(SQLiteError) -> RoomHeads.Head? {
        defer { roomHead.reset() }
        try roomHead.bind([.text(room.credential), .text(room.roomID)])
        guard try roomHead.step() else { return nil }
        return RoomHeads.Head(seq: roomHead.integer(0), due: roomHead.integer(1))
    }

    /// One webhook's writes in a savepoint of its own: a failing write fails this webhook only.
    private func storeIsolated(_ write: WebhookWrite, now: UnixMilliseconds, newHeads: inout [(room: RoomKey, head: RoomHeads.Head)])
        -> Result<StoreOutcome, StoreError>
    {
        do throws(SQLiteError) {
            try savepoint.run([])
        } catch {
            return .failure(Self.storeError(error))
        }
        do throws(SQLiteError) {
            let outcome = try store(write, now: now, newHeads: &newHeads)
            try release.run([])
            stage(newHeads)
            return outcome
        } catch {
            try? database.execute("ROLLBACK TO webhook; RELEASE webhook")
            return .failure(Self.storeError(error))
        }
    }

    /// One webhook's writes (its dedupe key, its bindings, its deliveries); `newHeads` becomes
    /// the heads of the rooms that had none, for the caller to stage once the writes stand. A
    /// duplicate or a binding conflict writes nothing; a failing statement throws (the caller
    /// rolls back).
    private func store(_ write: WebhookWrite, now: UnixMilliseconds, newHeads: inout [(room: RoomKey, head: RoomHeads.Head)]) throws(SQLiteError)
        -> Result<StoreOutcome, StoreError>
    {
        newHeads.removeAll(keepingCapacity: true)
        // Both checks read before anything is written, so that a refusal leaves nothing behind.
        if let dedupe = write.dedupe {
            try seenKey.bind([.blob(dedupe.digest.bytes), .integer(now)])
            defer { seenKey.reset() }
            if try seenKey.step() { return .success(.duplicate(firstID: seenKey.text(0) ?? "")) }
        }
        if let conflict = try bindingConflict(write.bindings, now: now) {
            return .failure(.bindingConflict(kind: conflict))
        }
        if let dedupe = write.dedupe {
            try rememberKey.run([.blob(dedupe.digest.bytes), .text(dedupe.firstID), .integer(dedupe.expiresAt)])
        }
        for binding in write.bindings {
            try insertBinding.run([
                .text(binding.kind), .text(binding.value), .text(binding.uuid), .text(binding.roomID), .integer(now),
                .integer(now.addingSaturating(binding.ttl.wholeMilliseconds)),
            ])
        }
        for delivery in write.deliveries {
            let state = delivery.deadReason == nil ? DeliveryState.pending : .dead
            try insertDelivery.run([
                .text(delivery.id), .text(delivery.route), .text(delivery.room.credential), .text(delivery.room.roomID),
                .blob(delivery.call), .text(state.rawValue), .integer(now), .integer(now), delivery.deadReason.map(SQLiteValue.text) ?? .null,
            ])
            let seq = database.lastInsertedRowID
            try insertPayload.run([.integer(seq), .text(delivery.request), .blob(delivery.body)])
            if state == .pending, rooms.head(of: delivery.room) == nil, !newHeads.contains(where: { $0.room == delivery.room }) {
                newHeads.append((delivery.room, RoomHeads.Head(seq: seq, due: now)))
            }
        }
        return .success(.stored)
    }

    /// Stages the heads of rooms that had none (a write's, once it stands).
    private func stage(_ heads: [(room: RoomKey, head: RoomHeads.Head)]) {
        for (room, head) in heads { rooms.stage(head, for: room) }
    }

    /// The kind of the first key that this write would move from one chat to another without
    /// leave, or nil. A key may move when the rule says `"replace": true`, when the chat is the
    /// same customer's (same uuid, another room), or when another key of the same write is
    /// already bound to the chat the key leaves (whoever binds knows both, e.g. the order and
    /// its phone).
    private func bindingConflict(_ writes: [BindingWrite], now: UnixMilliseconds) throws(SQLiteError) -> String? {
        guard !writes.isEmpty else { return nil }
        var current: [(uuid: String, roomID: String)?] = []
        for write in writes {
            try currentBinding.bind([.text(write.kind), .text(write.value), .integer(now)])
            current.append(try currentBinding.step() ? (currentBinding.text(0) ?? "", currentBinding.text(1) ?? "") : nil)
            currentBinding.reset()
        }
        return BindingWrite.conflict(writes, current: current)
    }

    // MARK: Dispatch

    package func claimDue(limit: Int, now: UnixMilliseconds, busy: Set<RoomKey>) throws(StoreError) -> [DueDelivery] {
        guard limit > 0, !headsAreStale else { return [] }
        var due: [DueDelivery] = []
        let taken = rooms.takeDue(now: now, limit: limit, busy: busy)
        guard !taken.isEmpty else { return [] }
        do throws(SQLiteError) {
            // One read transaction for every head: each statement on its own began and ended
            // one, two locks of the log's shared memory (`fcntl`) per delivery.
            try beginRead.run([])
            defer {
                if (try? endRead.run([])) == nil { try? database.execute("ROLLBACK") }
            }
            for (room, head) in taken {
                defer { headRow.reset() }
                if let fault = configuration.claimFault?() { throw fault }
                try headRow.bind([.integer(head.seq)])
                // A head that is gone or no longer pending (changed by hand, say): derived again.
                guard try headRow.step(), headRow.text(5) == DeliveryState.pending.rawValue else {
                    rooms.set(try nextHead(of: room), for: room)
                    continue
                }
                due.append(
                    DueDelivery(
                        id: headRow.text(0) ?? "", route: headRow.text(1) ?? "", room: room, call: headRow.bytes(2),
                        attempts: headRow.integer(3), acceptedAt: headRow.integer(4)))
            }
        } catch {
            // Nothing is claimed: the heads taken go back, or their rooms would wait for a restart.
            for (room, head) in taken where rooms.head(of: room) == head { rooms.set(head, for: room) }
            throw Self.storeError(error)
        }
        return due
    }

    package func nextDueTime(after now: UnixMilliseconds) throws(StoreError) -> UnixMilliseconds? {
        if headsAreStale {
            // Claims wait for the heads: the writer looks again when they may be derived.
            let wait = max(1, Int((nextRebuild - ContinuousClock.now) / .milliseconds(1)) + 1)
            return now.addingSaturating(wait)
        }
        return rooms.nextDue(after: now)
    }

    package func pendingCount() throws(StoreError) -> Int {
        do throws(SQLiteError) {
            return try database.integer("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
        } catch {
            throw Self.storeError(error)
        }
    }

    /// True when the heads were derived again after another process changed the rows. A
    /// derivation is O(pending) (about 18 ms at 100,000): one after each commit of a replay in
    /// steps, 200 dead letters each, took half the writer's time at 100,000 (BENCHMARKS.md),
    /// so the next waits `Configuration.rebuildSpacing` times as long as the last took, and
    /// claims wait with it.
    package func changedElsewhere() -> Bool {
        if let version = currentDataVersion(), version != dataVersion {
            dataVersion = version
            headsAreStale = true
        }
        guard headsAreStale, ContinuousClock.now >= nextRebuild else { return false }
        let started = ContinuousClock.now
        headsAreStale = (try? rebuildRooms()) == nil
        let ended = ContinuousClock.now
        // A failed derivation (the file unreadable) is tried again after 100 ms at the soonest.
        nextRebuild = ended + max((ended - started) * configuration.rebuildSpacing, headsAreStale ? .milliseconds(100) : .zero)
        return !headsAreStale
    }

    /// SQLite's count of commits by other connections to the file; nil when it cannot be read.
    private func currentDataVersion() -> Int? {
        defer { dataVersionQuery.reset() }
        guard (try? dataVersionQuery.step()) == true else { return nil }
        return dataVersionQuery.integer(0)
    }

    /// Derives the room heads from the deliveries again: at start-up, and when another process
    /// changed the file (a replay, a retry, rows written by hand). O(pending), so only then.
    private func rebuildRooms() throws(SQLiteError) {
        // Read first: a change made while the heads are read is noticed on the next look.
        let version = currentDataVersion()
        let query = try database.prepare(Self.headsQuery)
        var heads: [RoomKey: RoomHeads.Head] = [:]
        while try query.step() {
            heads[RoomKey(credential: query.text(0) ?? "", roomID: query.text(1) ?? "")] = RoomHeads.Head(seq: query.integer(2), due: query.integer(3))
        }
        rooms.replaceAll(with: heads)
        dataVersion = version ?? dataVersion
    }

    package func probe(now: UnixMilliseconds) throws(StoreError) {
        do throws(SQLiteError) {
            try database.writeTransaction { () throws(SQLiteError) in
                try database.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES ('write_probe', ?)").run([.integer(now)])
            }
        } catch {
            throw Self.storeError(error)
        }
    }

    package func purge(now: UnixMilliseconds, deliveredBefore: UnixMilliseconds, deadBefore: UnixMilliseconds, limit: Int) throws(StoreError)
        -> PurgeResult
    {
        do throws(SQLiteError) {
            return try database.writeTransaction { () throws(SQLiteError) in
                // A finished delivery's `next_attempt_at` is when it finished.
                let gone = try SQLiteSchema.deleteDeliveries(
                    database, where: "(state = 'delivered' AND next_attempt_at < ?1) OR (state = 'dead' AND next_attempt_at < ?2)",
                    [.integer(deliveredBefore), .integer(deadBefore)], limit: limit)
                let expired = try database.prepare("DELETE FROM dedupe_digests WHERE key IN (SELECT key FROM dedupe_digests WHERE expires_at < ? LIMIT ?)")
                try expired.run([.integer(now), .integer(limit)])
                let keys = database.changes
                let expiredBindings = try database.prepare(
                    "DELETE FROM bindings WHERE (kind, value) IN (SELECT kind, value FROM bindings WHERE expires_at <= ? LIMIT ?)")
                try expiredBindings.run([.integer(now), .integer(limit)])
                let bindings = database.changes
                return PurgeResult(deadDeleted: gone.dead, isComplete: gone.deleted < limit && keys < limit && bindings < limit)
            }
        } catch {
            throw Self.storeError(error)
        }
    }

    package func refusal() -> StoreError? {
        if let deleted = deletedFileRefusal() { return deleted }
        return isOverSize ? .full("the queue database is full") : nil
    }

    /// What is written to a deleted file is gone after a restart.
    private func deletedFileRefusal() -> StoreError? {
        // SQLite's check, not a descriptor of the file held open: closing that would drop
        // this process's locks on the file (see `SQLiteSchema.prepareFile`).
        guard database.fileHasMoved else { return nil }
        return .unavailable("the queue database file was deleted; restart the relay")
    }
}
