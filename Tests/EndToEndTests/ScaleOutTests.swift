import Foundation
import Synchronization
import TestSupport
import Testing

@testable import RelayStore

#if canImport(Glibc)
import Glibc
#endif

/// Several real relays sharing one real PostgreSQL (a throwaway cluster) in front of the real
/// mock: what a load balancer spreads over them is delivered once, in order per room, and
/// survives a replica's crash and the database's restart.
@Suite(.enabled(if: PostgresCluster.binaries != nil, "PostgreSQL is installed by deploy/install-build-deps --tests"))
struct ScaleOutTests {
    static let secret = "sc4le-0ut-S3cret-Pp9"
    /// Signed async webhooks: one call per webhook, its room and sequence number in the body.
    static let orders = #"""
        { "route": "/orders", "verify": { "scheme": "github", "secret": { "env": "ORDERS_SECRET" } },
          "dedupe": { "key": "$.headers['x-event-id']", "window": "1h" },
          "rules": [ { "set": { "uuid": "u-1", "room_id": "$.body.room", "parcel_number": "$.body.n" } } ] }
        """#
    static let chatbot = #"""
        { "route": "/chatbot", "verify": { "scheme": "bearer", "secret": { "env": "ORDERS_SECRET" } }, "delivery": "sync",
          "rules": [ { "bind": { "keys": { "order_number": "$.body.order" }, "uuid": "$.body.uuid", "room_id": "$.body.room", "ttl": "1d" } } ] }
        """#
    static let shipped = #"""
        { "route": "/shipped", "verify": { "scheme": "github", "secret": { "env": "ORDERS_SECRET" } },
          "rules": [ { "resolve": [ { "order_number": "$.body.order" } ],
                       "set": { "uuid": "$.binding.uuid", "room_id": "$.binding.room_id", "parcel_number": "$.body.tracking" } } ] }
        """#

    /// One cluster, one mock, `count` relays on the database.
    final class Replicas: @unchecked Sendable {
        let database: PostgresCluster
        let folder = TemporaryFolder()
        let mock: RelayProcess
        let mockPort: Int
        var relays: [RelayProcess] = []
        var ports: [Int] = []
        var recordPath: String { folder.path + "/calls.jsonl" }

        init(count: Int, mockArguments: [String] = [], relayArguments: [String] = []) throws {
            database = try PostgresCluster()
            try FileManager.default.createDirectory(atPath: folder.path + "/mappings", withIntermediateDirectories: true)
            for (name, text) in ["orders.json": ScaleOutTests.orders, "chatbot.json": ScaleOutTests.chatbot, "shipped.json": ScaleOutTests.shipped] {
                try text.write(toFile: folder.path + "/mappings/" + name, atomically: false, encoding: .utf8)
            }
            mock = try RelayProcess(
                ["mock-upstream", "--listen", "127.0.0.1:0", "--token", RelayHarness.token, "--record", folder.path + "/calls.jsonl"] + mockArguments)
            mockPort = try mock.waitForPort()
            for index in 0..<count {
                let relay = try RelayProcess(
                    ["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path + "/mappings", "--upstream", "http://127.0.0.1:\(mockPort)",
                     "--data-dir", folder.path + "/unused-\(index)", "--log-format", "json", "--retry-max-delay", "1", "--claim-timeout", "11"]
                        + relayArguments,
                    environment: [
                        "HAPPYTALK_TOKEN": RelayHarness.token, "ORDERS_SECRET": ScaleOutTests.secret, "HAPPYRELAY_DATABASE_URL": database.url,
                    ])
                relays.append(relay)
                ports.append(try relay.waitForPort())
            }
        }

        deinit {
            for relay in relays where relay.process.isRunning { _ = try? relay.stop() }
            _ = try? mock.stop()
        }

        /// Sends one request to replica `index` on a fresh connection.
        func send(_ index: Int, _ path: String, body: String, headers: [(String, String)] = [], method: String = "POST") throws -> RawConnection.Response {
            try RawConnection.request(port: ports[index], method, path, body: body, headers: [("Content-Type", "application/json")] + headers)
        }

        /// A signed webhook, as the platform sends it.
        func signed(_ index: Int, _ path: String, body: String, event: String? = nil) throws -> RawConnection.Response {
            var headers = [("X-Hub-Signature-256", "sha256=" + Sign.hex(Sign.hmac256(ScaleOutTests.secret, body)))]
            if let event { headers.append(("X-Event-Id", event)) }
            return try send(index, path, body: body, headers: headers)
        }

        /// The calls the mock accepted, in arrival order.
        var calls: [String] {
            ((try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// (room, n) of every recorded order call, in arrival order.
        var orderCalls: [(room: String, n: Int)] {
            calls.compactMap { line in
                guard let room = Self.field("room_id", in: line), let n = Self.field("parcel_number", in: line).flatMap({ Int($0) }) else { return nil }
                return (room, n)
            }
        }

        static func field(_ name: String, in line: String) -> String? {
            guard let start = line.range(of: "\"\(name)\":\"") else { return nil }
            return String(line[start.upperBound...].prefix { $0 != "\"" })
        }

        /// Waits until every (room, n) in `expected` has arrived, or `timeout` passes.
        func waitForOrders(_ expected: Set<String>, timeout: Double) -> [(room: String, n: Int)] {
            let deadline = Date().addingTimeInterval(timeout)
            while true {
                let calls = orderCalls
                if expected.isSubset(of: Set(calls.map { "\($0.room)#\($0.n)" })) || Date() > deadline { return calls }
                usleep(50_000)
            }
        }

        /// The sum of a counter over the running replicas.
        func metric(_ name: String) throws -> Int {
            var total = 0
            for (index, relay) in relays.enumerated() where relay.process.isRunning {
                let text = try send(index, "/metrics", body: "", method: "GET").text
                for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
                    total += Int(Double(line.split(separator: " ")[1]) ?? 0)
                }
            }
            return total
        }
    }

    /// Each room's calls in acceptance order: a call sent twice (taken over from a dead
    /// replica) may repeat at once, nothing may come out of order or go missing.
    static func expectInOrder(_ calls: [(room: String, n: Int)], accepted: [String: [Int]], sourceLocation: SourceLocation = #_sourceLocation) {
        for (room, numbers) in accepted {
            var seen: [Int] = []
            for call in calls where call.room == room && seen.last != call.n { seen.append(call.n) }
            #expect(seen == numbers, "room \(room): \(seen) arrived, \(numbers) were accepted", sourceLocation: sourceLocation)
        }
    }

    /// Three replicas, signed webhooks spread round-robin, one replica killed (-9) mid-load:
    /// everything answered 202 arrives, per room in order, its rooms move on within the claim
    /// timeout, and what was sent twice is counted.
    @Test func aReplicaKilledMidLoadLosesNothingAndKeepsEachRoomInOrder() async throws {
        try await offPool {
            // Slow answers keep deliveries in flight when the replica dies.
            let replicas = try Replicas(count: 3, mockArguments: ["--latency", "100"])
            var accepted: [String: [Int]] = [:]
            var expected: Set<String> = []
            let rooms = 12
            var killedAt: Date?
            var heldAtDeath = 0
            let database = try PostgresConnection(url: replicas.database.url)
            let holder = "%:\(replicas.relays[1].process.processIdentifier):%"
            func held() throws -> Int {
                try database.query("SELECT count(*) FROM rooms WHERE lease_owner LIKE $1", [.text(holder)]).integer(0, 0)
            }
            for n in 0..<240 {
                // From the 120th webhook on, killed as soon as it holds a room (its lease names
                // its process): a send in flight. Webhooks keep coming meanwhile, so that there
                // are sends to hold (waiting instead, with the queue drained, it held none).
                if n >= 120, killedAt == nil, try held() > 0 {
                    _ = try replicas.relays[1].stop(signal: SIGKILL)
                    killedAt = Date()
                    // Its outcome may have been committed between the look and the kill: what
                    // the dead replica still held is what must be taken over.
                    heldAtDeath = try held()
                }
                let room = "r-\(n % rooms)"
                let body = #"{"room":"\#(room)","n":"\#(n)"}"#
                // The load balancer sends to the next replica that takes the connection.
                var answer: RawConnection.Response?
                for offset in 0..<3 {
                    let index = (n + offset) % 3
                    if let response = try? replicas.signed(index, "/orders", body: body, event: "evt-\(n)") {
                        answer = response
                        break
                    }
                }
                #expect(answer?.status == 202, "\(n): \(answer?.text ?? "no answer")")
                if answer?.status == 202 {
                    accepted[room, default: []].append(n)
                    expected.insert("\(room)#\(n)")
                }
            }
            try #require(killedAt != nil, "replica 1 held no room from the 120th webhook on: nothing was killed mid-send")
            let calls = replicas.waitForOrders(expected, timeout: 60)
            let finished = Date()
            #expect(Set(calls.map { "\($0.room)#\($0.n)" }) == expected)
            Self.expectInOrder(calls, accepted: accepted)
            // The dead replica's leases ran out after --claim-timeout (11 s): its rooms went on then.
            if let killedAt { #expect(finished.timeIntervalSince(killedAt) < 11 + 15) }
            let duplicates = calls.count - Set(calls.map { "\($0.room)#\($0.n)" }).count
            let redeliveries = try replicas.metric("happyrelay_redeliveries_total")
            #expect(duplicates <= redeliveries, "\(duplicates) calls arrived twice, \(redeliveries) redeliveries counted")
            // Each room the dead replica held is taken over, its delivery sent again and said so.
            #expect(redeliveries == heldAtDeath, "\(heldAtDeath) rooms held by the dead replica, \(redeliveries) redeliveries")
            #expect(heldAtDeath <= rooms, "at most one delivery per room is in flight")
            if heldAtDeath > 0 {
                #expect(replicas.relays[0].log.contains("sending again a delivery") || replicas.relays[2].log.contains("sending again a delivery"))
            }
        }
    }

    /// Webhooks arriving at once on two replicas for the same rooms: every one is answered 202
    /// (two batches that lock the same rooms in different orders would deadlock, and one of
    /// them be answered 503 after PostgreSQL's deadlock timeout), and every one arrives.
    @Test func concurrentBatchesOnTwoReplicasNeverDeadlock() async throws {
        try await offPool {
            let replicas = try Replicas(count: 2)
            let answers = Mutex<[Int: Int]>([:])
            // 32 clients at once, each on a thread of its own (not the pool's two).
            let finished = DispatchGroup()
            for client in 0..<32 {
                finished.enter()
                Thread {
                    for index in 0..<40 {
                        let n = client * 1000 + index
                        // Every client walks the rooms in its own order.
                        let room = "r-\((index * (client + 1)) % 6)"
                        let status = (try? replicas.signed(n % 2, "/orders", body: #"{"room":"\#(room)","n":"\#(n)"}"#).status) ?? 0
                        answers.withLock { $0[n] = status }
                    }
                    finished.leave()
                }.start()
            }
            finished.wait()
            let statuses = answers.withLock { $0 }
            #expect(statuses.count == 32 * 40)
            #expect(statuses.values.allSatisfy { $0 == 202 }, "\(statuses.values.filter { $0 != 202 }.count) not accepted: \(Set(statuses.values))")
            let expected = Set(statuses.keys.map { n in "r-\(((n % 1000) * (n / 1000 + 1)) % 6)#\(n)" })
            let calls = replicas.waitForOrders(expected, timeout: 40)
            #expect(Set(calls.map { "\($0.room)#\($0.n)" }) == expected)
            // A deadlock the relay recovered from (a batch written again) is still one: none at all.
            // (The relays are stopped first: a session reports its counts when it ends.)
            for relay in replicas.relays { _ = try relay.stop() }
            let deadlocks = try PostgresConnection(url: replicas.database.url)
                .query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").integer(0, 0)
            #expect(deadlocks == 0, "PostgreSQL broke \(deadlocks) deadlocks between the relays")
        }
    }

    /// A binding made on one replica resolves on another at once; the same event sent to two
    /// replicas is delivered once.
    @Test func bindingsAndDedupeKeysAreSharedByEveryReplica() async throws {
        try await offPool {
            let replicas = try Replicas(count: 2)
            let bound = try replicas.send(
                0, "/chatbot", body: #"{"order":"1043","uuid":"u-7","room":"r-7"}"#, headers: [("Authorization", "Bearer \(Self.secret)")])
            #expect(bound.status == 200, "\(bound.text)")
            #expect(try replicas.signed(1, "/shipped", body: #"{"order":"1043","tracking":"1Z999"}"#).status == 202)

            #expect(try replicas.signed(0, "/orders", body: #"{"room":"r-1","n":"1"}"#, event: "evt-same").status == 202)
            let again = try replicas.signed(1, "/orders", body: #"{"room":"r-1","n":"1"}"#, event: "evt-same")
            #expect(again.text.contains("duplicate"), "\(again.status) \(again.text)")
            // A later, distinct event goes through: the duplicate is not just late.
            #expect(try replicas.signed(1, "/orders", body: #"{"room":"r-1","n":"2"}"#, event: "evt-next").status == 202)
            _ = replicas.waitForOrders(["r-1#2"], timeout: 20)
            let calls = replicas.calls
            #expect(calls.contains(#"{"token":"\#(RelayHarness.token)","uuid":"u-7","room_id":"r-7","parcel_number":"1Z999"}"#), "\(calls)")
            #expect(calls.filter { $0.contains(#""parcel_number":"1""#) }.count == 1, "\(calls)")
        }
    }

    /// HappyTalk away while three replicas take webhooks: all delivered after it, per room in order.
    @Test func anUpstreamOutageKeepsEveryRoomInOrderAcrossReplicas() async throws {
        try await offPool {
            let replicas = try Replicas(count: 3, mockArguments: ["--fail-status", "503"])
            var accepted: [String: [Int]] = [:]
            var expected: Set<String> = []
            for n in 0..<60 {
                let room = "r-\(n % 5)"
                #expect(try replicas.signed(n % 3, "/orders", body: #"{"room":"\#(room)","n":"\#(n)"}"#).status == 202)
                accepted[room, default: []].append(n)
                expected.insert("\(room)#\(n)")
            }
            // Every replica has tried and been refused before HappyTalk comes back.
            #expect(replicas.relays.allSatisfy { relay in relay.waitForLog(timeout: 20) { $0.contains("delivery will be retried") }.contains("delivery will be retried") })
            #expect(replicas.calls.isEmpty)
            _ = try replicas.mock.stop()
            let mock = try RelayProcess(
                ["mock-upstream", "--listen", "127.0.0.1:\(replicas.mockPort)", "--token", RelayHarness.token, "--record", replicas.recordPath])
            defer { _ = try? mock.stop() }
            _ = try mock.waitForPort()
            let calls = replicas.waitForOrders(expected, timeout: 60)
            #expect(Set(calls.map { "\($0.room)#\($0.n)" }) == expected)
            Self.expectInOrder(calls, accepted: accepted)
        }
    }

    /// PostgreSQL stopped under load and started again: 503 with Retry-After and /readyz 503
    /// meanwhile, then the replicas take webhooks again without a restart, and everything they
    /// answered 202 is delivered.
    @Test func theDatabaseGoingAwayIsAnswered503AndRecoveredFromWithoutARestart() async throws {
        try await offPool {
            let replicas = try Replicas(count: 2)
            var accepted: [String: [Int]] = [:]
            var expected: Set<String> = []
            var n = 0
            func post() throws -> RawConnection.Response {
                defer { n += 1 }
                let room = "r-\(n % 4)"
                let response = try replicas.signed(n % 2, "/orders", body: #"{"room":"\#(room)","n":"\#(n)"}"#)
                if response.status == 202 {
                    accepted[room, default: []].append(n)
                    expected.insert("\(room)#\(n)")
                }
                return response
            }
            for _ in 0..<40 { #expect(try post().status == 202) }
            func waitForReadiness(_ status: Int, timeout: Double) throws {
                for index in 0..<2 {
                    let deadline = Date().addingTimeInterval(timeout)
                    var ready = try replicas.send(index, "/readyz", body: "", method: "GET")
                    while ready.status != status && Date() < deadline {
                        usleep(100_000)
                        ready = try replicas.send(index, "/readyz", body: "", method: "GET")
                    }
                    #expect(ready.status == status, "replica \(index): \(ready.text)")
                }
            }
            // Idle: everything delivered, nothing left to write. A relay notices the database
            // gone from its claims failing, and is not ready before any webhook tries.
            _ = replicas.waitForOrders(expected, timeout: 20)
            try replicas.database.kill()
            try waitForReadiness(503, timeout: 10)
            try replicas.database.start()
            try waitForReadiness(200, timeout: 20)
            // Under load.
            try replicas.database.kill()
            // Until each replica has noticed, a webhook may still fail on its way in: 503 all the same.
            var refused: RawConnection.Response?
            for _ in 0..<200 {
                let response = try post()
                #expect(response.status == 503 || response.status == 202, "\(response.status) \(response.text)")
                if response.status == 503 { refused = response }
                if refused != nil && n % 2 == 0 { break }
            }
            #expect(refused?.text.contains(#""error":"unavailable""#) == true, "\(refused?.text ?? "never refused")")
            #expect(refused?.header("Retry-After") == "5")
            for index in 0..<2 {
                var ready = try replicas.send(index, "/readyz", body: "", method: "GET")
                let deadline = Date().addingTimeInterval(10)
                while ready.status != 503 && Date() < deadline {
                    usleep(100_000)
                    ready = try replicas.send(index, "/readyz", body: "", method: "GET")
                }
                #expect(ready.status == 503, "replica \(index): \(ready.text)")
            }
            try replicas.database.start()
            // Back without a restart: both replicas take webhooks again.
            for index in 0..<2 {
                let deadline = Date().addingTimeInterval(20)
                var ready = try replicas.send(index, "/readyz", body: "", method: "GET")
                while ready.status != 200 && Date() < deadline {
                    usleep(100_000)
                    ready = try replicas.send(index, "/readyz", body: "", method: "GET")
                }
                #expect(ready.status == 200, "replica \(index): \(ready.text)")
            }
            for _ in 0..<20 { #expect(try post().status == 202) }
            let calls = replicas.waitForOrders(expected, timeout: 30)
            #expect(Set(calls.map { "\($0.room)#\($0.n)" }).isSuperset(of: expected))
            #expect(replicas.relays.allSatisfy { $0.process.isRunning })
            // The outage was logged (with the URL redacted), the password nowhere.
            #expect(replicas.relays.allSatisfy { $0.log.contains("the queue cannot be") })
            #expect(replicas.relays.allSatisfy { !$0.log.contains(PostgresCluster.password) })
        }
    }

    /// A relay that ran on SQLite moves to PostgreSQL: `store copy` brings its pending and dead
    /// deliveries, dedupe keys and bindings (and copies nothing twice when run again); a relay
    /// on the database then delivers the backlog in order, knows the keys and the binding, and
    /// the CLI reads the dead letter there. The database password shows nowhere.
    @Test func storeCopyMovesARelayFromSQLiteToPostgreSQL() async throws {
        try await offPool {
            let harness = try RelayHarness(
                mappings: ["orders.json": Self.orders, "chatbot.json": Self.chatbot, "shipped.json": Self.shipped], environment: ["ORDERS_SECRET": Self.secret])
            try harness.stopMock()
            func signed(_ body: String, event: String) throws -> RawConnection.Response {
                try harness.post("/orders", body: body, headers: [
                    ("Content-Type", "application/json"), ("X-Event-Id", event), ("X-Hub-Signature-256", "sha256=" + Sign.hex(Sign.hmac256(Self.secret, body))),
                ])
            }
            for n in 0..<5 { #expect(try signed(#"{"room":"r-1","n":"\#(n)"}"#, event: "evt-\(n)").status == 202) }
            let dead = try signed(#"{"n":"9"}"#, event: "evt-9")
            #expect(dead.text.contains("mapping_failed"), "\(dead.text)")
            let bound = try harness.post(
                "/chatbot", body: #"{"order":"1043","uuid":"u-7","room":"r-7"}"#,
                headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(Self.secret)")])
            #expect(bound.status == 200)
            // HappyTalk is away: the room's head has a failed attempt on record to copy.
            #expect(harness.relay.waitForLog { $0.contains("delivery will be retried") }.contains("delivery will be retried"))
            _ = try harness.relay.stop()

            let database = try PostgresCluster()
            let environment = ["HAPPYRELAY_DATABASE_URL": database.url]
            // Operators' commands on a database no relay has served say so, and create nothing
            // there (a mistyped URL leaves no empty store behind).
            let redacted = "postgres://relay:***@127.0.0.1:\(database.port)/postgres"
            let empty = try RelayProcess.run(["deliveries", "list"], environment: environment)
            #expect(empty.status == 1 && empty.output.contains("no delivery queue in \(redacted)"), "\(empty.output)")
            let noBindings = try RelayProcess.run(["bindings", "list", "--database-url", database.url])
            #expect(noBindings.status == 1 && noBindings.output.contains("no delivery queue in \(redacted)"), "\(noBindings.output)")
            #expect(try PostgresConnection(url: database.url).query("SELECT to_regclass('happyrelay_schema')::text").text(0, 0) == nil)
            let copied = try RelayProcess.run(["store", "copy", "--from-data-dir", harness.dataDirectory], environment: environment)
            #expect(copied.status == 0, "\(copied.output)")
            #expect(copied.output.contains("deliveries: 5 pending, 1 dead (attempts: "), "\(copied.output)")
            #expect(!copied.output.contains("(attempts: 0)"), "\(copied.output)")
            #expect(copied.output.contains("dedupe keys: 5\n"), "\(copied.output)")
            #expect(copied.output.contains("bindings: 1\n"), "\(copied.output)")
            let again = try RelayProcess.run(["store", "copy", "--from-data-dir", harness.dataDirectory, "--to", database.url])
            #expect(again.output.contains("deliveries: 0 pending, 0 dead (attempts: 0)"), "\(again.output)")
            #expect(again.output.contains("already there, left as they were: deliveries 6, dedupe keys 5, bindings 1"), "\(again.output)")

            try harness.restartMock()
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", harness.directory.appendingPathComponent("mappings").path,
                 "--upstream", "http://127.0.0.1:\(harness.mockPort)", "--log-format", "json", "--log-level", "debug"],
                environment: environment.merging(["HAPPYTALK_TOKEN": RelayHarness.token, "ORDERS_SECRET": Self.secret]) { $1 })
            defer { _ = try? relay.stop() }
            let port = try relay.waitForPort()
            let calls = harness.waitForCalls(5)
            #expect(calls.map { Replicas.field("parcel_number", in: $0) } == ["0", "1", "2", "3", "4"])
            func send(_ path: String, _ body: String, _ headers: [(String, String)]) throws -> RawConnection.Response {
                try RawConnection.request(port: port, "POST", path, body: body, headers: [("Content-Type", "application/json")] + headers)
            }
            let body = #"{"room":"r-1","n":"2"}"#
            let duplicate = try send("/orders", body, [("X-Event-Id", "evt-2"), ("X-Hub-Signature-256", "sha256=" + Sign.hex(Sign.hmac256(Self.secret, body)))])
            #expect(duplicate.text.contains("duplicate"), "\(duplicate.text)")
            let shipped = #"{"order":"1043","tracking":"EE123456789KR"}"#
            #expect(try send("/shipped", shipped, [("X-Hub-Signature-256", "sha256=" + Sign.hex(Sign.hmac256(Self.secret, shipped)))]).status == 202)
            #expect(harness.waitForCalls(6).last?.contains(#""uuid":"u-7","room_id":"r-7","parcel_number":"EE123456789KR""#) == true)

            let listed = try RelayProcess.run(["deliveries", "list", "--state", "dead"], environment: environment)
            #expect(listed.status == 0 && listed.output.split(separator: "\n").count == 1, "\(listed.output)")
            let bindings = try RelayProcess.run(["bindings", "list", "--database-url", database.url])
            #expect(bindings.output.contains("order_number=1043 u-7 r-7 "), "\(bindings.output)")
            let printed = try RelayProcess.run(["serve", "--print-config"], environment: environment)
            #expect(printed.output.contains("HAPPYRELAY_DATABASE_URL=postgres://relay:***@127.0.0.1:\(database.port)/postgres"), "\(printed.output)")
            let wrong = try RelayProcess.run(["deliveries", "list", "--database-url", database.url.replacingOccurrences(of: "/postgres", with: "/missing")])
            // The database is named once, redacted.
            #expect(wrong.status == 1 && wrong.output.components(separatedBy: "postgres://relay:***@").count == 2, "\(wrong.output)")
            for text in [empty.output, noBindings.output, copied.output, again.output, relay.log, listed.output, bindings.output, printed.output, wrong.output] {
                #expect(!text.contains(PostgresCluster.password), "the database password leaked: \(text)")
            }
        }
    }

    /// deploy/scale-out/nginx.conf, run by a real nginx in front of two relays on one database:
    /// webhooks are spread over both, and when one is killed nginx passes them to the other; all
    /// that was answered 202 arrives, each room in order.
    @Test(.enabled(if: ReverseProxyRecipeTests.nginx != nil, "nginx is installed by deploy/install-build-deps --tests"))
    func theScaleOutNginxRecipeSpreadsWebhooksAndSkipsADeadRelay() async throws {
        try await offPool {
            let replicas = try Replicas(count: 2)
            let prefix = replicas.folder.path + "/nginx"
            try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
            let port = try ReverseProxyRecipeTests.freePort()
            let recipe = try String(contentsOf: MappingCommandTests.root.appendingPathComponent("deploy/scale-out/nginx.conf"), encoding: .utf8)
            let site = recipe
                .replacingOccurrences(of: "listen 8080;", with: "listen 127.0.0.1:\(port);")
                .replacingOccurrences(of: "server relay-a:8080", with: "server 127.0.0.1:\(replicas.ports[0])")
                .replacingOccurrences(of: "server relay-b:8080", with: "server 127.0.0.1:\(replicas.ports[1])")
            #expect(site.contains("127.0.0.1:\(replicas.ports[0])") && site.contains("127.0.0.1:\(replicas.ports[1])") && site.contains("127.0.0.1:\(port)"))
            try site.write(toFile: prefix + "/site.conf", atomically: false, encoding: .utf8)
            try """
            daemon off;
            pid \(prefix)/nginx.pid;
            error_log stderr crit;
            events {}
            http {
                access_log off;
                client_body_temp_path \(prefix)/body;
                proxy_temp_path \(prefix)/proxy;
                include \(prefix)/site.conf;
            }
            """.write(toFile: prefix + "/nginx.conf", atomically: false, encoding: .utf8)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: ReverseProxyRecipeTests.nginx!)
            server.arguments = ["-p", prefix, "-c", prefix + "/nginx.conf"]
            server.standardError = FileHandle.nullDevice
            try server.run()
            defer {
                server.terminate()
                server.waitUntilExit()
            }
            func post(_ body: String) throws -> RawConnection.Response {
                // nginx may not listen yet on the first request.
                var lastError: (any Error)?
                for _ in 0..<100 {
                    do {
                        let signature = "sha256=" + Sign.hex(Sign.hmac256(Self.secret, body))
                        return try RawConnection.request(
                            port: port, "POST", "/orders", body: body, headers: [("Content-Type", "application/json"), ("X-Hub-Signature-256", signature)])
                    } catch {
                        lastError = error
                        usleep(20_000)
                    }
                }
                throw lastError!
            }
            var accepted: [String: [Int]] = [:]
            var expected: Set<String> = []
            for n in 0..<80 {
                if n == 40 { _ = try replicas.relays[0].stop(signal: SIGKILL) }
                let room = "r-\(n % 4)"
                let answer = try post(#"{"room":"\#(room)","n":"\#(n)"}"#)
                #expect(answer.status == 202, "\(n): \(answer.status) \(answer.text)")
                if answer.status == 202 {
                    accepted[room, default: []].append(n)
                    expected.insert("\(room)#\(n)")
                }
                if n == 39 {
                    // Both relays took a share before one was killed.
                    for index in 0..<2 {
                        let metrics = try replicas.send(index, "/metrics", body: "", method: "GET").text
                        #expect(metrics.contains(#"happyrelay_webhooks_total{route="/orders",outcome="accepted"} "#) && !metrics.contains(#"happyrelay_webhooks_total{route="/orders",outcome="accepted"} 0"#), "replica \(index) took none")
                    }
                }
            }
            let calls = replicas.waitForOrders(expected, timeout: 40)
            #expect(Set(calls.map { "\($0.room)#\($0.n)" }) == expected)
            Self.expectInOrder(calls, accepted: accepted)
        }
    }
}
