import Foundation
import RelayHTTP
import RelayMapping
import Synchronization
import Testing

@testable import RelayCore

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(firstDelay: .seconds(1), maxDelay: .seconds(600), giveUpAfter: .seconds(86_400))
    let accepted = 1_000_000

    @Test func successIsAcknowledged() {
        #expect(policy.decide(.success, attempt: 1, acceptedAt: accepted, now: accepted) { 0.5 } == .acknowledge)
    }

    @Test func theEventsOwnFailuresAreDeadAtOnce() {
        for (code, message) in [(-501, "uuid"), (-503, "users"), (-503, "room"), (-7, "anything else")] {
            #expect(
                policy.decide(.failed(code: code, message: message, isCredentialProblem: false), attempt: 1, acceptedAt: accepted, now: accepted) { 0.5 }
                    == .deadLetter(reason: "HappyTalk refused the call: \(code) \(message)"))
        }
    }

    @Test func classificationFollowsTheSpec() {
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"success"}"#.utf8)) == .success)
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"fail","code":-501,"message":"token"}"#.utf8)) == .failed(code: -501, message: "token", isCredentialProblem: true))
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"fail","code":-502,"message":"unAuthorized"}"#.utf8)) == .failed(code: -502, message: "unAuthorized", isCredentialProblem: true))
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"fail","code":-501,"message":"uuid"}"#.utf8)) == .failed(code: -501, message: "uuid", isCredentialProblem: false))
        #expect(UpstreamResult.classify(status: 503, body: []) == .transient("HappyTalk answered HTTP 503"))
        #expect(UpstreamResult.classify(status: 429, body: []) == .transient("HappyTalk answered HTTP 429"))
        #expect(UpstreamResult.classify(status: 200, body: Array("<html>".utf8)) == .transient("HappyTalk's answer (HTTP 200) is not its JSON"))
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"ok":true}"#.utf8)) == .transient("HappyTalk's answer (HTTP 200) is not its JSON"))
    }

    @Test func transientFailuresAndCredentialProblemsAreRetriedWithFullJitterBackoff() {
        let results: [UpstreamResult] = [.transient("reset"), .timedOut, .failed(code: -502, message: "unAuthorized", isCredentialProblem: true)]
        for result in results {
            for attempt in 1...20 {
                let ceiling = min(600_000, 1000 << (attempt - 1))
                let low = policy.decide(result, attempt: attempt, acceptedAt: accepted, now: accepted + 10) { 0 }
                let high = policy.decide(result, attempt: attempt, acceptedAt: accepted, now: accepted + 10) { 0.999999 }
                #expect(low == .retry(atMilliseconds: accepted + 11), "never in the past, never now")
                guard case .retry(let at) = high else {
                    Issue.record("no retry")
                    continue
                }
                #expect(at - (accepted + 10) <= ceiling && at - (accepted + 10) >= ceiling - 1)
            }
        }
    }

    @Test func retryAfterIsHonouredUpToTheCap() {
        #expect(policy.decide(.transient("429"), attempt: 1, acceptedAt: accepted, now: accepted, retryAfter: .seconds(30)) { 0 } == .retry(atMilliseconds: accepted + 30_000))
        #expect(policy.decide(.transient("429"), attempt: 1, acceptedAt: accepted, now: accepted, retryAfter: .seconds(9999)) { 0 } == .retry(atMilliseconds: accepted + 600_000))
    }

    @Test func givesUpAfterTheHorizonButNeverEarly() {
        let day = 86_400_000
        // Just before the horizon: retried, with the retry placed no later than the horizon.
        #expect(policy.decide(.timedOut, attempt: 30, acceptedAt: accepted, now: accepted + day - 5) { 0.999 } == .retry(atMilliseconds: accepted + day))
        #expect(policy.decide(.timedOut, attempt: 31, acceptedAt: accepted, now: accepted + day) { 0.5 } == .deadLetter(reason: "gave up after 31 attempts: HappyTalk did not answer in time"))
    }
}

@Suite struct DeliveryQueueStoreTests {
    func directory() -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-store-\(UUID().uuidString)")
        return url.path
    }

    func makeQueue(_ path: String) throws -> DeliveryQueue {
        let client = try HTTPClient()
        let upstream = try HappyTalkUpstream(baseURL: "http://127.0.0.1:1", client: client)
        return try DeliveryQueue(directory: path, upstream: upstream, credentials: Credentials(tokens: [:]), logger: Logger(level: .error, sink: .init { _ in }))
    }

    @Test func migratesAnEmptyDatabaseAndRefusesANewerSchema() throws {
        let path = directory()
        _ = try makeQueue(path)
        let database = try SQLiteDatabase(path: path + "/" + DeliveryQueue.fileName)
        #expect(try database.integer("PRAGMA user_version") == 3)
        #expect(try database.integer("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('dedupe', 'bindings')") == 2)
        #expect(try database.integer("SELECT COUNT(*) FROM sqlite_master WHERE name = 'deliveries'") == 1)
        // Opening again is a no-op migration.
        _ = try makeQueue(path)
        try database.execute("PRAGMA user_version = 9")
        #expect(throws: SQLiteError.self) { _ = try makeQueue(path) }
    }

    @Test func migratesAVersion1DatabaseKeepingItsDeliveries() throws {
        let path = directory()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let old = try SQLiteDatabase(path: path + "/" + DeliveryQueue.fileName)
        try old.execute(
            """
            CREATE TABLE deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, route TEXT NOT NULL, credential TEXT NOT NULL,
              room_id TEXT NOT NULL, call TEXT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
              accepted_at INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, last_reason TEXT);
            INSERT INTO deliveries (id, route, credential, room_id, call, request, state, accepted_at, next_attempt_at)
              VALUES ('d-1', '/r', '', 'r-1', '{}', '{}', 'dead', 1, 1);
            PRAGMA user_version = 1;
            """)
        let queue = try makeQueue(path)
        #expect(try old.integer("PRAGMA user_version") == 3)
        #expect(try queue.gauges() == DeliveryQueue.Gauges(pending: 0, dead: 1, oldestPendingAge: 0))
        #expect(try queue.dedupeKeys().isEmpty)
    }

    @Test func concurrentEnqueuesShareCommitsAndAllLand() async throws {
        let path = directory()
        let queue = try makeQueue(path)
        queue.start()
        let committed = CommitCounter()
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<200 {
                group.addTask {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let delivery = NewDelivery(
                            id: "d-\(writer)", route: "/r", credential: "", roomID: "room-\(writer % 7)", call: #"{"uuid":"u","room_id":"r"}"#,
                            request: "{}", deadReason: "kept dead so that nothing is sent")
                        queue.enqueue([delivery]) { result in
                            if case .success = result { committed.count.wrappingAdd(1, ordering: .relaxed) }
                            continuation.resume()
                        }
                    }
                }
            }
        }
        #expect(committed.count.load(ordering: .relaxed) == 200)
        // Group commit: writers that arrive together share a transaction.
        #expect(queue.commits < 200, "\(queue.commits) commits for 200 writers")
        #expect(try queue.gauges() == DeliveryQueue.Gauges(pending: 0, dead: 200, oldestPendingAge: 0))
        await queue.shutdown(drain: .seconds(1))
        let database = try SQLiteDatabase(path: path + "/" + DeliveryQueue.fileName)
        let check = try database.prepare("PRAGMA integrity_check")
        #expect(try check.step())
        #expect(check.text(0) == "ok")
    }
}

