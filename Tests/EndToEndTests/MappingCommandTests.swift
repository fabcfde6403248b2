import Foundation
import TestSupport
import Testing

/// `happyrelay check` and `happyrelay map` run as a user runs them.
@Suite struct MappingCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var mappings: String { root.appendingPathComponent("mappings").path }


    @Test func checkPassesOnTheShippedMappings() async throws {
        let result = try await offPool { try RelayProcess.run(["check", "--mappings", Self.mappings]) }
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("shopify-orders.json: ok: /hooks/shopify/orders"))
    }

    @Test func checkReportsEveryProblemAndExits1() async throws {
        let temporary = TemporaryFolder()
        defer { withExtendedLifetime(temporary) {} }
        let folder = temporary.url
        try #"{ "route": "/a", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u", "room_id": "r", "order_no": "x" } } ] }"#
            .write(to: folder.appendingPathComponent("a.json"), atomically: false, encoding: .utf8)
        try #"{ "route": "/b", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u", "room_id": "r", "phone": { "path": "$.body.p", "pipe": ["phonekr"] } } } ] }"#
            .write(to: folder.appendingPathComponent("b.json"), atomically: false, encoding: .utf8)
        let result = try await offPool { try RelayProcess.run(["check", "--mappings", folder.path]) }
        #expect(result.status == 1)
        #expect(result.output.contains("a.json: /rules/0/set/order_no: \"order_no\" is not a set_user_info field (did you mean \"order_number\"?)"))
        #expect(result.output.contains("b.json: /rules/0/set/phone/pipe/0: unknown step \"phonekr\" (did you mean \"phone_kr\"?)"))
    }

    @Test func mapPrintsTheCallWithTheTokenMasked() async throws {
        let payload = Self.root.appendingPathComponent("Tests/EndToEndTests/Fixtures/shopify-order-created-body.json").path
        let result = try await offPool {
            try RelayProcess.run([
                "map", "--route", "/hooks/shopify/orders", "--header", "X-Shopify-Topic: orders/create", "--mappings", Self.mappings, payload,
            ])
        }
        #expect(result.status == 0, "\(result.output)")
        #expect(
            result.output
                == #"{"token":"***","uuid":"u-1","room_id":"77","order_number":"1043","username":"홍길동","phone":"01012345678","email":"gildong@example.com","parameter1":"결제완료","parameter2":"2026-11-29 13:05"}"#
                + "\n")
    }

    @Test func mapExitCodes() async throws {
        let temporary = TemporaryFolder()
        defer { withExtendedLifetime(temporary) {} }
        let folder = temporary.url
        let payload = folder.appendingPathComponent("p.json")
        try #"{"id": 1}"#.write(to: payload, atomically: false, encoding: .utf8)
        let ignored = try await offPool {
            try RelayProcess.run(["map", "--route", "/hooks/shopify/orders", "--header", "X-Shopify-Topic: products/update", "--mappings", Self.mappings, payload.path])
        }
        #expect(ignored.status == 3)
        #expect(ignored.output == "ignored: no rule matched\n")
        // An order from a customer who never chatted is no error: it is ignored with its reason.
        let unchatted = try await offPool {
            try RelayProcess.run(["map", "--route", "/hooks/shopify/orders", "--header", "X-Shopify-Topic: orders/create", "--mappings", Self.mappings, payload.path])
        }
        #expect(unchatted.status == 3)
        #expect(unchatted.output == "ignored: no chat user for this order\n")
        let invalid = try await offPool {
            try RelayProcess.run(["map", "--route", "/hooks/chatbot/parameters", "--mappings", Self.mappings, payload.path])
        }
        #expect(invalid.status == 1)
        #expect(invalid.output.hasPrefix("invalid: uuid: $.body.uuid is empty"))
        try "{oops".write(to: payload, atomically: false, encoding: .utf8)
        let broken = try await offPool { try RelayProcess.run(["map", "--route", "/hooks/shopify/orders", "--mappings", Self.mappings, payload.path]) }
        #expect(broken.status == 1)
        #expect(broken.output.contains("body is not valid JSON: expected a member name in quotes at line 1, column 2"))
        let unknown = try await offPool { try RelayProcess.run(["map", "--route", "/hooks/shopify/order", "--mappings", Self.mappings, payload.path]) }
        #expect(unknown.status == 1)
        #expect(unknown.output.contains("(did you mean /hooks/shopify/orders?)"))
        let usage = try await offPool { try RelayProcess.run(["map", "--mappings", Self.mappings, payload.path]) }
        #expect(usage.status == 2)
        #expect(usage.output.contains("--route is required"))
    }
}
