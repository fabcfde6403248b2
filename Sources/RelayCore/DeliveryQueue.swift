import Foundation
import RelayMapping
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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

/// A webhook's dedupe key as stored: its digest, the webhook that first had it, until when.
package struct DedupeRecord: Sendable {
    package var digest: DedupeDigest
    package var firstID: String
    /// Unix milliseconds.
    package var expiresAt: Int

    package init(digest: DedupeDigest, firstID: String, expiresAt: Int) {
        self.digest = digest
        self.firstID = firstID
        self.expiresAt = expiresAt
    }
}

/// Everything one webhook writes, committed together or not at all.
package struct WebhookWrite: Sendable {
    package var deliveries: [NewDelivery]
    /// Checked against the keys already stored: a key still in its window makes the whole
    /// write a duplicate, and nothing of it is stored.
    package var dedupe: DedupeRecord?
    package var bindings: [BindingWrite]

    package init(deliveries: [NewDelivery] = [], dedupe: DedupeRecord? = nil, bindings: [BindingWrite] = []) {
        self.deliveries = deliveries
        self.dedupe = dedupe
        self.bindings = bindings
    }
}

/// What became of a committed write.
package enum StoreOutcome: Sendable, Equatable {
    case stored
    /// The dedupe key was already stored, by the webhook with this id; nothing was written.
    case duplicate(firstID: String)
}

/// Why a write was not stored.
package enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The queue limit, `--queue-max-bytes` or the disk: the sender should retry later (503).
    case full(String)
    /// The database cannot be written now (503).
    case unavailable(String)
    /// The relay is shutting down (503).
    case stopping
    /// A binding key is bound to another chat and this write may not move it (409).
    case bindingConflict(kind: String)

    package var description: String {
        switch self {
        case .full(let reason), .unavailable(let reason): reason
        case .stopping: "the relay is stopping"
        case .bindingConflict(let kind): "this \(kind) is already bound to another chat"
        }
    }
}

