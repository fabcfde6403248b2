import Foundation
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

            try Self.fixed.write(to: relay.directory.appendingPathComponent("mappings/async.json"), atomically: true, encoding: .utf8)
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
