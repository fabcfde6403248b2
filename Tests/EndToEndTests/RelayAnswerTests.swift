import Foundation
import TestSupport
import Testing

@testable import RelayCore

/// Every answer of docs/interface.md ("Answers to a webhook") from the real binaries.
@Suite struct RelayAnswerTests {
    static let mappings: [String: String] = [
        "sync.json": """
            { "route": "/sync", "verify": { "scheme": "none" }, "delivery": "sync", "timeout": "700ms",
              "dedupe": { "key": "$.headers['x-event-id']", "window": "1h" },
              "rules": [ { "name": "order", "when": { "path": "$.body.kind", "equals": "order" },
                           "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "order_number": "$.body.order", "phone": { "path": "$.body.phone", "pipe": ["phone_kr"] } } } ] }
            """,
        "form.json": """
            { "route": "/form", "verify": { "scheme": "none" }, "delivery": "sync", "accept": ["json", "form"],
              "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }
            """,
        "all.json": """
            { "route": "/all", "verify": { "scheme": "none" }, "delivery": "sync", "mode": "all",
              "rules": [ { "name": "parcel", "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "parcel_number": "$.body.parcel" } },
                         { "name": "next", "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "scenario_next": "Y" } } ] }
            """,
    ]

    static let order = #"{"kind":"order","uuid":"u-1","room":"r-1","order":820982911946154508,"phone":"+82 10-1234-5678"}"#

