import Foundation
import TestSupport
import Testing

/// Dead letter → fix the mapping → replay, with the relay running and with it stopped.
@Suite struct DeliveryCommandTests {
    static let broken = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#
    static let fixed = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.chat_room" } } ] }"#

    func deliveries(_ harness: RelayHarness, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try RelayProcess.run(
            ["deliveries"] + arguments + ["--data-dir", harness.directory.appendingPathComponent("data").path,
                                           "--mappings", harness.directory.appendingPathComponent("mappings").path])
    }

    func waitForDead(_ harness: RelayHarness, count: Int) throws -> String {
        let deadline = Date().addingTimeInterval(20)
        while true {
            let listed = try RelayProcess.run(["deliveries", "list", "--state", "dead", "--data-dir", harness.directory.appendingPathComponent("data").path])
            if listed.output.split(separator: "\n").count >= count || Date() > deadline { return listed.output }
            usleep(50_000)
        }
    }

    @Test(arguments: [true, false])
    func deadLetterFixAndReplay(relayRunning: Bool) async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.broken], mockArguments: ["--room", "r-1"])
            let accepted = try relay.post("/async", body: #"{"uuid":"u-1","room":"r-404","chat_room":"r-1"}"#)
            #expect(accepted.status == 202)
            let dead = try waitForDead(relay, count: 1)
            #expect(dead.contains(" dead /async 1 HappyTalk refused the call: -503 room"), "\(dead)")
            let json = try RelayProcess.run(["deliveries", "list", "--json", "--data-dir", relay.directory.appendingPathComponent("data").path])
            #expect(json.output.contains(#""state":"dead","route":"/async","attempts":"1","last_reason":"HappyTalk refused the call: -503 room""#))

            try Self.fixed.write(to: relay.directory.appendingPathComponent("mappings/async.json"), atomically: false, encoding: .utf8)
            if !relayRunning { _ = try relay.relay.stop() }
            let replayed = try deliveries(relay, ["replay", "--all-dead"])
            #expect(replayed.status == 0, "\(replayed.output)")
            #expect(replayed.output.hasSuffix(": replayed\n"))
            if !relayRunning { try relay.restartRelay() }
            #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1"}"#])
            let nothing = try deliveries(relay, ["replay", "--all-dead"])
            #expect(nothing.output == "no dead deliveries\n")
        }
    }

    /// A replay re-maps a dead delivery with the query it came with: the fixed rule reads a
    /// parameter the broken one did not.
    @Test func replayReadsTheQueryTheWebhookCameWith() async throws {
        try await offPool {
            let broken = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.query.room" } } ] }"#
            let fixed = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.query.chat" } } ] }"#
            let relay = try RelayHarness(mappings: ["async.json": broken], mockArguments: ["--room", "r-1"])
            #expect(try relay.post("/async?room=r-404&chat=r-1", body: #"{"uuid":"u-1"}"#).status == 202)
            _ = try waitForDead(relay, count: 1)
            try fixed.write(to: relay.directory.appendingPathComponent("mappings/async.json"), atomically: false, encoding: .utf8)
            let replayed = try deliveries(relay, ["replay", "--all-dead"])
            #expect(replayed.output.hasSuffix(": replayed\n"), "\(replayed.output)")
            #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1"}"#])
        }
    }

    /// A dead delivery of a rule that resolves a binding: replay re-maps it with the
    /// binding the chatbot stored, as the relay did when it accepted the webhook.
    @Test func replayResolvesBindings() async throws {
        try await offPool {
            let bind = #"{ "route": "/bind", "verify": { "scheme": "none" }, "delivery": "sync", "rules": [ { "bind": { "keys": { "order_number": "$.body.order" }, "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#
            func shipped(_ roomID: String) -> String {
                #"{ "route": "/shipped", "verify": { "scheme": "none" }, "rules": [ { "resolve": [ { "order_number": "$.body.order" } ], "set": { "uuid": "$.binding.uuid", "room_id": \#(roomID), "parcel_number": "$.body.parcel" } } ] }"#
            }
            let broken = shipped(#"{ "path": "$.binding.room_id", "pipe": [ { "prefix": "old-" } ] }"#)
            let relay = try RelayHarness(mappings: ["bind.json": bind, "shipped.json": broken], mockArguments: ["--room", "r-1"])
            #expect(try relay.post("/bind", body: #"{"order":"1043","uuid":"u-1","room":"r-1"}"#).text == #"{"result":"bound"}"#)
            #expect(try relay.post("/shipped", body: #"{"order":"1043","parcel":"555"}"#).status == 202)
            let dead = try waitForDead(relay, count: 1)
            #expect(dead.contains("HappyTalk refused the call: -503 room"), "\(dead)")
            try shipped(#""$.binding.room_id""#).write(to: relay.directory.appendingPathComponent("mappings/shipped.json"), atomically: false, encoding: .utf8)
            let replayed = try deliveries(relay, ["replay", "--all-dead"])
            #expect(replayed.status == 0, "\(replayed.output)")
            #expect(replayed.output.hasSuffix(": replayed\n"), "\(replayed.output)")
            #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1","parcel_number":"555"}"#])
        }
    }

    @Test func adminEndpointsListAndReplayBehindTheAdminToken() async throws {
        try await offPool {
            let admin = "adm1n-Tok3n-Qq9Rr8Ss7"
            let relay = try RelayHarness(mappings: ["async.json": Self.broken], environment: ["HAPPYRELAY_ADMIN_TOKEN": admin], mockArguments: ["--room", "r-1"])
            let accepted = try relay.post("/async", body: #"{"uuid":"u-1","room":"r-404","chat_room":"r-1"}"#)
            let id = String(accepted.text.split(separator: "\"")[7])
            _ = try waitForDead(relay, count: 1)
            let hidden = try relay.post("/admin/deliveries", body: "", method: "GET")
            #expect(hidden.status == 404)
            let wrong = try relay.post("/admin/deliveries", body: "", headers: [("Authorization", "Bearer nope")], method: "GET")
            #expect(wrong.status == 404)
            let auth = [("Authorization", "Bearer \(admin)")]
            let listed = try relay.post("/admin/deliveries?state=dead", body: "", headers: auth, method: "GET")
            #expect(listed.status == 200)
            #expect(listed.text.hasPrefix(#"{"deliveries":[{"id":"\#(id)","state":"dead","route":"/async","attempts":"1""#))
            // A delivery's page: the request as stored, the call without the token, HappyTalk's answer.
            let shown = try relay.post("/admin/deliveries/\(id)", body: "", headers: auth, method: "GET")
            #expect(shown.status == 200)
            #expect(shown.text.contains(#""state":"dead","route":"/async","credential":"","room_id":"r-404""#), "\(shown.text)")
            #expect(shown.text.contains(#""call":{"uuid":"u-1","room_id":"r-404"}"#))
            #expect(shown.text.contains(#""body":"{\"uuid\":\"u-1\",\"room\":\"r-404\",\"chat_room\":\"r-1\"}""#))
            #expect(shown.text.contains(#""history":[{"attempt":1,"at":"#))
            #expect(shown.text.contains(#""outcome":"dead","reason":"HappyTalk answered -503 room","http_status":200,"code":-503,"message":"room"}]"#))
            try Self.fixed.write(to: relay.directory.appendingPathComponent("mappings/async.json"), atomically: false, encoding: .utf8)
            // The serving relay re-maps with the mappings it has loaded, not the files on disk:
            // before a reload the replay makes the same call, which dies again.
            let stale = try relay.post("/admin/deliveries/\(id)/replay", body: "", headers: auth)
            #expect(stale.text == #"{"result":"replayed","details":["\#(id): replayed"]}"#)
            let deadline = Date().addingTimeInterval(20)
            var history = ""
            repeat {
                history = try relay.post("/admin/deliveries/\(id)", body: "", headers: auth, method: "GET").text
            } while !(history.contains(#""state":"dead""#) && history.components(separatedBy: #""outcome":"dead""#).count == 3) && Date() < deadline
            #expect(history.components(separatedBy: #""code":-503"#).count == 3, "both attempts are in the history: \(history)")
            let reloaded = try relay.post("/admin/reload", body: "", headers: auth)
            #expect(reloaded.text == #"{"result":"reloaded","generation":2}"#)
            let replayed = try relay.post("/admin/deliveries/\(id)/replay", body: "", headers: auth)
            #expect(replayed.status == 200)
            #expect(replayed.text == #"{"result":"replayed","details":["\#(id): replayed"]}"#)
            #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1"}"#])
            let none = try relay.post("/admin/deliveries/replay-dead", body: "", headers: auth)
            #expect(none.text == #"{"result":"replayed","details":["no dead deliveries"]}"#)
            let deleted = try relay.post("/admin/deliveries/\(id)", body: "", headers: auth, method: "DELETE")
            #expect(deleted.text == #"{"result":"deleted"}"#)
            #expect(try relay.post("/admin/deliveries/\(id)", body: "", headers: auth, method: "GET").status == 404)
            // Every admin action is in the log; so is every refused request, never with its token.
            let log = relay.relay.waitForLog { $0.contains(#""msg":"admin","method":"DELETE""#) }
            #expect(log.contains(#""msg":"admin request refused","method":"GET","path":"/admin/deliveries","client":"127.0.0.1","reason":"wrong token""#), "\(log)")
            #expect(log.contains(#""msg":"admin","method":"POST","path":"/admin/reload","query":"","status":200"#))
            for text in relay.responses + [relay.relay.log] { #expect(!text.contains(admin) && !text.contains("nope")) }
        }
    }

    @Test func usageErrors() async throws {
        try await offPool {
            let missing = try RelayProcess.run(["deliveries", "replay", "--data-dir", "/nonexistent"])
            #expect(missing.status == 2)
            #expect(missing.output.contains("give one delivery ID or --all-dead"))
            let nowhere = try RelayProcess.run(["deliveries", "list", "--data-dir", "/nonexistent"])
            #expect(nowhere.status == 1)
            #expect(nowhere.output.contains("no delivery queue in /nonexistent"))
            let state = try RelayProcess.run(["deliveries", "list", "--state", "gone", "--data-dir", "/tmp"])
            #expect(state.status == 1)
        }
    }
}
