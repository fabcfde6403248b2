import Foundation
import Synchronization
import TestSupport
import Testing

@testable import RelayCore
@testable import RelayStore
@testable import RelayCrypto

#if canImport(Glibc)
import Glibc
#endif

/// The relay attacked from outside, as an adversary would: each test is one finding of the
/// hardening review, and fails on the relay as it was before its fix.
@Suite struct HardeningTests {
    static let async = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u-1", "room_id": "$.body.room", "parcel_number": "$.body.n" } } ] }"#

    /// Finding 1: a timestamp that overflows the tolerance arithmetic is a 401, not a crash.
    @Test func overflowingTimestampsAreRefusedAndTheRelayKeepsServing() async throws {
        try await offPool {
            let secret = "whsec_" + ByteEncoding.base64(Array("0123456789abcdef0123456789abcdef".utf8))
            let relay = try RelayHarness(
                mappings: [
                    "stripe.json": RelayHarness.route("/stripe", verify: #"{ "scheme": "stripe", "secret": { "env": "S1" } }"#),
                    "std.json": RelayHarness.route("/std", verify: #"{ "scheme": "standard-webhooks", "secret": { "env": "WHSEC" } }"#),
                ], environment: ["S1": "s3cret", "WHSEC": secret])
            for timestamp in ["-9223372036854775808", "9223372036854775807", "-1"] {
                let stripe = try relay.post("/stripe", body: "{}", headers: [("Stripe-Signature", "t=\(timestamp),v1=00")])
                #expect(stripe.status == 401, "\(stripe.text)")
                let standard = try relay.post(
                    "/std", body: "{}", headers: [("webhook-id", "m"), ("webhook-timestamp", timestamp), ("webhook-signature", "v1,AAAA")])
                #expect(standard.text == #"{"result":"fail","error":"invalid_signature","message":"webhook-timestamp is not a number"}"#)
            }
            #expect(try relay.get("/healthz").status == 200)
            #expect(relay.relay.process.isRunning)
        }
    }

    /// Finding 3: `Retry-After: 99999999999999999` is clamped; the stored delivery survives a
    /// restart and is delivered once HappyTalk recovers.
    @Test func aPoisonRetryAfterIsClampedAndSurvivesARestart() async throws {
        try await offPool {
            let relay = try RelayHarness(
                mappings: ["async.json": Self.async], mockArguments: ["--fail-status", "503", "--retry-after", "99999999999999999"])
            #expect(try relay.post("/async", body: #"{"room":"r-1","n":"1"}"#).status == 202)
            let retried = relay.relay.waitForLog { $0.contains(#""msg":"delivery will be retried""#) }
            #expect(retried.contains(#""reason":"HappyTalk answered HTTP 503""#))
            #expect(try relay.get("/healthz").status == 200)
            try relay.restartRelay()
            #expect(relay.relay.waitForLog { $0.components(separatedBy: "delivery will be retried").count > 1 }.contains("HappyTalk answered HTTP 503"))
            try relay.restartMock(arguments: [])
            // Retries stay within --retry-max-delay (1 s in the harness), whatever the answer asked.
            #expect(relay.waitForCalls(1, timeout: 10).count == 1)
        }
    }

    /// Finding 4: the same event id sent twice at the same moment is delivered once; the second
    /// request is answered `duplicate`, or 409 while the first is not yet stored, and its retry
    /// is a duplicate.
    @Test func theSameEventSentTwiceAtOnceIsDeliveredOnce() async throws {
        try await offPool {
            let mapping = #"{ "route": "/async", "verify": { "scheme": "none" }, "dedupe": { "key": "$.headers['x-event-id']", "window": "1h" }, "rules": [ { "set": { "uuid": "u-1", "room_id": "$.body.room", "parcel_number": "$.body.n" } } ] }"#
            let relay = try RelayHarness(mappings: ["async.json": mapping])
            let port = relay.relayPort
            let answers = Mutex<[Int: [RawConnection.Response]]>([:])
            let group = DispatchGroup()
            for event in 0..<10 {
                let body = #"{"room":"r-\#(event)","n":"\#(event)"}"#
                let wire = "POST /async HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nX-Event-Id: evt-\(event)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                let pair = Box(try [RawConnection(port: port), RawConnection(port: port)])
                group.enter()
                Thread {
                    defer { group.leave() }
                    for connection in pair.value { try? connection.send(wire) }
                    let responses = pair.value.compactMap { try? $0.readResponse() }
                    answers.withLock { $0[event] = responses }
                }.start()
            }
            group.wait()
            let all = answers.withLock { $0 }
            var retries: [Int] = []
            for event in 0..<10 {
                let pair = all[event] ?? []
                #expect(pair.count == 2)
                #expect(pair.filter { $0.status == 202 }.count == 1, "\(pair.map(\.text))")
                guard let first = pair.first(where: { $0.status == 202 }), let second = pair.first(where: { $0.status != 202 }) else { continue }
                let id = first.text.components(separatedBy: #""id":""#).last?.prefix(24) ?? ""
                if second.status == 409 {
                    #expect(second.text == #"{"result":"fail","error":"in_progress","message":"the same event is being handled now; retry shortly"}"#)
                    #expect(second.header("retry-after") == "1")
                    retries.append(event)
                } else {
                    #expect(second.text == #"{"result":"duplicate","id":"\#(id)"}"#)
                }
            }
            for event in retries {
                let retry = try relay.post("/async", body: #"{"room":"r-\#(event)","n":"\#(event)"}"#, headers: [("Content-Type", "application/json"), ("X-Event-Id", "evt-\(event)")])
                #expect(retry.status == 200 && retry.text.hasPrefix(#"{"result":"duplicate","id":""#), "\(retry.text)")
            }
            let calls = relay.waitForCalls(10)
            #expect(calls.count == 10)
            #expect(Set(calls).count == 10)
        }
    }

    /// Finding 5: a chat customer cannot take over another customer's order by naming it.
    @Test func aBindingCannotBeHijacked() async throws {
        try await offPool {
            let chat = #"{ "route": "/chat", "verify": { "scheme": "none" }, "delivery": "sync", "rules": [ { "bind": { "keys": { "order_number": "$.body.order", "phone": "$.body.phone" }, "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#
            let shipped = #"{ "route": "/shipped", "verify": { "scheme": "none" }, "rules": [ { "resolve": [ { "order_number": "$.body.order" } ], "set": { "uuid": "$.binding.uuid", "room_id": "$.binding.room_id", "parcel_number": "$.body.parcel", "scenario_next": "Y" } } ] }"#
            let relay = try RelayHarness(mappings: ["chat.json": chat, "shipped.json": shipped])
            #expect(try relay.post("/chat", body: #"{"order":"2001","phone":"01011112222","uuid":"alice","room":"r-alice"}"#).text == #"{"result":"bound"}"#)
            let mallory = try relay.post("/chat", body: #"{"order":"2001","uuid":"mallory","room":"r-mallory"}"#)
            #expect(mallory.status == 409)
            #expect(mallory.text == #"{"result":"fail","error":"binding_conflict","message":"this order_number is already bound to another chat"}"#)
            #expect(relay.relay.waitForLog { $0.contains("binding refused") }.contains(#""kind":"order_number""#))
            #expect(try relay.post("/shipped", body: #"{"order":"2001","parcel":"1Z999AA10123456784"}"#).status == 202)
            #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"alice","room_id":"r-alice","parcel_number":"1Z999AA10123456784","scenario_next":"Y"}"#])
        }
    }

    /// Finding 7: with descriptors exhausted the relay neither spins nor stops serving, and says
    /// so once; at start-up it fits --max-connections to the open-file limit.
    @Test func runningOutOfDescriptorsDoesNotSpin() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async])
            let pid = relay.relay.process.processIdentifier
            let limited = Process()
            limited.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            limited.arguments = ["--pid", "\(pid)", "--nofile=48:48"]
            try limited.run()
            limited.waitUntilExit()
            #expect(limited.terminationStatus == 0)
            var clients: [RawConnection] = []
            for _ in 0..<80 { if let client = try? RawConnection(port: relay.relayPort) { clients.append(client) } }
            let before = relay.relay.cpuSeconds
            let started = Date()
            let logged = relay.relay.waitForLog(timeout: 2) { $0.contains("cannot accept connections") }
            #expect(logged.contains("Too many open files"))
            // An observation window: a spinning acceptor burns a whole core in it.
            while Date().timeIntervalSince(started) < 2 { usleep(100_000) }
            let used = relay.relay.cpuSeconds - before
            #expect(used < 0.5, "\(used) s of CPU in 2 s with descriptors exhausted")
            clients.removeAll()
            let raise = Process()
            raise.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            raise.arguments = ["--pid", "\(pid)", "--nofile=4096:4096"]
            try raise.run()
            raise.waitUntilExit()
            var healthy = false
            for _ in 0..<50 where !healthy {
                healthy = (try? relay.get("/healthz").status) == 200
                if !healthy { usleep(100_000) }
            }
            #expect(healthy)
            #expect(relay.relay.log.components(separatedBy: "cannot accept connections").count - 1 <= 2)
        }
    }

    @Test func maxConnectionsIsFittedToTheOpenFileLimitAtStartUp() async throws {
        try await offPool {
            let folder = TemporaryFolder()
            defer { withExtendedLifetime(folder) {} }
            try FileManager.default.createDirectory(atPath: folder.path + "/mappings", withIntermediateDirectories: true)
            try Self.async.write(toFile: folder.path + "/mappings/async.json", atomically: false, encoding: .utf8)
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path + "/mappings", "--data-dir", folder.path + "/data", "--log-format", "json"],
                launcher: ["/usr/bin/prlimit", "--nofile=256:256"])
            _ = try relay.waitForPort()
            #expect(relay.log.contains(#""msg":"--max-connections lowered to what the open-file limit allows","requested":4096,"allowed":128,"open_file_limit":256"#), "\(relay.log)")
            _ = try relay.stop()
        }
    }

    /// Finding 9: the database deleted under a running relay: new webhooks get 503 (what they
    /// would write is gone after a restart), and /readyz says why.
    @Test func aDeletedDatabaseIsNoticed() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async])
            #expect(try relay.post("/async", body: #"{"room":"r-1","n":"1"}"#).status == 202)
            for suffix in ["", "-wal", "-shm"] { unlink(relay.dataDirectory + "/" + SQLiteSchema.fileName + suffix) }
            let refused = try relay.post("/async", body: #"{"room":"r-1","n":"2"}"#)
            #expect(refused.status == 503)
            #expect(refused.text.contains("the queue database file was deleted"), "\(refused.text)")
            let ready = try relay.get("/readyz")
            #expect(ready.status == 503 && ready.text.contains("deleted"), "\(ready.text)")
        }
    }

    /// Finding 11: bindings count against --queue-max-bytes like deliveries do.
    @Test func bindingsAreRefusedWhenTheQueueIsOverItsSize() async throws {
        try await offPool {
            let bind = #"{ "route": "/bind", "verify": { "scheme": "none" }, "delivery": "sync", "rules": [ { "bind": { "keys": { "order_number": "$.body.order" }, "uuid": "u-1", "room_id": "r-1" } } ] }"#
            let failing = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u-1", "room_id": "$.body.missing" } } ] }"#
            let relay = try RelayHarness(mappings: ["bind.json": bind, "async.json": failing], relayArguments: ["--queue-max-bytes", "65536"])
            let padding = String(repeating: "p", count: 20_000)
            var status = 202
            for index in 0..<20 where status == 202 {
                status = try relay.post("/async", body: #"{"n":\#(index),"pad":"\#(padding)"}"#).status
            }
            #expect(status == 503)
            let bound = try relay.post("/bind", body: #"{"order":"1"}"#)
            #expect(bound.status == 503, "\(bound.text)")
            #expect(bound.text.contains("the queue database is full"))
        }
    }

    /// Finding 14: a token file other users can read is named at start-up; the data files are
    /// the owner's alone.
    @Test func looseSecretFilesAreWarnedAboutAndDataFilesArePrivate() async throws {
        try await offPool {
            let folder = TemporaryFolder()
            defer { withExtendedLifetime(folder) {} }
            try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
            let tokenFile = folder.path + "/token"
            try RelayHarness.token.write(toFile: tokenFile, atomically: false, encoding: .utf8)
            chmod(tokenFile, 0o644)
            let relay = try RelayHarness(mappings: ["async.json": Self.async], environment: ["HAPPYTALK_TOKEN_FILE": tokenFile], withToken: false)
            #expect(relay.relay.log.contains(#""msg":"a secret file is readable by other users: chmod 600 it","file":"\#(tokenFile)","mode":"0644""#))
            #expect(!relay.relay.log.contains(RelayHarness.token))
            #expect(try relay.post("/async", body: #"{"room":"r-1","n":"1"}"#).status == 202)
            let folderMode = try FileManager.default.attributesOfItem(atPath: relay.dataDirectory)[.posixPermissions] as? Int
            let fileMode = try FileManager.default.attributesOfItem(atPath: relay.dataDirectory + "/" + SQLiteSchema.fileName)[.posixPermissions] as? Int
            #expect(folderMode == 0o700 && fileMode == 0o600)
        }
    }

    /// Finding 15: admin paths are ids, never options; a bad filter is the caller's mistake.
    @Test func adminRequestsAreValidated() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async], environment: ["HAPPYRELAY_ADMIN_TOKEN": "adm1n-t0ken"])
            let auth = [("Authorization", "Bearer adm1n-t0ken")]
            let bogus = try relay.post("/admin/deliveries?state=bogus", body: "", headers: auth, method: "GET")
            #expect(bogus.status == 400)
            #expect(bogus.text == #"{"result":"fail","error":"bad_request","message":"state: \"bogus\" is not pending, dead or delivered"}"#)
            let option = try relay.post("/admin/deliveries/--all-dead/replay", body: "", headers: auth)
            #expect(option.status == 404)
            let wrongLength = try relay.post("/admin/deliveries", body: "", headers: [("Authorization", "Bearer adm1n")], method: "GET")
            #expect(wrongLength.status == 404)
            #expect(try relay.post("/admin/deliveries", body: "", headers: auth, method: "GET").status == 200)
        }
    }

    /// Finding 15: deliveries replayed by the CLI count toward the queue limit of the running
    /// relay at once (its count of pending deliveries follows the database).
    @Test func thePendingCountFollowsAReplayFromTheCommandLine() async throws {
        try await offPool {
            let broken = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u-1", "room_id": "$.body.chat_room" } } ] }"#
            let fixed = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u-1", "room_id": "$.body.room" } } ] }"#
            let relay = try RelayHarness(mappings: ["async.json": broken], relayArguments: ["--queue-limit", "2"])
            try relay.stopMock()
            for index in 0..<2 { #expect(try relay.post("/async", body: #"{"room":"r-\#(index)"}"#).status == 202) }
            try fixed.write(to: relay.directory.appendingPathComponent("mappings/async.json"), atomically: false, encoding: .utf8)
            let replayed = try RelayProcess.run(
                ["deliveries", "replay", "--all-dead", "--data-dir", relay.dataDirectory, "--mappings", relay.directory.appendingPathComponent("mappings").path])
            #expect(replayed.status == 0, "\(replayed.output)")
            var ready = try relay.get("/readyz")
            for _ in 0..<50 where ready.status == 200 {
                usleep(100_000)
                ready = try relay.get("/readyz")
            }
            #expect(ready.text == #"{"status":"unavailable","reason":"the queue is full (2 pending)"}"#)
            // The running relay still has the first mapping (replay re-mapped with the fixed file).
            let refused = try relay.post("/async", body: #"{"chat_room":"r-9"}"#)
            #expect(refused.status == 503, "\(refused.text)")
        }
    }
}

/// Finding 2 on a real 2 MB tmpfs: with the disk full and HappyTalk healthy, each pending call
/// reaches HappyTalk once; its result waits in memory until the disk has room, then /readyz
/// recovers without a webhook.
@Suite(.serialized, .enabled(if: getuid() == 0, "mounting a tmpfs needs root (CI runs as root)"))
struct FullDiskTests {
    @Test func aFullDiskDoesNotTurnIntoARetryStorm() async throws {
        try await offPool {
            let mountPoint = TemporaryFolder()
            defer { withExtendedLifetime(mountPoint) {} }
            try FileManager.default.createDirectory(atPath: mountPoint.path, withIntermediateDirectories: true)
            let mount = Process()
            mount.executableURL = URL(fileURLWithPath: "/bin/mount")
            mount.arguments = ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint.path]
            try mount.run()
            mount.waitUntilExit()
            try #require(mount.terminationStatus == 0)
            defer {
                let unmount = Process()
                unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
                unmount.arguments = [mountPoint.path]
                try? unmount.run()
                unmount.waitUntilExit()
            }
            // HappyTalk answers after 1.5 s, so the disk is full by the time the results come back.
            let relay = try RelayHarness(
                mappings: ["async.json": HardeningTests.async], mockArguments: ["--latency", "1500"],
                relayArguments: ["--data-dir", mountPoint.path + "/data"])
            for index in 0..<3 { #expect(try relay.post("/async", body: #"{"room":"r-\#(index)","n":"\#(index)"}"#).status == 202) }
            // Fill the disk to the last byte, in large writes first: the fill must end well within
            // HappyTalk's 1.5 s, on a loaded machine too (4 KB at a time, a full suite under
            // ThreadSanitizer once took longer, and the outcomes were written before the disk was full).
            let filler = mountPoint.path + "/filler"
            _ = FileManager.default.createFile(atPath: filler, contents: nil)
            let handle = try #require(FileHandle(forWritingAtPath: filler))
            for chunk in [Data(count: 256 * 1024), Data(count: 4096)] {
                while (try? handle.write(contentsOf: chunk)) != nil {}
            }
            try? handle.close()
            #expect(relay.waitForCalls(3, timeout: 15).count == 3)
            let failing = relay.relay.waitForLog { $0.contains(#""msg":"the queue cannot be written""#) }
            #expect(failing.contains("the disk is full"))
            // An observation window: before the fix each call reached HappyTalk again and again in
            // it. Now a call whose result cannot be written is not sent again.
            let started = Date()
            while Date().timeIntervalSince(started) < 2 { usleep(100_000) }
            #expect(relay.recordedCalls.count == 3, "\(relay.recordedCalls)")
            #expect(try relay.get("/readyz").status == 503)
            #expect(failing.components(separatedBy: #""msg":"the queue cannot be written""#).count - 1 <= 2)
            try FileManager.default.removeItem(atPath: filler)
            var ready = try relay.get("/readyz")
            for _ in 0..<100 where ready.status != 200 {
                usleep(100_000)
                ready = try relay.get("/readyz")
            }
            #expect(ready.status == 200, "readiness recovers without a webhook: \(ready.text)")
            #expect(relay.relay.waitForLog { $0.contains("the queue can be written again") }.contains("the queue can be written again"))
            #expect(relay.waitForCalls(3, timeout: 10).count == 3)
            #expect(Set(relay.recordedCalls).count == 3)
            _ = try relay.relay.stop()
        }
    }
}
