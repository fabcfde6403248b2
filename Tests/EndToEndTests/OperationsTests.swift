import Foundation
import RelayStore
import TestSupport
import Testing

/// Running the relay in production: dead letters from the command line, replay without
/// repeating settings, hot reload, request ids, metrics, proxies, systemd readiness.
@Suite struct OperationsTests {
    static let async = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#
    static let sync = #"{ "route": "/sync", "verify": { "scheme": "none" }, "delivery": "sync", "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#

    func cli(_ harness: RelayHarness, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try RelayProcess.run(arguments + ["--data-dir", harness.dataDirectory])
    }

    /// Polls the CLI until `condition` holds for its output (or 20 s pass).
    func waitFor(_ harness: RelayHarness, _ arguments: [String], _ condition: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(20)
        var output = ""
        repeat {
            output = try cli(harness, arguments).output
            if condition(output) { break }
            usleep(50_000)
        } while Date() < deadline
        return output
    }

    @Test func deadLettersAreShownFilteredPagedAndDeleted() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async], mockArguments: ["--room", "r-1"])
            var ids: [String] = []
            for room in ["r-404", "r-405", "r-406"] {
                let accepted = try relay.post("/async", body: #"{"uuid":"u-1","room":"\#(room)"}"#, headers: [("Content-Type", "application/json"), ("X-Hub-Signature", "sig-must-not-be-stored")])
                ids.append(String(accepted.text.split(separator: "\"")[7]))
            }
            _ = try waitFor(relay, ["deliveries", "list", "--state", "dead"]) { $0.split(separator: "\n").count == 3 }

            let shown = try cli(relay, ["deliveries", "show", ids[0]])
            #expect(shown.status == 0)
            #expect(shown.output.contains("state:       dead (HappyTalk refused the call: -503 room)"), "\(shown.output)")
            #expect(shown.output.contains(#"call:        {"uuid":"u-1","room_id":"r-404"} (token added when sent)"#))
            #expect(shown.output.contains("dead: HappyTalk answered -503 room HappyTalk -503 room"))
            #expect(!shown.output.contains("sig-must-not-be-stored") && !shown.output.contains(RelayHarness.token))
            let json = try cli(relay, ["deliveries", "show", ids[0], "--json"])
            #expect(json.output.hasPrefix(#"{"id":"\#(ids[0])","state":"dead","route":"/async""#))
            #expect(try cli(relay, ["deliveries", "show", "0000000000000000"]).status == 1)

            // Pages of one, in order, each naming the next.
            let first = try cli(relay, ["deliveries", "list", "--route", "/async", "--since", "1h", "--limit", "1"])
            #expect(first.output.contains(ids[0]) && !first.output.contains(ids[1]) && first.output.contains("more deliveries follow: --after "), "\(first.output)")
            let cursor = String(first.output.components(separatedBy: "--after ")[1].prefix { $0.isNumber })
            let second = try cli(relay, ["deliveries", "list", "--limit", "1", "--after", cursor])
            #expect(second.output.contains(ids[1]) && !second.output.contains(ids[0]) && !second.output.contains(ids[2]))
            #expect(try cli(relay, ["deliveries", "list", "--route", "/other"]).output.isEmpty)
            let room = try cli(relay, ["deliveries", "list", "--room", "r-405"]).output
            #expect(room.hasPrefix(ids[1]) && room.split(separator: "\n").count == 1, "\(room)")
            #expect(try cli(relay, ["deliveries", "list", "--until", "1h"]).output.isEmpty)
            #expect(try cli(relay, ["deliveries", "list", "--since", "yesterday"]).output.contains("is not an RFC 3339 time"))

            let deleted = try cli(relay, ["deliveries", "delete", ids[0]])
            #expect(deleted.status == 0 && deleted.output == "\(ids[0]): deleted\n")
            #expect(try cli(relay, ["deliveries", "delete", ids[0]]).status == 1)
            // Older than a day: none; older than a second (after one has passed): the other two.
            #expect(try cli(relay, ["deliveries", "delete", "--dead-older-than", "1d"]).output == "deleted 0 dead deliveries\n")
            var purged = 0
            let deadline = Date().addingTimeInterval(20)
            while purged < 2 && Date() < deadline {
                let output = try cli(relay, ["deliveries", "delete", "--dead-older-than", "1s"]).output
                purged += Int(output.split(separator: " ")[1]) ?? 0
            }
            #expect(purged == 2)
            #expect(try cli(relay, ["deliveries", "list"]).output.isEmpty)
            let metrics = try relay.get("/metrics").text
            #expect(metrics.contains("happyrelay_dead_letters 0"))
        }
    }

    @Test func deadRetentionPurgesDeadDeliveriesAndTheMetricsCountThemByRoute() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async], mockArguments: ["--room", "r-1"], relayArguments: ["--dead-retention", "1s"])
            #expect(try relay.post("/async", body: #"{"uuid":"u-1","room":"r-404"}"#).status == 202)
            _ = try waitFor(relay, ["deliveries", "list", "--state", "dead"]) { !$0.isEmpty }
            #expect(try relay.get("/metrics").text.contains(#"happyrelay_dead_letters_by_route{route="/async"} 1"#))
            // The relay purges at start and every minute: a restart after the retention purges it.
            usleep(1_100_000)
            try relay.restartRelay()
            let log = relay.relay.waitForLog { $0.contains("deleted dead deliveries past --dead-retention") }
            #expect(log.contains(#""msg":"deleted dead deliveries past --dead-retention","count":1"#), "\(log)")
            #expect(try cli(relay, ["deliveries", "list"]).output.isEmpty)
        }
    }

    @Test func retryNowSendsAPendingDeliveryWithoutWaitingForItsBackoff() async throws {
        try await offPool {
            // HappyTalk answers 503 with Retry-After: an hour, which the relay honours: only
            // `retry` can make the delivery go soon. (A stopped mock left the next try to the
            // backoff's random jitter, which did not always reach 8 s within the wait.)
            let relay = try RelayHarness(
                mappings: ["async.json": Self.async], mockArguments: ["--fail-status", "503", "--retry-after", "3600"],
                relayArguments: ["--retry-max-delay", "3600"])
            let accepted = try relay.post("/async", body: #"{"uuid":"u-1","room":"r-1"}"#)
            let id = String(accepted.text.split(separator: "\"")[7])
            // Wait until the next attempt (full jitter, doubling) is at least 8 s off.
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            var nextTry = Date()
            _ = try waitFor(relay, ["deliveries", "show", id]) { output in
                guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("next try:") }),
                    let date = formatter.date(from: String(line.dropFirst("next try:".count)).trimmingCharacters(in: .whitespaces))
                else { return false }
                nextTry = date
                return date.timeIntervalSinceNow > 8
            }
            #expect(nextTry.timeIntervalSinceNow > 5)
            try relay.restartMock(arguments: [])
            let retried = try cli(relay, ["deliveries", "retry", id])
            #expect(retried == (0, "\(id): due now\n"))
            #expect(relay.waitForCalls(1, timeout: 10) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1"}"#])
            #expect(Date() < nextTry)
            let after = try waitFor(relay, ["deliveries", "retry", id]) { $0.contains("delivered") }
            #expect(after == "\(id): delivered, not pending\n")
            // The history: the failed attempts, then the one that delivered it.
            let shown = try cli(relay, ["deliveries", "show", id]).output
            let history = shown.split(separator: "\n").filter { $0.hasPrefix("  #") }
            #expect(history.count >= 2 && history.dropLast().allSatisfy { $0.contains(" retry: ") && $0.contains("503") }, "\(shown)")
            #expect(history.last?.contains(" delivered: delivered HTTP 200") == true, "\(shown)")
            #expect(try cli(relay, ["deliveries", "retry", "0000000000000000"]).status == 1)
        }
    }

    @Test func replayWithoutMappingsUsesTheServingRelaysFolderAndAsStoredResendsTheCall() async throws {
        try await offPool {
            let failing = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "parameter1": { "path": "$.body.missing", "required": true } } } ] }"#
            let relay = try RelayHarness(mappings: ["async.json": Self.async, "failing.json": failing.replacingOccurrences(of: "/async", with: "/failing")], mockArguments: ["--room", "r-1"])
            let refused = try relay.post("/async", body: #"{"uuid":"u-1","room":"r-2"}"#)
            let refusedID = String(refused.text.split(separator: "\"")[7])
            let unmapped = try relay.post("/failing", body: #"{"uuid":"u-1","room":"r-1"}"#)
            #expect(unmapped.status == 202)
            _ = try waitFor(relay, ["deliveries", "list", "--state", "dead"]) { $0.split(separator: "\n").count == 2 }
            // HappyTalk now knows room r-2: the stored call is sent again as it was.
            try relay.restartMock(arguments: ["--room", "r-2"])
            let asStored = try cli(relay, ["deliveries", "replay", "--all-dead", "--as-stored"])
            #expect(asStored.status == 1)
            #expect(asStored.output.contains("\(refusedID): replayed as stored"))
            #expect(asStored.output.contains("still dead: its mapping failed, so no call was stored; replay it without --as-stored"))
            #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-2"}"#])
            // From another working directory, without --mappings: the relay's folder is used.
            let fixed = failing.replacingOccurrences(of: "/async", with: "/failing").replacingOccurrences(of: #""required": true"#, with: #""default": "p""#)
            try fixed.write(to: relay.directory.appendingPathComponent("mappings/failing.json"), atomically: false, encoding: .utf8)
            let replayed = try RelayProcess.run(["deliveries", "replay", "--all-dead", "--data-dir", relay.dataDirectory], workingDirectory: "/")
            #expect(replayed.status == 0, "\(replayed.output)")
            #expect(replayed.output.hasPrefix("re-mapping with \(relay.directory.appendingPathComponent("mappings").standardizedFileURL.path) (the relay serving this data directory loaded it)"), "\(replayed.output)")
        }
    }

    @Test func sighupReloadsTheMappingsAndABrokenSetIsRefusedWhole() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["sync.json": Self.sync], mockArguments: ["--latency", "700"])
            let folder = relay.directory.appendingPathComponent("mappings")
            // A request in flight when the reload happens finishes with the routes it started with.
            let inFlight = try RawConnection(port: relay.relayPort, timeout: 10)
            let body = RelayHarness.body
            try inFlight.send("POST /sync HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            // In flight for sure before the reload: the relay has routed it and opened its
            // connection to the mock (which answers 700 ms later). Sent bytes alone were not
            // enough on a loaded machine: the reload could land before the relay read them.
            let routed = Date().addingTimeInterval(10)
            while try !relay.get("/metrics").text.contains("happyrelay_upstream_connections_opened_total 1"), Date() < routed { usleep(5_000) }
            try FileManager.default.removeItem(at: folder.appendingPathComponent("sync.json"))
            try Self.async.write(to: folder.appendingPathComponent("async.json"), atomically: false, encoding: .utf8)
            kill(relay.relay.process.processIdentifier, SIGHUP)
            let log = relay.relay.waitForLog { $0.contains("reloaded mappings") }
            #expect(log.contains(#""msg":"reloaded mappings","trigger":"SIGHUP","generation":2"#), "\(log)")
            #expect(try inFlight.readResponse().status == 200)
            #expect(try relay.post("/sync", body: body).status == 404)
            #expect(try relay.post("/async", body: body).status == 202)
            #expect(try relay.get("/metrics").text.contains("happyrelay_mappings_generation 2"))

            // A set with an error: refused whole, every error logged, the old set kept.
            try #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid" } } ] }"#
                .write(to: folder.appendingPathComponent("async.json"), atomically: false, encoding: .utf8)
            kill(relay.relay.process.processIdentifier, SIGHUP)
            let refused = relay.relay.waitForLog { $0.contains("the previous mappings stay in service") }
            #expect(refused.contains(#""msg":"reload refused: the mappings have an error","trigger":"SIGHUP","error":""#), "\(refused)")
            #expect(refused.contains(#""msg":"reload refused: the previous mappings stay in service","trigger":"SIGHUP","generation":2,"errors":1"#))
            #expect(relay.relay.process.isRunning)
            #expect(try relay.post("/async", body: body).status == 202)
            let metrics = try relay.get("/metrics").text
            #expect(metrics.contains("happyrelay_mappings_generation 2") && metrics.contains("happyrelay_mappings_reload_failures_total 1"))
        }
    }

    @Test func theAdminReloadAnswersTheErrors() async throws {
        try await offPool {
            let admin = "adm1n-Tok3n-Reload-77"
            let relay = try RelayHarness(mappings: ["async.json": Self.async], environment: ["HAPPYRELAY_ADMIN_TOKEN": admin])
            try #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid" } } ] }"#
                .write(to: relay.directory.appendingPathComponent("mappings/async.json"), atomically: false, encoding: .utf8)
            let refused = try relay.post("/admin/reload", body: "", headers: [("Authorization", "Bearer \(admin)")])
            #expect(refused.status == 422)
            #expect(refused.text.hasPrefix(#"{"result":"fail","error":"invalid_mappings","message":"the reload had errors; generation 1 is served","errors":[""#), "\(refused.text)")
            #expect(refused.text.contains("room_id"))
        }
    }

    @Test func requestIDsAreHonouredOrMadeAndReturnedOnEveryAnswer() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async])
            let given = try relay.post("/async", body: RelayHarness.body, headers: [("Content-Type", "application/json"), ("X-Request-Id", "shop-req-42")])
            #expect(given.header("x-request-id") == "shop-req-42")
            let deliveryID = String(given.text.split(separator: "\"")[7])
            let line = relay.relay.waitForLog { $0.contains(#""request_id":"shop-req-42""#) }
            #expect(line.contains(#""status":202,"duration_ms":"#) && line.contains(#""request_id":"shop-req-42","delivery.id":"\#(deliveryID)""#), "\(line)")
            // An id that is not a safe token is replaced, never echoed.
            let unsafe = try relay.post("/async", body: RelayHarness.body, headers: [("Content-Type", "application/json"), ("X-Request-Id", "a b\"<script>")])
            let made = try #require(unsafe.header("x-request-id"))
            #expect(made.count == 24 && made.allSatisfy(\.isHexDigit))
            let tooLong = try relay.post("/async", body: RelayHarness.body, headers: [("Content-Type", "application/json"), ("X-Request-Id", String(repeating: "a", count: 129))])
            #expect(tooLong.header("x-request-id")?.count == 24)
            // Answers no route gives carry one too, and are counted and logged at debug.
            let missing = try relay.get("/nowhere")
            #expect(missing.status == 404 && missing.header("x-request-id")?.count == 24)
            #expect(try relay.post("/async", body: "", method: "GET").status == 405)
            let metrics = try relay.get("/metrics")
            #expect(metrics.header("x-request-id") != nil)
            #expect(metrics.text.contains(#"happyrelay_http_unrouted_total{status="404"} 1"#))
            #expect(metrics.text.contains(#"happyrelay_http_unrouted_total{status="405"} 1"#))
            let debug = relay.relay.waitForLog { $0.contains(#""msg":"no route","method":"GET","path":"/nowhere""#) }
            #expect(debug.contains(#""level":"debug","msg":"no route","method":"GET","path":"/nowhere","status":404"#))
        }
    }

    @Test func processMetricsDescribeTheRunningRelay() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async])
            let text = try relay.get("/metrics").text
            func value(_ name: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
            }
            #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((value("process_open_fds") ?? 0) >= 5)
            #expect((value("process_max_fds") ?? 0) >= (value("process_open_fds") ?? 0))
            #expect(value("process_cpu_seconds_total") != nil)
            let started = value("process_start_time_seconds") ?? 0
            #expect(abs(started - Date().timeIntervalSince1970) < 120, "\(started)")
        }
    }

    @Test func allowIPsSeeTheClientForwardedByATrustedProxyOnly() async throws {
        try await offPool {
            let mapping = #"{ "route": "/shop", "verify": { "scheme": "none", "allow_ips": ["203.0.113.0/24"] }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#
            let direct = try RelayHarness(mappings: ["shop.json": mapping])
            let forwarded = [("Content-Type", "application/json"), ("X-Forwarded-For", "203.0.113.9")]
            // Not trusted: the peer (127.0.0.1) is the client, whatever the header says.
            #expect(try direct.post("/shop", body: RelayHarness.body, headers: forwarded).status == 403)
            let proxied = try RelayHarness(mappings: ["shop.json": mapping], relayArguments: ["--trusted-proxies", "127.0.0.1/32,10.0.0.0/8"])
            #expect(try proxied.post("/shop", body: RelayHarness.body, headers: forwarded).status == 202)
            // The nearest untrusted hop counts: a client cannot prepend an allowed address.
            let spoofed = [("Content-Type", "application/json"), ("X-Forwarded-For", "203.0.113.9, 198.51.100.7, 10.1.2.3")]
            #expect(try proxied.post("/shop", body: RelayHarness.body, headers: spoofed).status == 403)
            let rfc7239 = [("Content-Type", "application/json"), ("Forwarded", #"for="203.0.113.10:4711";proto=https"#)]
            #expect(try proxied.post("/shop", body: RelayHarness.body, headers: rfc7239).status == 202)
        }
    }

    @Test func systemdIsToldWhenTheRelayIsReadyReloadingAndStopping() async throws {
        try await offPool {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            defer {
                close(fd)
                unlink(path)
            }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(bound == 0)
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            func receive() -> String {
                var buffer = [UInt8](repeating: 0, count: 512)
                let count = recv(fd, &buffer, buffer.count, 0)
                return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
            }
            let relay = try RelayHarness(mappings: ["async.json": Self.async], environment: ["NOTIFY_SOCKET": path])
            #expect(receive().hasPrefix("READY=1\nSTATUS=listening on 127.0.0.1:\(relay.relayPort)"))
            kill(relay.relay.process.processIdentifier, SIGHUP)
            let reloading = receive()
            #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), "\(reloading) \(relay.relay.log)")
            #expect(receive() == "READY=1")
            _ = try relay.relay.stop()
            #expect(receive() == "STOPPING=1")
        }
    }

    /// The admin API's work runs on threads of its own, and /metrics on another: an operator's
    /// change can wait seconds for SQLite's write lock (another process holds it) or replay
    /// thousands of dead letters. While as many admin changes wait as the machine has cores
    /// (as many as Swift's cooperative pool has threads), /metrics still answers at once.
    @Test func metricsAnswerWhileAdminChangesWaitForTheQueue() async throws {
        try await offPool {
            let token = "0perator-T0ken-Qq7"
            let relay = try RelayHarness(mappings: ["async.json": Self.async], environment: ["HAPPYRELAY_ADMIN_TOKEN": token])
            let database = try SQLiteDatabase(path: SQLiteSchema.path(in: relay.dataDirectory))
            // Each admin change opens the queue as it starts: its descriptors tell when two are
            // under way (as many as the admin threads; as many as the pool's on two cores).
            let descriptors = "/proc/\(relay.relay.process.processIdentifier)/fd"
            func openQueues() -> Int {
                ((try? FileManager.default.contentsOfDirectory(atPath: descriptors)) ?? []).filter {
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(descriptors)/\($0)"))?.hasSuffix("/\(SQLiteSchema.fileName)") == true
                }.count
            }
            let before = openQueues()
            try database.execute("BEGIN IMMEDIATE")
            let waiting = try (0..<max(2, ProcessInfo.processInfo.activeProcessorCount)).map { _ in
                let connection = try RawConnection(port: relay.relayPort, timeout: 20)
                try connection.send(
                    "DELETE /admin/deliveries?dead_older_than=1d HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer \(token)\r\nContent-Length: 0\r\n\r\n")
                return connection
            }
            let deadline = Date().addingTimeInterval(3)
            while openQueues() < before + 2 && Date() < deadline { usleep(1000) }
            #expect(openQueues() >= before + 2, "the admin changes did not start")
            // Well within the 5 s the admin changes wait for the lock before they give up.
            let metrics = try RawConnection.request(port: relay.relayPort, "GET", "/metrics", timeout: 3)
            #expect(metrics.status == 200 && metrics.text.contains("happyrelay_queue_pending 0"))
            #expect(waiting.allSatisfy { !$0.hasBytesWithin(0) }, "an admin change answered while the lock was held")
            try database.execute("ROLLBACK")
            for connection in waiting {
                let answer = try connection.readResponse()
                #expect(answer.status == 200 && answer.text == #"{"result":"deleted","count":0}"#, "\(answer.status) \(answer.text)")
            }
        }
    }

    @Test func theHealthCheckFollowsTheListenSetting() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async])
            let healthy = try RelayProcess.run(["healthcheck"], environment: ["HAPPYRELAY_LISTEN": "127.0.0.1:\(relay.relayPort)"])
            #expect(healthy.status == 0, "\(healthy.output)")
            _ = try relay.relay.stop()
            let down = try RelayProcess.run(["healthcheck", "--listen", "127.0.0.1:\(relay.relayPort)"])
            #expect(down.status == 1 && down.output.contains("happyrelay healthcheck: 127.0.0.1:\(relay.relayPort): Connection refused"), "\(down.output)")
        }
    }

    @Test func everyCommandHasHelp() async throws {
        try await offPool {
            for arguments in [["serve", "-h"], ["help", "serve"], ["serve", "--help"]] {
                let help = try RelayProcess.run(arguments)
                #expect(help.status == 0)
                #expect(help.output.hasPrefix("usage: happyrelay serve [options]") && help.output.contains("--dead-retention DURATION"), "\(arguments)")
            }
            for (arguments, usage) in [
                (["help", "deliveries", "show"], "usage: happyrelay deliveries show ID [--json] [--data-dir DIR | --database-url URL]"),
                (["deliveries", "delete", "-h"], "usage: happyrelay deliveries delete (ID | --dead-older-than DURATION) [--data-dir DIR | --database-url URL]"),
                (["bindings", "list", "--help"], "usage: happyrelay bindings list [--key KIND=VALUE] [--json] [--data-dir DIR | --database-url URL]"),
                (["check", "-h"], "usage: happyrelay check [--mappings DIR] [DIR|FILE]..."),
                (["help", "mock-upstream"], "usage: happyrelay mock-upstream [options]"),
                (["store", "copy", "-h"], "usage: happyrelay store copy --from-data-dir DIR --to URL"),
            ] {
                let help = try RelayProcess.run(arguments)
                #expect(help.status == 0 && help.output.hasPrefix(usage), "\(arguments): \(help.output)")
            }
            let actions = try RelayProcess.run(["help", "deliveries"])
            #expect(actions.output.contains("usage: happyrelay deliveries retry ID [--data-dir DIR | --database-url URL]"))
            #expect(try RelayProcess.run(["help", "nothing"]).status == 2)
        }
    }
}
