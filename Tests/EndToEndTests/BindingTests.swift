import Foundation
import TestSupport
import Testing

@testable import RelayCore

/// The story of docs/mapping.md's "Bindings": the chatbot binds an order to its room; hours later
/// the shop's webhook for that order finds the room.
@Suite struct BindingTests {
    static let chatbot = #"""
        { "route": "/chatbot/orders", "verify": { "scheme": "bearer", "secret": { "env": "BOT_SECRET" } }, "delivery": "sync",
          "rules": [ { "name": "order-inquiry",
            "bind": { "keys": { "order_number": "$.body.order_number", "phone": { "path": "$.body.phone", "pipe": ["phone_kr"] } },
                      "uuid": "$.body.uuid", "room_id": "$.body.room_id", "ttl": "30d" } } ] }
        """#
    static let shop = #"""
        { "route": "/shop/shipped", "verify": { "scheme": "shopify", "secret": { "env": "SHOP_SECRET" } }, "delivery": "async",
          "rules": [ { "name": "shipped", "resolve": [ { "order_number": "$.body.order_number" }, { "phone": { "path": "$.body.phone", "pipe": ["phone_kr"] } } ],
                       "set": { "uuid": "$.binding.uuid", "room_id": "$.binding.room_id", "parcel_number": "$.body.tracking", "scenario_next": "Y" } } ] }
        """#

    @Test func chatbotBindsAndTheShopWebhookFindsTheRoom() async throws {
        try await offPool {
            let relay = try RelayHarness(
                mappings: ["chatbot.json": Self.chatbot, "shop.json": Self.shop],
                environment: ["BOT_SECRET": "bot-s3cret", "SHOP_SECRET": "shop-s3cret", "HAPPYRELAY_ADMIN_TOKEN": "admin-t0ken"])
            let bound = try relay.post(
                "/chatbot/orders", body: #"{"uuid":"u-1","room_id":"r-9","order_number":"1043","phone":"010-1234-5678"}"#,
                headers: [("Content-Type", "application/json"), ("Authorization", "Bearer bot-s3cret")])
            #expect(bound.status == 200)
            #expect(bound.text == #"{"result":"bound"}"#)

            func shipped(_ body: String) throws -> RawConnection.Response {
                try relay.post("/shop/shipped", body: body, headers: [
                    ("Content-Type", "application/json"), ("X-Shopify-Hmac-Sha256", Sign.base64(Sign.hmac256("shop-s3cret", body))),
                ])
            }
            #expect(try shipped(#"{"order_number":1043,"tracking":"555"}"#).status == 202)
            #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-9","parcel_number":"555","scenario_next":"Y"}"#])

            let unbound = try shipped(#"{"order_number":9999,"tracking":"1"}"#)
            #expect(unbound.status == 200)
            #expect(unbound.text == #"{"result":"ignored","reason":"no binding"}"#)

            // The binding survives a restart, and the second key (phone) also finds it.
            try relay.restartRelay()
            #expect(try shipped(#"{"order_number":1043,"tracking":"777"}"#).status == 202)
            #expect(try shipped(#"{"order_number":5,"phone":"+82 10 1234 5678","tracking":"888"}"#).status == 202)
            let calls = relay.waitForCalls(3)
            #expect(calls.count == 3)
            #expect(calls.dropFirst().allSatisfy { $0.contains(#""uuid":"u-1","room_id":"r-9""#) })
            #expect(calls.count == Set(calls).count)

            // The CLI and the admin endpoints see the same bindings; map resolves from the database.
            let data = relay.directory.appendingPathComponent("data").path
            let listed = try RelayProcess.run(["bindings", "list", "--data-dir", data])
            #expect(listed.output.contains("order_number=1043 u-1 r-9 "), "\(listed.output)")
            #expect(listed.output.contains("phone=01012345678 u-1 r-9 "))
            let payload = relay.directory.appendingPathComponent("shipped.json")
            try #"{"order_number":1043,"tracking":"999"}"#.write(to: payload, atomically: false, encoding: .utf8)
            let mapped = try RelayProcess.run([
                "map", "--route", "/shop/shipped", "--mappings", relay.directory.appendingPathComponent("mappings").path, "--data-dir", data, payload.path,
            ])
            #expect(mapped.output == #"{"token":"***","uuid":"u-1","room_id":"r-9","parcel_number":"999","scenario_next":"Y"}"# + "\n")
            let admin = try relay.post("/admin/bindings?kind=order_number&value=1043", body: "", headers: [("Authorization", "Bearer admin-t0ken")], method: "GET")
            #expect(admin.status == 200)
            #expect(admin.text.hasPrefix(#"{"bindings":[{"key":"order_number=1043","uuid":"u-1","room_id":"r-9""#))
            let removed = try RelayProcess.run(["bindings", "delete", "order_number=1043", "--data-dir", data])
            #expect(removed.status == 0)
            let viaAdmin = try relay.post("/admin/bindings?kind=phone&value=01012345678", body: "", headers: [("Authorization", "Bearer admin-t0ken")], method: "DELETE")
            #expect(viaAdmin.text == #"{"result":"deleted"}"#)
            #expect(try shipped(#"{"order_number":1043,"tracking":"1"}"#).text == #"{"result":"ignored","reason":"no binding"}"#)
        }
    }
}