final class CommitCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// Bind and resolve against the real store, with an injected clock.
@Suite struct BindingStoreTests {
    final class Clock: @unchecked Sendable {
        private let value = Mutex(1_000_000)
        var now: Int { value.withLock { $0 } }
        func advance(_ milliseconds: Int) { value.withLock { $0 += milliseconds } }
    }

    func store(_ clock: Clock) throws -> (DeliveryQueue, SQLiteBindings) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-bind-\(UUID().uuidString)").path
        let client = try HTTPClient()
        let upstream = try HappyTalkUpstream(baseURL: "http://127.0.0.1:1", client: client)
        let queue = try DeliveryQueue(
            directory: path, upstream: upstream, credentials: Credentials(tokens: [:]), logger: Logger(level: .error, sink: .init { _ in }),
            clock: { clock.now })
        queue.start()
        return (queue, try SQLiteBindings(path: queue.databasePath, clock: { clock.now }))
    }

    func bind(_ queue: DeliveryQueue, _ writes: [BindingWrite]) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.bind(writes) { _ in continuation.resume() }
        }
    }

    func write(_ kind: String, _ value: String, _ uuid: String, _ room: String, ttl: Duration = .seconds(60)) -> BindingWrite {
        BindingWrite(kind: kind, value: value, uuid: uuid, roomID: room, ttl: ttl)
    }

    @Test func severalKeysReplacementAndExpiry() async throws {
        let clock = Clock()
        let (queue, bindings) = try store(clock)
        await bind(queue, [write("order_number", "1043", "u-1", "r-9"), write("phone", "01012345678", "u-1", "r-9")])
        #expect(bindings.binding(kind: "order_number", value: "1043")?.roomID == "r-9")
        #expect(bindings.binding(kind: "phone", value: "01012345678")?.uuid == "u-1")
        #expect(bindings.binding(kind: "order_number", value: "1044") == nil)
        // A later binding for the same key replaces the earlier one.
        await bind(queue, [write("order_number", "1043", "u-2", "r-10", ttl: .seconds(10))])
        #expect(bindings.binding(kind: "order_number", value: "1043") == Binding(uuid: "u-2", roomID: "r-10", key: "order_number=1043", createdAt: RFC3339.timestamp(milliseconds: 1_000_000)))
        // Expiry: gone once its ttl has passed; the other key, bound for longer, stays.
        clock.advance(10_001)
        #expect(bindings.binding(kind: "order_number", value: "1043") == nil)
        #expect(bindings.binding(kind: "phone", value: "01012345678")?.roomID == "r-9")
        await queue.shutdown(drain: .seconds(1))
    }

    @Test func theFirstBoundKeyWins() async throws {
        let clock = Clock()
        let (queue, bindings) = try store(clock)
        await bind(queue, [write("order_number", "7", "u-order", "r-order"), write("phone", "01099998888", "u-phone", "r-phone")])
        let route = try #require(try? MappingLoader.compile(file: "t.json", bytes: Array("""
            { "route": "/t", "verify": { "scheme": "none" }, "rules": [ { "resolve": [ { "order_number": "$.body.order" }, { "phone": "$.body.phone" } ],
              "set": { "uuid": "$.binding.uuid", "room_id": "$.binding.room_id" } } ] }
            """.utf8), baseDirectory: nil).get())
        func resolved(_ body: String) -> String? {
            let document = RequestDocument.make(body: try! JSONParser().parse(body), headers: [], query: [], route: "/t", receivedAt: "t", requestID: "r")
            guard case .calls(let calls, _) = route.apply(to: document, bindings: bindings) else { return nil }
            return calls[0]["room_id"]
        }
        #expect(resolved(#"{"order":7,"phone":"01099998888"}"#) == "r-order")
        #expect(resolved(#"{"order":8,"phone":"01099998888"}"#) == "r-phone")
        #expect(resolved(#"{"order":8,"phone":"01000000000"}"#) == nil)
        await queue.shutdown(drain: .seconds(1))
    }
}
