import Foundation
import RelayMapping
import Synchronization

/// A delivery to store: one call of an accepted webhook, without the token.
package struct NewDelivery: Sendable {
    package var id: String
    package var route: String
    /// The route's credential name ("" for the default).
    package var credential: String
    package var roomID: String
    /// The call's fields as a JSON object, without `token`.
    package var call: String
    /// What replay needs: the request as the route read it (its headers and query, the body).
    package var request: String
    /// Nil: pending; otherwise the delivery is stored dead with this reason (a mapping failure).
    package var deadReason: String?
}

/// The durable queue of async deliveries in SQLite (WAL, synchronous=FULL), and the
/// workers that send them: committed before the 202 (inserts that arrive together share one
/// transaction), FIFO per (credential, room_id), retried by `RetryPolicy`, dead when
/// permanent or expired. One thread owns the database; sends run as tasks and report back.
package final class DeliveryQueue: Sendable {
    package struct Configuration: Sendable {
        package var policy = RetryPolicy()
        /// Calls in flight toward HappyTalk at most.
        package var concurrency = 64
        /// Each send waits at most this long.
        package var sendTimeout: Duration = .seconds(10)
        /// Sends per second at most toward HappyTalk (nil: no limit).
        package var ratePerSecond: Int?
        /// Pending deliveries at most; beyond it webhooks are answered 503 (the sender retries).
        package var maxPending = 100_000
        /// Past this many bytes of database new deliveries are refused (webhooks get 503, as on
        /// a full disk) while results of sends are still recorded. Nil: only the disk limits it.
        package var maxBytes: Int?
        /// Delivered records are deleted after this.
        package var retention: Duration = .seconds(7 * 86_400)

        package init() {}
    }

    private enum Job {
        case insert([NewDelivery], completion: @Sendable (Result<Void, SQLiteError>) -> Void)
        case finished(id: String, roomKey: String, action: RetryPolicy.Action, attempts: Int, reason: String)
        case dedupe(key: String, id: String, expiresAt: Int)
        case bind([BindingWrite], completion: @Sendable (Result<Void, SQLiteError>) -> Void)
    }

    private struct Shared {
        var jobs: [Job] = []
        var isStopping = false
        var inFlight = 0
    }

    /// The file inside the data directory.
    package static let fileName = "happyrelay.sqlite"
    static let schemaVersion = 3

    private let configuration: Configuration
    private let upstream: HappyTalkUpstream
    private let credentials: Credentials
    private let logger: Logger
    private let metrics: RelayMetrics
    private let clock: @Sendable () -> Int
    private let shared = Mutex(Shared())
    private let pending = Atomic<Int>(0)
    private let lastWriteFailed = Atomic<Bool>(false)
    private let isOverSize = Atomic<Bool>(false)
    private let commitCount = Atomic<Int>(0)

    /// Transactions committed so far (webhooks that arrive together share one).
    package var commits: Int { commitCount.load(ordering: .relaxed) }
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    // Owned by the store thread.
    private let database: ThreadConfined<SQLiteDatabase>
    private nonisolated(unsafe) var rateWindow: (second: Int, sent: Int) = (0, 0)

    /// Opens (and migrates) the queue in `directory`; call `start` to deliver.
    package init(
        directory: String, upstream: HappyTalkUpstream, credentials: Credentials, configuration: Configuration = Configuration(),
        logger: Logger, metrics: RelayMetrics = RelayMetrics(), clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970 * 1000) }
    ) throws(SQLiteError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SQLiteError(code: -1, description: "cannot create \(directory)")
        }
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        let database = try SQLiteDatabase(path: path)
        try Self.migrate(database)
        self.database = ThreadConfined(database, path: path)
        self.configuration = configuration
        self.upstream = upstream
        self.credentials = credentials
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
    }

    /// Brings the schema to the current version (`PRAGMA user_version`), one step at a time.
    static func migrate(_ database: SQLiteDatabase) throws(SQLiteError) {
        try database.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        let version = try database.integer("PRAGMA user_version")
        guard version <= schemaVersion else {
            throw SQLiteError(code: -1, description: "the queue was written by a newer happyrelay (schema \(version))")
        }
        if version < 1 {
            try database.execute(
                """
                BEGIN;
                CREATE TABLE deliveries (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    route TEXT NOT NULL,
                    credential TEXT NOT NULL,
                    room_id TEXT NOT NULL,
                    call TEXT NOT NULL,
                    request TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    accepted_at INTEGER NOT NULL,
                    next_attempt_at INTEGER NOT NULL,
                    last_reason TEXT
                );
                CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
                CREATE INDEX deliveries_room ON deliveries (state, credential, room_id, seq);
                PRAGMA user_version = 1;
                COMMIT;
                """)
        }
        if version < 2 {
            // Version 2: dedupe keys outlive a restart.
            try database.execute(
                """
                BEGIN;
                CREATE TABLE dedupe (key TEXT PRIMARY KEY, first_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
                PRAGMA user_version = 2;
                COMMIT;
                """)
        }
        if version < 3 {
            // Version 3: bindings (mapping.md, "Bindings"), keyed by (kind, value).
            try database.execute(
                """
                BEGIN;
                CREATE TABLE bindings (
                    kind TEXT NOT NULL, value TEXT NOT NULL, uuid TEXT NOT NULL, room_id TEXT NOT NULL,
                    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (kind, value)
                ) WITHOUT ROWID;
                CREATE INDEX bindings_expiry ON bindings (expires_at);
                PRAGMA user_version = 3;
                COMMIT;
                """)
        }
    }

    /// Unexpired dedupe keys, for the relay to load at start-up.
    package func dedupeKeys() throws(SQLiteError) -> [(key: String, id: String, expiresAt: Int)] {
        let reader = try SQLiteDatabase(path: database.path)
        let query = try reader.prepare("SELECT key, first_id, expires_at FROM dedupe WHERE expires_at > ?")
        try query.bind([.integer(clock())])
        var keys: [(key: String, id: String, expiresAt: Int)] = []
        while try query.step() { keys.append((query.text(0) ?? "", query.text(1) ?? "", query.integer(2))) }
        return keys
    }

    /// Stores bindings; `completion` runs once they are committed (before the webhook's answer).
    package func bind(_ writes: [BindingWrite], completion: @escaping @Sendable (Result<Void, SQLiteError>) -> Void) {
        guard !writes.isEmpty else {
            completion(.success(()))
            return
        }
        shared.withLock { $0.jobs.append(.bind(writes, completion: completion)) }
        wake.signal()
    }

    /// Records a dedupe key with the next commit.
    package func rememberDedupeKey(_ key: String, id: String, expiresAt: Int) {
        shared.withLock { $0.jobs.append(.dedupe(key: key, id: id, expiresAt: expiresAt)) }
        wake.signal()
    }

    /// Why new webhooks cannot be accepted now (the queue is full or cannot be written), or nil.
    package var unavailableReason: String? {
        if isOverSize.load(ordering: .relaxed) { return "the queue database is full" }
        if lastWriteFailed.load(ordering: .relaxed) { return "the queue cannot be written" }
        if pending.load(ordering: .relaxed) >= configuration.maxPending { return "the queue is full (\(configuration.maxPending) pending)" }
        return nil
    }

    /// Stores deliveries; `completion` runs once they are committed (or failed to be).
    package func enqueue(_ deliveries: [NewDelivery], completion: @escaping @Sendable (Result<Void, SQLiteError>) -> Void) {
        let newPending = deliveries.filter { $0.deadReason == nil }.count
        if newPending > 0 && pending.load(ordering: .relaxed) + newPending > configuration.maxPending {
            completion(.failure(SQLiteError(code: -1, description: "the queue is full")))
            return
        }
        let accepted = shared.withLock { shared -> Bool in
            guard !shared.isStopping else { return false }
            shared.jobs.append(.insert(deliveries, completion: completion))
            return true
        }
        if accepted { wake.signal() } else { completion(.failure(SQLiteError(code: -1, description: "the relay is stopping"))) }
    }

    /// Starts the store thread: commits, dispatches due deliveries, records results.
    package func start() {
        let thread = Thread { [self] in run() }
        thread.name = "happyrelay-queue"
        thread.start()
    }

    /// Stops dispatching, waits up to `drain` for sends in flight, records their results.
    package func shutdown(drain: Duration) async {
        shared.withLock { $0.isStopping = true }
        let deadline = ContinuousClock.now.advanced(by: drain)
        while shared.withLock({ $0.inFlight }) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        wake.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [stopped] in
                stopped.wait()
                continuation.resume()
            }
        }
    }

    // MARK: The store thread

    private func run() {
        let database = self.database.value
        var busyRooms = Set<String>()
        pending.store((try? database.integer("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")) ?? 0, ordering: .relaxed)
        var lastPurge = 0
        while true {
            if clock() - lastPurge > 60_000 {
                lastPurge = clock()
                purgeDelivered(in: database)
            }
            let (jobs, isStopping) = shared.withLock { shared in
                defer { shared.jobs.removeAll(keepingCapacity: true) }
                return (shared.jobs, shared.isStopping)
            }
            commit(jobs, in: database, busyRooms: &busyRooms)
            if isStopping && shared.withLock({ $0.inFlight == 0 && $0.jobs.isEmpty }) { break }
            let blocked = isStopping ? true : dispatch(from: database, busyRooms: &busyRooms)
            // Sleep until a job arrives (a webhook, a finished send), the next delivery is due,
            // or a second passes (so that a replay written by another process is picked up).
            // When every due delivery waits for a busy room or a free slot, only a job can
            // change that: no polling.
            var wait = 1000
            if !blocked {
                let now = clock()
                let next = (try? database.integer("SELECT IFNULL(MIN(next_attempt_at), 0) FROM deliveries WHERE state = 'pending'")) ?? 0
                if next > now { wait = min(next - now, 1000) }
            }
            _ = wake.wait(timeout: .now() + .milliseconds(wait))
        }
        stopped.signal()
    }

    /// Deletes delivered records older than the retention period.
    private func purgeDelivered(in database: SQLiteDatabase) {
        do throws(SQLiteError) {
            let purge = try database.prepare("DELETE FROM deliveries WHERE state = 'delivered' AND next_attempt_at < ?")
            try purge.run([.integer(clock() - RetryPolicy.milliseconds(configuration.retention))])
            let expired = try database.prepare("DELETE FROM dedupe WHERE expires_at < ?")
            try expired.run([.integer(clock())])
            let expiredBindings = try database.prepare("DELETE FROM bindings WHERE expires_at <= ?")
            try expiredBindings.run([.integer(clock())])
        } catch {
            logger.warning("cannot delete old delivered records", ["error": error.description])
        }
    }

    private func commit(_ jobs: [Job], in database: SQLiteDatabase, busyRooms: inout Set<String>) {
        guard !jobs.isEmpty else { return }
        // Each batch of new deliveries sits in its own savepoint: when the database is full only
        // those fail (answered 503), while results of sends are still recorded, so that a full
        // queue never makes the relay send delivered calls again and again.
        var outcomes: [(completion: @Sendable (Result<Void, SQLiteError>) -> Void, result: Result<Void, SQLiteError>)] = []
        var pendingChange = 0
        var insertFailed = false
        do throws(SQLiteError) {
            try database.execute("BEGIN IMMEDIATE")
            let insert = try database.prepare(
                "INSERT INTO deliveries (id, route, credential, room_id, call, request, state, attempts, accepted_at, next_attempt_at, last_reason) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)")
            let update = try database.prepare("UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_reason = ? WHERE id = ?")
            let remember = try database.prepare("INSERT OR REPLACE INTO dedupe (key, first_id, expires_at) VALUES (?, ?, ?)")
            let bindStatement = try database.prepare(
                "INSERT OR REPLACE INTO bindings (kind, value, uuid, room_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
            let now = clock()
            var isFull = false
            if let maxBytes = configuration.maxBytes {
                isFull = try database.integer("PRAGMA page_count") * database.integer("PRAGMA page_size") >= maxBytes
                isOverSize.store(isFull, ordering: .relaxed)
            }
            var insertSucceeded = false
            for job in jobs {
                switch job {
                case .insert(_, let completion) where isFull:
                    insertFailed = true
                    outcomes.append((completion, .failure(SQLiteError(code: 13, description: "the queue database is full"))))
                case .insert(let deliveries, let completion):
                    try database.execute("SAVEPOINT batch")
                    do throws(SQLiteError) {
                        for delivery in deliveries {
                            try insert.run([
                                .text(delivery.id), .text(delivery.route), .text(delivery.credential), .text(delivery.roomID), .text(delivery.call),
                                .text(delivery.request), .text(delivery.deadReason == nil ? "pending" : "dead"), .integer(now), .integer(now),
                                delivery.deadReason.map(SQLiteValue.text) ?? .null,
                            ])
                        }
                        try database.execute("RELEASE batch")
                        insertSucceeded = true
                        pendingChange += deliveries.filter { $0.deadReason == nil }.count
                        outcomes.append((completion, .success(())))
                    } catch {
                        try database.execute("ROLLBACK TO batch; RELEASE batch")
                        insertFailed = true
                        outcomes.append((completion, .failure(error)))
                    }
                case .bind(let writes, let completion):
                    // A later binding for the same key replaces the earlier one (mapping.md).
                    try database.execute("SAVEPOINT binding")
                    do throws(SQLiteError) {
                        for write in writes {
                            try bindStatement.run([
                                .text(write.kind), .text(write.value), .text(write.uuid), .text(write.roomID), .integer(now),
                                .integer(now + RetryPolicy.milliseconds(write.ttl)),
                            ])
                        }
                        try database.execute("RELEASE binding")
                        outcomes.append((completion, .success(())))
                    } catch {
                        try database.execute("ROLLBACK TO binding; RELEASE binding")
                        outcomes.append((completion, .failure(error)))
                    }
                case .dedupe(let key, let id, let expiresAt):
                    // A key that cannot be stored only means a later duplicate is delivered again.
                    try database.execute("SAVEPOINT key")
                    do throws(SQLiteError) {
                        try remember.run([.text(key), .text(id), .integer(expiresAt)])
                        try database.execute("RELEASE key")
                    } catch {
                        try database.execute("ROLLBACK TO key; RELEASE key")
                    }
                case .finished(let id, _, let action, let attempts, let reason):
                    switch action {
                    case .acknowledge:
                        try update.run([.text("delivered"), .integer(attempts), .integer(now), .null, .text(id)])
                        pendingChange -= 1
                    case .retry(let at): try update.run([.text("pending"), .integer(attempts), .integer(at), .text(reason), .text(id)])
                    case .deadLetter(let why):
                        try update.run([.text("dead"), .integer(attempts), .integer(now), .text(why), .text(id)])
                        pendingChange -= 1
                    }
                }
            }
            try database.execute("COMMIT")
            commitCount.wrappingAdd(1, ordering: .relaxed)
            // A write failure is over once new deliveries are stored again (a full database is
            // reported separately, from its size).
            if insertSucceeded { lastWriteFailed.store(false, ordering: .relaxed) }
            if insertFailed && !isFull { lastWriteFailed.store(true, ordering: .relaxed) }
            pending.wrappingAdd(pendingChange, ordering: .relaxed)
        } catch {
            try? database.execute("ROLLBACK")
            lastWriteFailed.store(true, ordering: .relaxed)
            logger.error("the queue cannot be written", ["error": error.description])
            outcomes = jobs.compactMap { job in
                switch job {
                case .insert(_, let completion), .bind(_, let completion): return (completion, .failure(error))
                default: return nil
                }
            }
            // Results that could not be written are sent again later: at-least-once.
        }
        if insertFailed { logger.error("the queue cannot be written", ["error": "new deliveries refused (database full or failing)"]) }
        for job in jobs { if case .finished(_, let roomKey, _, _, _) = job { busyRooms.remove(roomKey) } }
        for (completion, result) in outcomes { completion(result) }
    }

    private func dispatch(from database: SQLiteDatabase, busyRooms: inout Set<String>) -> Bool {
        var room = shared.withLock { configuration.concurrency - $0.inFlight }
        if let rate = configuration.ratePerSecond {
            let second = clock() / 1000
            if second != rateWindow.second { rateWindow = (second, 0) }
            room = min(room, rate - rateWindow.sent)
        }
        // Out of slots or of this second's sends: a finished send, or the queue's one-second
        // wake-up, moves things on.
        guard room > 0 else { return true }
        var blocked = false
        do throws(SQLiteError) {
            // The oldest pending delivery of each room, when it is due: a later call for a room
            // never overtakes an earlier one, even one that waits for a retry.
            let due = try database.prepare(
                """
                SELECT d.id, d.route, d.credential, d.room_id, d.call, d.attempts, d.accepted_at FROM deliveries d
                WHERE d.state = 'pending' AND d.next_attempt_at <= ?
                  AND d.seq = (SELECT MIN(e.seq) FROM deliveries e WHERE e.state = 'pending' AND e.credential = d.credential AND e.room_id = d.room_id)
                ORDER BY d.seq LIMIT ?
                """)
            try due.bind([.integer(clock()), .integer(room + busyRooms.count)])
            var started = 0
            while try due.step() {
                guard started < room else {
                    blocked = true
                    break
                }
                let roomKey = (due.text(2) ?? "") + "\u{0}" + (due.text(3) ?? "")
                guard !busyRooms.contains(roomKey) else {
                    blocked = true
                    continue
                }
                busyRooms.insert(roomKey)
                started += 1
                rateWindow.sent += 1
                send(
                    id: due.text(0) ?? "", route: due.text(1) ?? "", credential: due.text(2) ?? "", call: due.text(4) ?? "{}",
                    attempts: due.integer(5), acceptedAt: due.integer(6), roomKey: roomKey)
            }
        } catch {
            logger.error("the queue cannot be read", ["error": error.description])
        }
        return blocked
    }

    private func send(id: String, route: String, credential: String, call: String, attempts: Int, acceptedAt: Int, roomKey: String) {
        shared.withLock { $0.inFlight += 1 }
        Task { [self] in
            let result: UpstreamResult
            var retryAfter: Duration?
            if let token = credentials.token(named: credential.isEmpty ? nil : credential), let fields = Self.fields(of: call) {
                (result, retryAfter) = await upstream.sendReportingRetryAfter(
                    MappedCall(rule: "", fields: fields), token: token, timeout: configuration.sendTimeout)
            } else {
                result = .transient("\(Credentials.variable(for: credential.isEmpty ? nil : credential)) is not set")
            }
            let attempt = attempts + 1
            let action = configuration.policy.decide(result, attempt: attempt, acceptedAt: acceptedAt, now: clock(), retryAfter: retryAfter) {
                Double.random(in: 0..<1)
            }
            if case .failed(let code, let message, true) = result {
                logger.error("HappyTalk refused the relay's credential: check the token", ["delivery.id": id, "route": route, "code": String(code), "message": message])
            }
            switch action {
            case .acknowledge:
                metrics.delivery(sync: false, .delivered, result: result, latency: .milliseconds(max(clock() - acceptedAt, 0)))
                logger.debug("delivered", ["delivery.id": id, "route": route, "attempt": String(attempt)])
            case .retry:
                metrics.delivery(sync: false, .retried, result: result, latency: nil)
                logger.info("delivery will be retried", ["delivery.id": id, "route": route, "attempt": String(attempt), "reason": RetryPolicy.describe(result)])
            case .deadLetter(let reason):
                metrics.delivery(sync: false, .dead, result: result, latency: nil)
                logger.warning("delivery is dead", ["delivery.id": id, "route": route, "attempt": String(attempt), "reason": reason])
            }
            shared.withLock { shared in
                shared.inFlight -= 1
                shared.jobs.append(.finished(id: id, roomKey: roomKey, action: action, attempts: attempt, reason: RetryPolicy.describe(result)))
            }
            wake.signal()
        }
    }

    /// The fields of a stored call object.
    static func fields(of call: String) -> [(name: String, value: String)]? {
        guard case .object(let members)? = try? JSONParser().parse(call) else { return nil }
        return members.map { ($0.key, $0.value.text) }
    }

    /// What `/metrics` shows of the queue.
    package struct Gauges: Sendable, Equatable {
        package var pending: Int
        package var dead: Int
        /// Seconds since the oldest pending delivery was accepted (0 when none is pending).
        package var oldestPendingAge: Double
    }

    /// Reads the gauges on a connection of its own (beside the store thread's).
    package func gauges() throws(SQLiteError) -> Gauges {
        let reader = try SQLiteDatabase(path: databasePath)
        let statement = try reader.prepare(
            """
            SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'), (SELECT COUNT(*) FROM deliveries WHERE state = 'dead'),
                   (SELECT IFNULL(MIN(accepted_at), 0) FROM deliveries WHERE state = 'pending')
            """)
        guard try statement.step() else { return Gauges(pending: 0, dead: 0, oldestPendingAge: 0) }
        let oldest = statement.integer(2)
        return Gauges(
            pending: statement.integer(0), dead: statement.integer(1), oldestPendingAge: oldest == 0 ? 0 : Double(max(clock() - oldest, 0)) / 1000)
    }

    /// The database file, for readers such as `SQLiteBindings`.
    package var databasePath: String { database.path }
}

/// The database connection, touched only by the queue's store thread once it runs.
final class ThreadConfined<Value>: @unchecked Sendable {
    let value: Value
    let path: String

    init(_ value: Value, path: String) {
        self.value = value
        self.path = path
    }
}