    @Test func answersFollowTheInterface() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: Self.mappings, mockArguments: ["--room", "r-1", "--room", "r-2"])
            let success = try relay.post("/sync", body: Self.order, headers: [("Content-Type", "application/json"), ("X-Event-Id", "e-1")])
            #expect(success.status == 200)
            #expect(success.text == #"{"result":"success"}"#)
            #expect(relay.recordedCalls == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1","order_number":"820982911946154508","phone":"01012345678"}"#])

            let duplicate = try relay.post("/sync", body: Self.order, headers: [("Content-Type", "application/json"), ("X-Event-Id", "e-1")])
            #expect(duplicate.status == 200)
            #expect(duplicate.text.hasPrefix(#"{"result":"duplicate","id":""#))
            #expect(relay.recordedCalls.count == 1)

            let ignored = try relay.post("/sync", body: #"{"kind":"refund"}"#)
            #expect(ignored.status == 200)
            #expect(ignored.text == #"{"result":"ignored","reason":"no rule matched"}"#)

            let invalid = try relay.post("/sync", body: #"{"kind":"order","room":"r-1"}"#)
            #expect(invalid.status == 422)
            #expect(invalid.text == #"{"result":"fail","error":"mapping_failed","message":"uuid: $.body.uuid is empty"}"#)

            let upstreamFail = try relay.post("/sync", body: #"{"kind":"order","uuid":"u-1","room":"r-404"}"#)
            #expect(upstreamFail.status == 502)
            #expect(upstreamFail.text == #"{"result":"fail","code":-503,"message":"room"}"#)

            let badJSON = try relay.post("/sync", body: #"{"kind":"#)
            #expect(badJSON.status == 400)
            #expect(badJSON.text == #"{"result":"fail","error":"invalid_json","message":"body is not valid JSON: unexpected end of input at line 1, column 9"}"#)

            let xml = try relay.post("/sync", body: "<order/>", headers: [("Content-Type", "application/xml")])
            #expect(xml.status == 415)
            #expect(xml.text.contains(#""error":"unsupported_media_type""#))

            let form = try relay.post("/form", body: "uuid=u-2&room=r-2", headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(form.status == 200)

            let noContentType = try relay.post("/form", body: #"{"uuid":"u-3","room":"r-1"}"#, headers: [])
            #expect(noContentType.status == 200)

            let all = try relay.post("/all", body: #"{"uuid":"u-4","room":"r-1","parcel":"555"}"#)
            #expect(all.status == 200)

            let notFound = try relay.post("/nowhere", body: "{}")
            #expect(notFound.status == 404)
            #expect(notFound.text.hasPrefix(#"{"result":"fail","error":"not_found""#))

            let wrongMethod = try relay.post("/sync", body: "", method: "GET")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("allow") == "POST")

            let tooLarge = try relay.post("/sync", body: String(repeating: "x", count: 2_000_000))
            #expect(tooLarge.status == 413)

            #expect(relay.recordedCalls.suffix(4) == [
                #"{"token":"\#(RelayHarness.token)","uuid":"u-2","room_id":"r-2"}"#,
                #"{"token":"\#(RelayHarness.token)","uuid":"u-3","room_id":"r-1"}"#,
                #"{"token":"\#(RelayHarness.token)","uuid":"u-4","room_id":"r-1","parcel_number":"555"}"#,
                #"{"token":"\#(RelayHarness.token)","uuid":"u-4","room_id":"r-1","scenario_next":"Y"}"#,
            ])
            // One log line per webhook, with its route, outcome, status and request id.
            let webhookLines = { (log: String) in log.split(separator: "\n").filter { $0.contains(#""msg":"webhook""#) } }
            let lines = webhookLines(relay.relay.waitForLog { webhookLines($0).count >= 10 })
            // 404, 405 and 413 are answered by the HTTP layer before any route sees them.
            #expect(lines.count == 10)
            #expect(lines.first?.contains(#""route":"/sync","rule":"order","outcome":"accepted","status":200"#) == true)
        }
    }

    @Test func upstreamTimeoutIs504() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: Self.mappings, mockArguments: ["--latency", "3000"])
            let started = Date()
            let response = try relay.post("/sync", body: Self.order)
            #expect(response.status == 504)
            #expect(response.text.contains(#""error":"upstream_timeout""#))
            #expect(Date().timeIntervalSince(started) < 2.5)
        }
    }

    @Test func unreachableUpstreamIs502() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: Self.mappings)
            try relay.stopMock()
            let response = try relay.post("/sync", body: Self.order)
            #expect(response.status == 502)
            // What failed stays in the log; the sender gets a stable error.
            #expect(response.text == #"{"result":"fail","error":"upstream_unreachable","message":"HappyTalk could not be reached"}"#)
            let logged = relay.relay.waitForLog { $0.contains("cannot connect") }
            #expect(logged.contains(#""msg":"HappyTalk could not be reached""#) && logged.contains("cannot connect"))
        }
    }

    @Test func upstream5xxIs502AndCredentialFailuresRaiseAnAlarm() async throws {
        try await offPool {
            let failing = try RelayHarness(mappings: Self.mappings, mockArguments: ["--fail-status", "503"])
            let response = try failing.post("/sync", body: Self.order)
            #expect(response.status == 502)
            #expect(response.text == #"{"result":"fail","error":"upstream_unavailable","message":"HappyTalk answered HTTP 503"}"#)
        }
        try await offPool {
            let wrongToken = try RelayHarness(mappings: Self.mappings, environment: ["HAPPYTALK_TOKEN": "not-the-token"], withToken: false)
            let response = try wrongToken.post("/sync", body: Self.order)
            #expect(response.status == 502)
            #expect(response.text == #"{"result":"fail","code":-501,"message":"token"}"#)
            let alarm = #""level":"error","msg":"HappyTalk refused the relay's credential: check the token""#
            #expect(wrongToken.relay.waitForLog { $0.contains(alarm) }.contains(alarm))
        }
    }

    @Test func dryRunSendsNothing() async throws {
        try await offPool {
            let mappings = Self.mappings.merging(["signed.json": RelayHarness.route("/signed", verify: #"{ "scheme": "github", "secret": { "env": "UNSET_SECRET" } }"#)]) { $1 }
            let relay = try RelayHarness(mappings: mappings, withToken: false)
            #expect(relay.relay.log.contains("DRY RUN: nothing is sent to HappyTalk"))
            #expect(relay.relay.log.contains(#""msg":"serving route without verification (dry run: its secret is not set)","route":"/signed""#))
            let response = try relay.post("/sync", body: Self.order)
            #expect(response.status == 200)
            #expect(response.text == #"{"result":"success","dry_run":true}"#)
            let unverified = try relay.post("/signed", body: RelayHarness.body)
            #expect(unverified.text == #"{"result":"success","dry_run":true,"verified":false}"#)
            #expect(relay.relay.waitForLog { $0.contains("dry run: would send") }.contains("dry run: would send"))
            #expect(relay.recordedCalls.isEmpty)
        }
    }

    @Test func asyncRoutesAnswer202AfterTheCommitAndDeliver() async throws {
        let mappings = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#]
        try await offPool {
            let relay = try RelayHarness(mappings: mappings)
            let response = try relay.post("/async", body: RelayHarness.body)
            #expect(response.status == 202)
            #expect(response.text.hasPrefix(#"{"result":"accepted","id":""#))
            #expect(relay.waitForCalls(1) == [RelayHarness.expectedCall])
            let failed = try relay.post("/async", body: #"{"room":"r-1"}"#)
            #expect(failed.status == 202)
            #expect(failed.text.hasPrefix(#"{"result":"fail","error":"mapping_failed","message":"uuid: $.body.uuid is empty","id":""#))
        }
        try await offPool {
            let dry = try RelayHarness(mappings: mappings, withToken: false)
            let response = try dry.post("/async", body: RelayHarness.body)
            #expect(response.status == 202)
            #expect(response.text.hasPrefix(#"{"result":"accepted","id":""#))
            #expect(response.text.hasSuffix(#","dry_run":true}"#))
        }
    }

    /// An async route whose parcel number tells the calls apart.
    static let numbered = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "parcel_number": "$.body.n" } } ] }"#]

    @Test func outageThenRecoveryDeliversEverythingWithEachRoomInOrder() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: Self.numbered)
            try relay.stopMock()
            for index in 0..<50 {
                #expect(try relay.post("/async", body: #"{"uuid":"u-1","room":"r-one","n":"\#(index)"}"#).status == 202)
                #expect(try relay.post("/async", body: #"{"uuid":"u-2","room":"r-\#(index)","n":"\#(index)"}"#).status == 202)
            }
            try relay.restartMock()
            let calls = relay.waitForCalls(100, timeout: 60)
            #expect(calls.count == 100)
            let roomOne = calls.filter { $0.contains(#""room_id":"r-one""#) }
            #expect(roomOne == (0..<50).map { #"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-one","parcel_number":"\#($0)"}"# })
        }
    }

    @Test func pendingDeliveriesResumeAfterARestart() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: Self.numbered)
            try relay.stopMock()
            for index in 0..<5 {
                #expect(try relay.post("/async", body: #"{"uuid":"u-1","room":"r-1","n":"\#(index)"}"#).status == 202)
            }
            try relay.restartRelay()
            #expect(relay.recordedCalls.isEmpty)
            try relay.restartMock()
            let calls = relay.waitForCalls(5, timeout: 60)
            #expect(calls == (0..<5).map { #"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1","parcel_number":"\#($0)"}"# })
            // The queue file never holds the token.
            let queueFile = relay.directory.appendingPathComponent("data/happyrelay.sqlite").path
            for suffix in ["", "-wal"] {
                let bytes = FileManager.default.contents(atPath: queueFile + suffix) ?? Data()
                #expect(!String(decoding: bytes, as: UTF8.self).contains(RelayHarness.token))
            }
        }
    }

    /// An order from a customer who never chatted: answered ignored with the rule's reason,
    /// counted, logged at info with the reason, never stored dead and never sent.
    @Test func anOrderWithoutAChatUserIsIgnoredNotDead() async throws {
        let mappings = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "ignore_without": { "fields": ["uuid", "room_id"], "reason": "no chat user for this order" }, "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "order_number": "$.body.order" } } ] }"#]
        try await offPool {
            let relay = try RelayHarness(mappings: mappings)
            let answer = try relay.post("/async", body: #"{"order": 1044}"#)
            #expect(answer.status == 200)
            #expect(answer.text == #"{"result":"ignored","reason":"no chat user for this order"}"#)
            let logged = relay.relay.waitForLog { $0.contains(#""outcome":"ignored""#) }
            #expect(logged.contains(#""reason":"no chat user for this order""#))
            let metrics = try relay.get("/metrics").text
            #expect(metrics.contains(#"happyrelay_webhooks_total{route="/async",outcome="ignored"} 1"#))
            #expect(metrics.contains("happyrelay_dead_letters 0"))
            #expect(relay.recordedCalls.isEmpty)
        }
    }

    /// HappyTalk down: after failures in a row, one delivery at a time probes it instead of
    /// every room's head failing at its own backoff; when it answers, every room goes at once.
    @Test func aDownUpstreamIsProbedNotHammered() async throws {
        let mappings = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.headers['x-room']" } } ] }"#]
        try await offPool {
            let relay = try RelayHarness(mappings: mappings, mockArguments: ["--fail-status", "503"])
            for room in 0..<40 {
                let answer = try relay.post("/async", body: RelayHarness.body, headers: [("Content-Type", "application/json"), ("X-Room", "r-\(room)")])
                #expect(answer.status == 202)
            }
            func retried() throws -> Int {
                let line = try relay.get("/metrics").text.split(separator: "\n").first { $0.hasPrefix("happyrelay_deliveries_total{") && $0.contains(#"outcome="retried""#) }
                return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            }
            let log = relay.relay.waitForLog { $0.contains("HappyTalk looks down") }
            #expect(log.contains("HappyTalk looks down"))
            // Three seconds of probing at most once a second (the harness caps backoff at 1 s):
            // without it, 40 rooms' heads would fail about 120 times.
            let before = try retried()
            let started = Date()
            while Date().timeIntervalSince(started) < 3 { _ = relay.relay.waitForLog(timeout: 0.5) { _ in false } }
            #expect(try retried() - before <= 5)
            try relay.restartMock(arguments: [])
            #expect(relay.waitForCalls(40, timeout: 20).count == 40)
            #expect(relay.relay.waitForLog { $0.contains("HappyTalk answers again") }.contains("HappyTalk answers again"))
        }
    }

    @Test func aFullQueueAnswers503AndReadinessSaysWhy() async throws {
        let mappings = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#]
        try await offPool {
            let relay = try RelayHarness(mappings: mappings, relayArguments: ["--queue-limit", "2"])
            try relay.stopMock()
            #expect(try relay.post("/async", body: RelayHarness.body).status == 202)
            #expect(try relay.post("/async", body: RelayHarness.body).status == 202)
            let full = try relay.post("/async", body: RelayHarness.body)
            #expect(full.status == 503)
            #expect(full.text == #"{"result":"fail","error":"unavailable","message":"the queue is full; retry later"}"#)
            let ready = try relay.post("/readyz", body: "", method: "GET")
            #expect(ready.status == 503)
            #expect(ready.text == #"{"status":"unavailable","reason":"the queue is full (2 pending)"}"#)
            try relay.restartMock()
            relay.waitForCalls(2)
            #expect(relay.recordedCalls.count == 2)
        }
    }

    @Test func dedupeOutlivesARestartAndAFailureIsNotRemembered() async throws {
        let mappings = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "dedupe": { "key": "$.headers['x-event-id']", "window": "1h" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#]
        try await offPool {
            let relay = try RelayHarness(mappings: mappings)
            let first = try relay.post("/async", body: RelayHarness.body, headers: [("Content-Type", "application/json"), ("X-Event-Id", "evt-1")])
            #expect(first.status == 202)
            let id = first.text.split(separator: "\"")[7]
            try relay.restartRelay()
            let again = try relay.post("/async", body: RelayHarness.body, headers: [("Content-Type", "application/json"), ("X-Event-Id", "evt-1")])
            #expect(again.status == 200)
            #expect(again.text == #"{"result":"duplicate","id":"\#(id)"}"#)
            // A webhook whose mapping failed is not remembered: the sender may send it again, fixed.
            let broken = try relay.post("/async", body: #"{"room":"r-1"}"#, headers: [("Content-Type", "application/json"), ("X-Event-Id", "evt-2")])
            #expect(broken.status == 202)
            let retried = try relay.post("/async", body: RelayHarness.body, headers: [("Content-Type", "application/json"), ("X-Event-Id", "evt-2")])
            #expect(retried.text.hasPrefix(#"{"result":"accepted""#))
        }
    }

    @Test func upstreamRateLimitsSendsPerSecond() async throws {
        let mappings = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#]
        try await offPool {
            let relay = try RelayHarness(mappings: mappings, relayArguments: ["--upstream-rate", "4"])
            let started = Date()
            for index in 0..<10 {
                #expect(try relay.post("/async", body: #"{"uuid":"u-1","room":"r-\#(index)"}"#).status == 202)
            }
            #expect(relay.waitForCalls(10).count == 10)
            // At most 4 sends in any clock second: 10 need three seconds, so more than one second passes
            // (unlimited, they take a few milliseconds).
            #expect(Date().timeIntervalSince(started) > 1.0)
        }
    }

    @Test func anUnwritableQueueAnswers503AndNothingAcceptedIsLost() async throws {
        let mappings = ["async.json": #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "parameter1": "$.body.n" } } ] }"#]
        try await offPool {
            let relay = try RelayHarness(mappings: mappings, relayArguments: ["--queue-max-bytes", "131072"])
            try relay.stopMock()
            let padding = String(repeating: "x", count: 4000)
            var accepted: [String] = []
            var refusal: RawConnection.Response?
            for index in 0..<200 {
                let response = try relay.post("/async", body: #"{"uuid":"u-1","room":"r-\#(index)","n":"\#(index)","pad":"\#(padding)"}"#)
                if response.status == 202 { accepted.append("\(index)") } else { refusal = response; break }
            }
            let refused = try #require(refusal)
            #expect(refused.status == 503)
            #expect(refused.text.hasPrefix(#"{"result":"fail","error":"unavailable","message":"#))
            let ready = try relay.post("/readyz", body: "", method: "GET")
            #expect(ready.status == 503)
            #expect(ready.text == #"{"status":"unavailable","reason":"the queue database is full"}"#)
            #expect(!accepted.isEmpty)
            try relay.restartMock()
            let calls = relay.waitForCalls(accepted.count)
            #expect(Set(calls.compactMap { $0.split(separator: "\"").dropLast().last.map(String.init) }) == Set(accepted))
        }
    }

    /// `serve` run to its end with one Shopify-signed route, whose secrets are `secrets`, in
    /// `folder` (which also holds its data directory).
    static func serveSignedRoute(
        in folder: URL, secrets: String = #""secret": { "env": "SHOP_SECRET" }"#, arguments: [String] = [], environment: [String: String]
    ) async throws -> (status: Int32, output: String) {
        try RelayHarness.route("/signed", verify: #"{ "scheme": "shopify", \#(secrets) }"#)
            .write(to: folder.appendingPathComponent("shop.json"), atomically: false, encoding: .utf8)
        return try await offPool {
            try RelayProcess.run(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path, "--data-dir", folder.appendingPathComponent("data").path] + arguments,
                environment: environment)
        }
    }

    @Test func aMissingSecretStopsStartUpWhenATokenIsSet() async throws {
        let temporary = TemporaryFolder()
        defer { withExtendedLifetime(temporary) {} }
        let result = try await Self.serveSignedRoute(in: temporary.url, environment: ["HAPPYTALK_TOKEN": "t"])
        #expect(result.status == 1)
        #expect(result.output.contains("shop.json: /verify/secret: environment variable SHOP_SECRET (or SHOP_SECRET_FILE) is not set"))
        #expect(!result.output.contains("listening on"))
    }

    /// A libcrypto that refuses the secret as an HMAC key would have every webhook rejected
    /// 401; the relay refuses to start instead, naming the secret (here the second of a
    /// rotation, after one that is not set). Simulated with OpenSSL's configuration: a library
    /// whose algorithms must come from a FIPS provider, with none loaded, refuses every key
    /// (and cannot make a TLS context, which an http upstream does not need).
    @Test func aSecretLibcryptoRefusesStopsStartUp() async throws {
        let temporary = TemporaryFolder()
        defer { withExtendedLifetime(temporary) {} }
        let folder = temporary.url
        let configuration = folder.appendingPathComponent("openssl.cnf")
        try """
            openssl_conf = openssl_init
            [openssl_init]
            alg_section = algorithms
            [algorithms]
            default_properties = fips=yes
            """.write(to: configuration, atomically: false, encoding: .utf8)
        let secret = "Shop-s3cret-Qq1"
        let result = try await Self.serveSignedRoute(
            in: folder, secrets: #""secrets": [{ "env": "OLD_SHOP_SECRET" }, { "env": "SHOP_SECRET" }]"#, arguments: ["--upstream", "http://127.0.0.1:9"],
            environment: ["HAPPYTALK_TOKEN": "t", "SHOP_SECRET": secret, "OPENSSL_CONF": configuration.path])
        #expect(result.status == 1)
        #expect(result.output.contains("shop.json: /verify/secrets/0: environment variable OLD_SHOP_SECRET"), "\(result.output)")
        #expect(result.output.contains("shop.json: /verify/secrets/1: libcrypto refuses this secret as an HMAC key"), "\(result.output)")
        #expect(!result.output.contains("listening on"))
        #expect(!result.output.contains(secret))
    }

    @Test func tokenAndSecretsNeverLeak() async throws {
        let secret = "s3cret-Zz9Yy8Xx7Ww6Vv5"
        try await offPool {
            let mappings = Self.mappings.merging(["github.json": RelayHarness.route("/github", verify: #"{ "scheme": "github", "secret": { "env": "GH_SECRET" } }"#)]) { $1 }
            let relay = try RelayHarness(mappings: mappings, environment: ["GH_SECRET": secret])
            let body = RelayHarness.body
            _ = try relay.post("/github", body: body, headers: [("X-Hub-Signature-256", "sha256=" + Sign.hex(Sign.hmac256(secret, body)))])
            _ = try relay.post("/github", body: body, headers: [("X-Hub-Signature-256", "sha256=00")])
            _ = try relay.post("/github", body: secret, headers: [("X-Hub-Signature-256", "sha256=" + Sign.hex(Sign.hmac256(secret, secret)))])
            _ = try relay.post("/sync", body: Self.order)
            _ = try relay.post("/sync", body: #"{"kind":"order","uuid":"u-1","room":"r-404"}"#)
            _ = try relay.post("/sync", body: #"{"kind":"order"}"#)
            let stopped = try relay.relay.stop()
            #expect(stopped == 0)
            for text in relay.responses + [relay.relay.log, relay.mock.log] {
                #expect(!text.contains(RelayHarness.token))
                #expect(!text.contains(secret))
            }
            // Only the mock's record of accepted calls holds the token.
            #expect(relay.recordedCalls.allSatisfy { $0.contains(RelayHarness.token) })
            #expect(relay.recordedCalls.count == 3)
        }
    }
}
