import Foundation
import TestSupport
import Testing

@testable import RelayCore
@testable import RelayCrypto

/// The optional presets (mappings/optional) served by the real binary with a token set:
/// they load with their secrets, Cafe24's route refuses addresses outside its allow list,
/// and a signed Standard Webhooks event reaches the mock byte for byte, once.
@Suite struct OptionalPresetTests {
    static let key: [UInt8] = Array("optional-preset-key-0123456789ab".utf8)

    @Test func optionalPresetsServeAndDeliver() async throws {
        try await offPool {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-optional-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let record = folder.appendingPathComponent("calls.jsonl").path
            let mock = try RelayProcess(["mock-upstream", "--listen", "127.0.0.1:0", "--token", RelayHarness.token, "--record", record])
            let mockPort = try mock.waitForPort()
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", MappingCommandTests.root.appendingPathComponent("mappings/optional").path,
                 "--upstream", "http://127.0.0.1:\(mockPort)", "--data-dir", folder.appendingPathComponent("data").path, "--log-format", "json"],
                environment: [
                    "HAPPYTALK_TOKEN": RelayHarness.token, "CAFE24_WEBHOOK_SECRET": "cafe24-query-secret",
                    "STANDARD_WEBHOOKS_SECRET": "whsec_" + ByteEncoding.base64(Self.key),
                ])
            let port = try relay.waitForPort()
            func post(_ target: String, _ body: String, _ headers: [(String, String)]) throws -> RawConnection.Response {
                let connection = try RawConnection(port: port, timeout: 10)
                var head = "POST \(target) HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                for (name, value) in headers { head += "\(name): \(value)\r\n" }
                try connection.send(head + "\r\n" + body)
                return try connection.readResponse()
            }

            let cafe24 = try post("/hooks/cafe24/orders?key=cafe24-query-secret", #"{"event_no":90162,"resource":{"order_id":"20261129-0000415","tracking_no":"1"}}"#, [])
            #expect(cafe24.status == 403, "\(cafe24.text)")

            let body = #"{"type":"order.created","timestamp":"2026-11-29T13:40:00Z","data":{"order_number":"A-1044","customer":{"name":"김영희","phone":"010-9876-5432"},"metadata":{"happytalk_uuid":"u-5","happytalk_room_id":"r-5"}}}"#
            let id = "msg_optional_1"
            let timestamp = String(Int(Date().timeIntervalSince1970))
            let signature = "v1," + ByteEncoding.base64(HMAC.authenticationCode(SHA256.self, key: Self.key, message: Array("\(id).\(timestamp).\(body)".utf8)))
            let headers = [("webhook-id", id), ("webhook-timestamp", timestamp), ("webhook-signature", signature)]
            let accepted = try post("/hooks/standard-webhooks/orders", body, headers)
            #expect(accepted.status == 202, "\(accepted.text)")
            let duplicate = try post("/hooks/standard-webhooks/orders", body, headers)
            #expect(duplicate.text.hasPrefix(#"{"result":"duplicate""#), "\(duplicate.text)")
            let forged = try post("/hooks/standard-webhooks/orders", body, [("webhook-id", "msg_2"), ("webhook-timestamp", timestamp), ("webhook-signature", "v1,AAAA")])
            #expect(forged.status == 401)

            let deadline = Date().addingTimeInterval(20)
            var calls: [String] = []
            while calls.isEmpty && Date() < deadline {
                calls = ((try? String(contentsOfFile: record, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                if calls.isEmpty { usleep(20_000) }
            }
            #expect(calls == [#"{"token":"\#(RelayHarness.token)","uuid":"u-5","room_id":"r-5","order_number":"A1044","username":"김영희","phone":"01098765432"}"#])
            #expect(!relay.log.contains("cafe24-query-secret") && !relay.log.contains(RelayHarness.token))
            _ = try relay.stop()
            _ = try mock.stop()
        }
    }
}