/// The durable queue of async deliveries in SQLite (WAL, synchronous=FULL), and the
/// workers that send them: committed before the 202 (writes that arrive together share one
/// transaction), FIFO per (credential, room_id), retried by `RetryPolicy`, dead when
/// permanent or expired. One thread owns the database; sends run as tasks and report back.
///
/// The result of a send is kept in memory until it is committed, and its room stays busy
/// until then: a delivery is never sent again because its result could not be written.
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
        /// Past this many bytes of database new webhooks are refused (503, as on a full disk)
        /// while results of sends are still recorded. Nil: only the disk limits it.
        package var maxBytes: Int?
        /// Delivered records are deleted after this.
        package var retention: Duration = .seconds(7 * 86_400)
        /// A failing store is logged at most once per this interval.
        package var failureLogInterval: Duration = .seconds(10)
        /// Test seam: called before each COMMIT; an error returned is taken as the commit's.
        package var commitFault: (@Sendable () -> SQLiteError?)?
        /// Test seam: the process ends at this point of the first commit that stores a webhook.
        package var crashPoint: CrashPoint?

        package init() {}
    }

    /// Where a test stops the process, to see what a crash there leaves (`HAPPYRELAY_TEST_CRASH`).
    package enum CrashPoint: String, Sendable {
        /// The webhook's writes are made but not committed.
        case beforeCommit = "before-commit"
        /// The webhook's writes are committed but not yet answered.
        case afterCommit = "after-commit"
    }

    /// A send's result, kept until it is committed.
    private struct Finished {
        var id: String
        var roomKey: String
        var action: RetryPolicy.Action
        var attempts: Int
        var reason: String
    }

    private enum Job {
        case write(WebhookWrite, completion: @Sendable (Result<StoreOutcome, StoreError>) -> Void)
        case finished(Finished)
    }

    private struct Shared {
        var jobs: [Job] = []
        var isStopping = false
        var inFlight = 0
    }

    /// How the store thread's writes are going; kept for readiness and the failure log.
    private struct WriteHealth {
        var failingSince: Int?
        var lastLogged: Int?
        var suppressed = 0
        var retryAt = 0
        var backoff = 0
    }

    /// The file inside the data directory.
    package static let fileName = "happyrelay.sqlite"
    static let schemaVersion = 4

    private let configuration: Configuration
    private let upstream: HappyTalkUpstream
    private let credentials: Credentials
    private let logger: Logger
    private let metrics: RelayMetrics
    private let clock: @Sendable () -> Int
    private let shared = Mutex(Shared())
    private let pending = Atomic<Int>(0)
    /// Why the last write failed, while writes keep failing (nil once one succeeds).
    private let writeFailure = Mutex<String?>(nil)
    private let isOverSize = Atomic<Bool>(false)
    private let commitCount = Atomic<Int>(0)
    /// Held open to notice the file being deleted while the relay runs (`st_nlink` drops to 0).
    private let fileWatch: Int32

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
        let path = try Self.prepareFile(in: directory)
        let database = try SQLiteDatabase(path: path)
        try Self.migrate(database)
        fileWatch = open(path, O_RDONLY | O_CLOEXEC)
        self.database = ThreadConfined(database, path: path)
        self.configuration = configuration
        self.upstream = upstream
        self.credentials = credentials
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
    }

    deinit {
        if fileWatch >= 0 { close(fileWatch) }
    }

    /// Creates the data directory (0700) and the database file (0600) when missing: they hold
    /// payloads with names, phone numbers and e-mail addresses. SQLite gives its WAL and
    /// shared-memory files the database file's mode.
    static func prepareFile(in directory: String) throws(SQLiteError) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SQLiteError(code: -1, description: "cannot create \(directory)")
            }
        } else if !isDirectory.boolValue {
            throw SQLiteError(code: -1, description: "\(directory) is not a directory")
        }
        let path = (directory as NSString).appendingPathComponent(fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SQLiteError(code: -1, description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        // Files an earlier version created with the default mode are tightened too.
        for file in [path, path + "-wal", path + "-shm"] { _ = chmod(file, 0o600) }
        return path
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
        if version < 4 {
            // Version 4: dedupe keys stored as 16-byte digests (a sender chooses a key's length),
            // and a table for the write probe that tells when a failing disk works again.
            try database.execute(
                """
                BEGIN;
                CREATE TABLE dedupe_digests (key BLOB PRIMARY KEY, first_id TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE INDEX dedupe_expiry ON dedupe_digests (expires_at);
                CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                """)
            do throws(SQLiteError) {
                let old = try database.prepare("SELECT key, first_id, expires_at FROM dedupe")
                let insert = try database.prepare("INSERT OR REPLACE INTO dedupe_digests (key, first_id, expires_at) VALUES (?, ?, ?)")
                var rows: [(DedupeDigest, String, Int)] = []
                while try old.step() {
                    // Version 2 keys are "route NUL key".
                    let compound = old.text(0) ?? ""
                    let parts = compound.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2 else { continue }
                    rows.append((DedupeDigest(route: String(parts[0]), key: String(parts[1])), old.text(1) ?? "", old.integer(2)))
                }
                old.reset()
                for (digest, id, expires) in rows { try insert.run([.blob(digest.bytes), .text(id), .integer(expires)]) }
                try database.execute("DROP TABLE dedupe; PRAGMA user_version = 4; COMMIT;")
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// Why new webhooks cannot be accepted now (the queue is full or cannot be written), or nil.
    package var unavailableReason: String? {
        if isFileDeleted { return "the queue database file was deleted; restart the relay" }
        if isOverSize.load(ordering: .relaxed) { return "the queue database is full" }
        if let failure = writeFailure.withLock({ $0 }) { return "the queue cannot be written: \(failure)" }
        if pending.load(ordering: .relaxed) >= configuration.maxPending { return "the queue is full (\(configuration.maxPending) pending)" }
        return nil
    }

    /// Whether the database file was unlinked while the relay holds it open: what is written
    /// now would be gone after a restart.
    private var isFileDeleted: Bool {
        guard fileWatch >= 0 else { return false }
        var status = stat()
        return fstat(fileWatch, &status) == 0 && status.st_nlink == 0
    }

    /// Stores one webhook's writes; `completion` runs once they are committed (or refused).
    package func write(_ write: WebhookWrite, completion: @escaping @Sendable (Result<StoreOutcome, StoreError>) -> Void) {
        let newPending = write.deliveries.filter { $0.deadReason == nil }.count
        if newPending > 0 && pending.load(ordering: .relaxed) + newPending > configuration.maxPending {
            completion(.failure(.full("the queue is full")))
            return
        }
        let accepted = shared.withLock { shared -> Bool in
            guard !shared.isStopping else { return false }
            shared.jobs.append(.write(write, completion: completion))
            return true
        }
        if accepted { wake.signal() } else { completion(.failure(.stopping)) }
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
        var unrecorded: [Finished] = []
        var health = WriteHealth()
        recountPending(in: database)
        var dataVersion = (try? database.integer("PRAGMA data_version")) ?? 0
        var lastPurge = 0
        while true {
            let now = clock()
            if health.failingSince == nil && now - lastPurge > 60_000 {
                lastPurge = now
                purgeExpired(in: database)
            }
            // Another connection (`deliveries replay`, say) changed the queue: count again.
            if let version = try? database.integer("PRAGMA data_version"), version != dataVersion {
                dataVersion = version
                recountPending(in: database)
            }
            let (jobs, isStopping) = shared.withLock { shared in
                defer { shared.jobs.removeAll(keepingCapacity: true) }
                return (shared.jobs, shared.isStopping)
            }
            var writes: [(WebhookWrite, @Sendable (Result<StoreOutcome, StoreError>) -> Void)] = []
            for job in jobs {
                switch job {
                case .write(let write, let completion): writes.append((write, completion))
                case .finished(let finished): unrecorded.append(finished)
                }
            }
            let isFailing = health.failingSince != nil
            if !writes.isEmpty || (!unrecorded.isEmpty && (!isFailing || now >= health.retryAt)) || (isFailing && now >= health.retryAt) {
                commit(writes, results: &unrecorded, busyRooms: &busyRooms, health: &health, in: database)
            }
            if isStopping && unrecorded.isEmpty && shared.withLock({ $0.inFlight == 0 && $0.jobs.isEmpty }) { break }
            if isStopping && health.failingSince != nil && shared.withLock({ $0.inFlight == 0 && $0.jobs.isEmpty }) {
                logger.error("stopping with results of sends not recorded: those deliveries will be sent again", ["count": String(unrecorded.count)])
                break
            }
            // While results cannot be recorded nothing more is sent.
            let blocked = isStopping || health.failingSince != nil ? true : dispatch(from: database, busyRooms: &busyRooms)
            // Sleep until a job arrives (a webhook, a finished send), the next delivery is due,
            // the next retry of a failing write, or a second passes (so that a replay written by
            // another process is picked up). When every due delivery waits for a busy room or a
            // free slot, only a job can change that: no polling.
            var wait = 1000
            if health.failingSince != nil {
                wait = max(1, min(health.retryAt - clock(), 1000))
            } else if !blocked {
                let now = clock()
                let next = (try? database.integer("SELECT IFNULL(MIN(next_attempt_at), 0) FROM deliveries WHERE state = 'pending'")) ?? 0
                if next > now { wait = min(next - now, 1000) }
            }
            _ = wake.wait(timeout: .now() + .milliseconds(wait))
        }
        stopped.signal()
    }

    private func recountPending(in database: SQLiteDatabase) {
        if let count = try? database.integer("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'") {
            pending.store(count, ordering: .relaxed)
        }
    }

    /// Deletes delivered records older than the retention period, and expired keys.
    private func purgeExpired(in database: SQLiteDatabase) {
        do throws(SQLiteError) {
            let purge = try database.prepare("DELETE FROM deliveries WHERE state = 'delivered' AND next_attempt_at < ?")
            try purge.run([.integer(clock() - RetryPolicy.milliseconds(configuration.retention))])
            let expired = try database.prepare("DELETE FROM dedupe_digests WHERE expires_at < ?")
            try expired.run([.integer(clock())])
            let expiredBindings = try database.prepare("DELETE FROM bindings WHERE expires_at <= ?")
            try expiredBindings.run([.integer(clock())])
        } catch {
            logger.warning("cannot delete old delivered records", ["error": error.description])
        }
    }

    /// One transaction: the results of sends (in a savepoint of their own, so a failing write
    /// of a webhook cannot drop them), then each webhook's writes in a savepoint each.
    private func commit(
        _ writes: [(WebhookWrite, @Sendable (Result<StoreOutcome, StoreError>) -> Void)], results unrecorded: inout [Finished],
        busyRooms: inout Set<String>, health: inout WriteHealth, in database: SQLiteDatabase
    ) {
        var outcomes: [Result<StoreOutcome, StoreError>] = []
        var pendingChange = 0
        var resultsRecorded = false
        var writeFaulted = false
        var failure: SQLiteError?
        let now = clock()
        if isFileDeleted {
            let reason = "the queue database file was deleted; restart the relay"
            noteFailure(reason, now: now, health: &health)
            for (_, completion) in writes { completion(.failure(.unavailable(reason))) }
            return
        }
        do throws(SQLiteError) {
            try database.execute("BEGIN IMMEDIATE")
            if !unrecorded.isEmpty {
                pendingChange += try record(unrecorded, in: database, now: now)
                resultsRecorded = true
            }
            var isFull = false
            if let maxBytes = configuration.maxBytes {
                isFull = try database.integer("PRAGMA page_count") * database.integer("PRAGMA page_size") >= maxBytes
                isOverSize.store(isFull, ordering: .relaxed)
            }
            for (write, _) in writes {
                if isFull {
                    outcomes.append(.failure(.full("the queue database is full")))
                    continue
                }
                let outcome = store(write, in: database, now: now, faulted: &writeFaulted)
                if case .success(.stored) = outcome { pendingChange += write.deliveries.filter { $0.deadReason == nil }.count }
                outcomes.append(outcome)
            }
            if unrecorded.isEmpty && writes.isEmpty {
                // Nothing else to write while the store is failing: a probe tells when it works again.
                let probe = try database.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES ('write_probe', ?)")
                try probe.run([.integer(now)])
            }
            if let fault = configuration.commitFault?() { throw fault }
            if !writes.isEmpty { crash(at: .beforeCommit) }
            try database.execute("COMMIT")
            if !writes.isEmpty { crash(at: .afterCommit) }
        } catch {
            failure = error
            try? database.execute("ROLLBACK")
        }
        if let failure {
            // Nothing of the transaction stands: the results stay in memory (their rooms stay
            // busy, so nothing is sent again) and are written again after a backoff.
            noteFailure(Self.describe(failure), now: now, health: &health)
            let error: StoreError = failure.code == 13 ? .full("the disk is full") : .unavailable(Self.describe(failure))
            for (_, completion) in writes { completion(.failure(error)) }
            return
        }
        commitCount.wrappingAdd(1, ordering: .relaxed)
        if resultsRecorded {
            for finished in unrecorded { busyRooms.remove(finished.roomKey) }
            unrecorded.removeAll(keepingCapacity: true)
        }
        pending.wrappingAdd(pendingChange, ordering: .relaxed)
        if writeFaulted {
            noteFailure("a webhook's writes failed", now: now, health: &health)
        } else if health.failingSince != nil {
            logger.info("the queue can be written again", ["failed_for_ms": String(now - (health.failingSince ?? now))])
            health = WriteHealth()
            writeFailure.withLock { $0 = nil }
        }
        for ((_, completion), outcome) in zip(writes, outcomes) { completion(outcome) }
    }

    /// Ends the process when a test asked for a crash here. It waits a moment first, so that an
    /// answer given too early (before the commit) would reach the client and be seen.
    private func crash(at point: CrashPoint) {
        guard configuration.crashPoint == point else { return }
        usleep(300_000)
        logger.error("stopping here as asked by HAPPYRELAY_TEST_CRASH", ["point": point.rawValue])
        _exit(137)
    }

    /// Records a failing write for readiness, schedules the next try, and logs it once per interval.
    private func noteFailure(_ reason: String, now: Int, health: inout WriteHealth) {
        writeFailure.withLock { $0 = reason }
        if health.failingSince == nil { health.failingSince = now }
        health.backoff = min(max(health.backoff * 2, 100), 5000)
        health.retryAt = now + health.backoff
        let interval = RetryPolicy.milliseconds(configuration.failureLogInterval)
        if health.lastLogged.map({ now - $0 >= interval }) ?? true {
            var metadata: KeyValuePairs<String, String> = ["error": reason]
            if health.suppressed > 0 { metadata = ["error": reason, "repeated": String(health.suppressed)] }
            logger.error("the queue cannot be written", metadata)
            health.lastLogged = now
            health.suppressed = 0
        } else {
            health.suppressed += 1
        }
    }

    static func describe(_ error: SQLiteError) -> String {
        error.code == 13 ? "the disk is full (\(error.description))" : error.description
    }

    /// Writes the results of sends; returns the change in pending deliveries.
    private func record(_ results: [Finished], in database: SQLiteDatabase, now: Int) throws(SQLiteError) -> Int {
        let update = try database.prepare("UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_reason = ? WHERE id = ?")
        var change = 0
        for finished in results {
            switch finished.action {
            case .acknowledge:
                try update.run([.text("delivered"), .integer(finished.attempts), .integer(now), .null, .text(finished.id)])
                change -= 1
            case .retry(let at):
                try update.run([.text("pending"), .integer(finished.attempts), .integer(at), .text(finished.reason), .text(finished.id)])
            case .deadLetter(let why):
                try update.run([.text("dead"), .integer(finished.attempts), .integer(now), .text(why), .text(finished.id)])
                change -= 1
            }
        }
        return change
    }

    /// One webhook's writes in a savepoint: its dedupe key, its bindings, its deliveries.
    /// `faulted` is set when SQLite itself failed (not a conflict or a duplicate).
    private func store(_ write: WebhookWrite, in database: SQLiteDatabase, now: Int, faulted: inout Bool) -> Result<StoreOutcome, StoreError> {
        do throws(SQLiteError) {
            try database.execute("SAVEPOINT webhook")
        } catch {
            faulted = true
            return .failure(.unavailable(Self.describe(error)))
        }
        do throws(SQLiteError) {
            if let dedupe = write.dedupe {
                let seen = try database.prepare("SELECT first_id FROM dedupe_digests WHERE key = ? AND expires_at > ?")
                try seen.bind([.blob(dedupe.digest.bytes), .integer(now)])
                if try seen.step() {
                    let first = seen.text(0) ?? ""
                    seen.reset()
                    try database.execute("RELEASE webhook")
                    return .success(.duplicate(firstID: first))
                }
                let remember = try database.prepare("INSERT OR REPLACE INTO dedupe_digests (key, first_id, expires_at) VALUES (?, ?, ?)")
                try remember.run([.blob(dedupe.digest.bytes), .text(dedupe.firstID), .integer(dedupe.expiresAt)])
            }
            if let conflict = try bindingConflict(write.bindings, in: database, now: now) {
                try database.execute("ROLLBACK TO webhook; RELEASE webhook")
                return .failure(.bindingConflict(kind: conflict))
            }
            if !write.bindings.isEmpty {
                let bind = try database.prepare(
                    "INSERT OR REPLACE INTO bindings (kind, value, uuid, room_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
                for binding in write.bindings {
                    try bind.run([
                        .text(binding.kind), .text(binding.value), .text(binding.uuid), .text(binding.roomID), .integer(now),
                        .integer(RetryPolicy.adding(now, RetryPolicy.milliseconds(binding.ttl))),
                    ])
                }
            }
            if !write.deliveries.isEmpty {
                let insert = try database.prepare(
                    "INSERT INTO deliveries (id, route, credential, room_id, call, request, state, attempts, accepted_at, next_attempt_at, last_reason) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)")
                for delivery in write.deliveries {
                    try insert.run([
                        .text(delivery.id), .text(delivery.route), .text(delivery.credential), .text(delivery.roomID), .text(delivery.call),
                        .text(delivery.request), .text(delivery.deadReason == nil ? "pending" : "dead"), .integer(now), .integer(now),
                        delivery.deadReason.map(SQLiteValue.text) ?? .null,
                    ])
                }
            }
            try database.execute("RELEASE webhook")
            return .success(.stored)
        } catch {
            try? database.execute("ROLLBACK TO webhook; RELEASE webhook")
            faulted = true
            return .failure(error.code == 13 ? .full("the disk is full") : .unavailable(Self.describe(error)))
        }
    }

    /// The kind of the first key that this write would move from one chat to another without
    /// leave, or nil. A key may move when the rule says `"replace": true`, when the chat is the
    /// same customer's (same uuid, another room), or when another key of the same write is
    /// already bound to the chat the key leaves (whoever binds knows both, e.g. the order and
    /// its phone).
    private func bindingConflict(_ writes: [BindingWrite], in database: SQLiteDatabase, now: Int) throws(SQLiteError) -> String? {
        guard !writes.isEmpty else { return nil }
        let lookup = try database.prepare("SELECT uuid, room_id FROM bindings WHERE kind = ? AND value = ? AND expires_at > ?")
        var current: [(uuid: String, roomID: String)?] = []
        for write in writes {
            try lookup.bind([.text(write.kind), .text(write.value), .integer(now)])
            current.append(try lookup.step() ? (lookup.text(0) ?? "", lookup.text(1) ?? "") : nil)
            lookup.reset()
        }
        for (index, write) in writes.enumerated() {
            guard let existing = current[index], !write.mayReplace, existing.uuid != write.uuid else { continue }
            let vouched = writes.indices.contains { other in
                other != index && writes[other].uuid == write.uuid && writes[other].roomID == write.roomID
                    && current[other].map { $0.uuid == existing.uuid && $0.roomID == existing.roomID } == true
            }
            if !vouched { return write.kind }
        }
        return nil
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
                    id: due.text(0) ?? "", route: due.text(1) ?? "", credential: due.text(2) ?? "", call: due.text(4) ?? "",
                    attempts: due.integer(5), acceptedAt: due.integer(6), roomKey: roomKey)
            }
        } catch {
            logger.error("the queue cannot be read", ["error": error.description])
        }
        return blocked
    }

    private func send(id: String, route: String, credential: String, call: String, attempts: Int, acceptedAt: Int, roomKey: String) {
        shared.withLock { $0.inFlight += 1 }
        // A damaged row must not stop the queue: its attempt count saturates, and a call that
        // cannot be read is dead at once, with the reason, instead of being sent.
        let attempt = attempts < Int.max ? max(attempts, 0) + 1 : Int.max
        guard let fields = Self.fields(of: call) else {
            let reason = "the stored call cannot be read"
            logger.warning("delivery is dead", ["delivery.id": id, "route": route, "attempt": String(attempt), "reason": reason])
            finish(Finished(id: id, roomKey: roomKey, action: .deadLetter(reason: reason), attempts: attempt, reason: reason))
            return
        }
        Task { [self] in
            let result: UpstreamResult
            var retryAfter: Duration?
            if let token = credentials.token(named: credential.isEmpty ? nil : credential) {
                (result, retryAfter) = await upstream.sendReportingRetryAfter(
                    MappedCall(rule: "", fields: fields), token: token, timeout: configuration.sendTimeout)
            } else {
                result = .transient("\(Credentials.variable(for: credential.isEmpty ? nil : credential)) is not set")
            }
            let action = configuration.policy.decide(result, attempt: attempt, acceptedAt: acceptedAt, now: clock(), retryAfter: retryAfter) {
                Double.random(in: 0..<1)
            }
            if case .failed(let code, let message, true) = result {
                logger.error("HappyTalk refused the relay's credential: check the token", ["delivery.id": id, "route": route, "code": String(code), "message": message])
            }
            switch action {
            case .acknowledge:
                let (waited, overflow) = clock().subtractingReportingOverflow(acceptedAt)
                metrics.delivery(sync: false, .delivered, result: result, latency: overflow ? nil : .milliseconds(max(waited, 0)))
                logger.debug("delivered", ["delivery.id": id, "route": route, "attempt": String(attempt)])
            case .retry:
                metrics.delivery(sync: false, .retried, result: result, latency: nil)
                logger.info("delivery will be retried", ["delivery.id": id, "route": route, "attempt": String(attempt), "reason": RetryPolicy.describe(result)])
            case .deadLetter(let reason):
                metrics.delivery(sync: false, .dead, result: result, latency: nil)
                logger.warning("delivery is dead", ["delivery.id": id, "route": route, "attempt": String(attempt), "reason": reason])
            }
            finish(Finished(id: id, roomKey: roomKey, action: action, attempts: attempt, reason: RetryPolicy.describe(result)))
        }
    }

    private func finish(_ finished: Finished) {
        shared.withLock { shared in
            shared.inFlight -= 1
            shared.jobs.append(.finished(finished))
        }
        wake.signal()
    }

    /// The fields of a stored call object; nil when it is not an object of strings.
    static func fields(of call: String) -> [(name: String, value: String)]? {
        guard case .object(let members)? = try? JSONParser().parse(call) else { return nil }
        var fields: [(name: String, value: String)] = []
        for (key, value) in members {
            guard case .string(let text) = value else { return nil }
            fields.append((key, text))
        }
        return fields
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
        let (age, overflow) = clock().subtractingReportingOverflow(oldest)
        return Gauges(
            pending: statement.integer(0), dead: statement.integer(1),
            oldestPendingAge: oldest == 0 || overflow ? 0 : Double(max(age, 0)) / 1000)
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
