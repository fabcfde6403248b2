import Foundation
import Testing

@testable import RelayCLI

/// Golden tests for the shipped presets: for every event type each preset maps, the exact
/// call `happyrelay map` prints (or the ignored reason) for a customer with no chat, with the
/// chat ids in the payload where the platform can carry them, bound by order number (in the
/// shape a customer types it) and bound by phone. Tracking numbers are alphanumeric carrier
/// numbers (UPS 1Z…, EMS EE…KR), written with spaces and lower case where platforms let
/// shops type them.
///
/// The payloads in Fixtures/presets are shaped after the vendors' published samples:
/// - Shopify: the webhook topic reference's example payloads for orders/create, orders/paid,
///   orders/updated, orders/fulfilled, fulfillments/create and fulfillments/update,
///   https://shopify.dev/docs/api/webhooks?reference=toml — the ids, `name` "#9999" beside
///   `order_number` 1234 (they differ in Shopify's own samples; the presets use the name) and
///   the fulfillment's "#9999.1" are as published; a Korean phone and a UPS number put in.
/// - WooCommerce: the REST API's order properties and example order 727,
///   https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties, with the
///   X-WC-Webhook-* headers of https://woocommerce.com/document/webhooks/ and the Shipment
///   Tracking extension's `_wc_shipment_tracking_items` order meta,
///   https://woocommerce.com/document/shipment-tracking/#section-11 (REST fields
///   tracking_provider, custom_tracking_provider, tracking_number, date_shipped, tracking_id).
/// - Cafe24: the webhook events 90023 (order placed), 90024 (shipping status), 90025 (payment
///   status) and 90162 (tracking number) of the Cafe24 developer center's webhook guide,
///   https://developers.cafe24.com/app/front/app/develop/webhook (event_no and resource as there).
/// - Standard Webhooks: the envelope {type, timestamp, data} and the webhook-id,
///   webhook-timestamp and webhook-signature headers of
///   https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
/// - The chatbot: HappyTalk's API block posting its variables as JSON.
@Suite struct PresetGoldenTests {
    struct PresetCase: CustomTestStringConvertible, Sendable {
        let mappings: String
        let route: String
        let sample: String
        let bind: String?
        let expected: [String]
        init(_ mappings: String, _ route: String, _ sample: String, bind: String?, expected: [String]) {
            self.mappings = mappings
            self.route = route
            self.sample = sample
            self.bind = bind
            self.expected = expected
        }
        var testDescription: String { "\(sample)\(bind.map { " bound \($0)" } ?? "")" }
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/presets").path

    static let cases: [PresetCase] = [
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-create.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-create-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-create.json", bind: "order_number=#9999:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-create.json", bind: "phone=010-1234-5678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-paid.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-paid-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-paid.json", bind: "order_number=#9999:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-paid.json", bind: "phone=010-1234-5678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-updated.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-updated-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-updated.json", bind: "order_number=#9999:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-updated.json", bind: "phone=010-1234-5678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"9999","username":"SmithJohn","phone":"01012345678","email":"jon@example.com","parameter1":"취소","parameter2":"2022-01-01 09:00"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-fulfilled.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-fulfilled-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"9999","parcel_number":"1Z999AA10123456784","parameter3":"UPS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-fulfilled.json", bind: "order_number=#9999:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"9999","parcel_number":"1Z999AA10123456784","parameter3":"UPS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-orders-fulfilled.json", bind: "phone=010-1234-5678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"9999","parcel_number":"1Z999AA10123456784","parameter3":"UPS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-fulfillments-create.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-fulfillments-create.json", bind: "order_number=9999:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"9999","parcel_number":"1Z999AA10123456784","parameter3":"UPS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-fulfillments-create.json", bind: "phone=01012345678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"9999","parcel_number":"1Z999AA10123456784","parameter3":"UPS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-fulfillments-update.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-fulfillments-update.json", bind: "order_number=9999:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"9999","parcel_number":"1Z999AA10123456784","parameter3":"UPS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/shopify/orders", "shopify-fulfillments-update.json", bind: "phone=01012345678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"9999","parcel_number":"1Z999AA10123456784","parameter3":"UPS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-created.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-created-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"727","username":"DoeJohn","phone":"01055556666","email":"john.doe@example.com","parameter1":"처리중","parameter2":"2017-03-22 16:28"}"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-created.json", bind: "order_number=727:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"727","username":"DoeJohn","phone":"01055556666","email":"john.doe@example.com","parameter1":"처리중","parameter2":"2017-03-22 16:28"}"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-created.json", bind: "phone=+82 10 5555 6666:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"727","username":"DoeJohn","phone":"01055556666","email":"john.doe@example.com","parameter1":"처리중","parameter2":"2017-03-22 16:28"}"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-updated-tracking.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-updated-tracking-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"727","parcel_number":"EE123456789KR","parameter1":"배송완료","parameter3":"EMS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-updated-tracking.json", bind: "order_number=727:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"727","parcel_number":"EE123456789KR","parameter1":"배송완료","parameter3":"EMS","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/woocommerce/orders", "woocommerce-order-updated-tracking.json", bind: "phone=+82 10 5555 6666:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"727","parcel_number":"EE123456789KR","parameter1":"배송완료","parameter3":"EMS","scenario_next":"Y"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90023-order.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90023-order.json", bind: "order_number=202411050001234:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"202411050001234","username":"홍길동","phone":"01012345678","email":"gildong@example.com","parameter1":"결제대기","parameter2":"2024-11-05 10:21"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90023-order.json", bind: "phone=01012345678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"202411050001234","username":"홍길동","phone":"01012345678","email":"gildong@example.com","parameter1":"결제대기","parameter2":"2024-11-05 10:21"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90024-shipping.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90024-shipping.json", bind: "order_number=202411050001234:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"202411050001234","parameter1":"배송중"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90024-shipping.json", bind: "phone=01012345678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"202411050001234","parameter1":"배송중"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90025-payment.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90025-payment.json", bind: "order_number=202411050001234:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"202411050001234","username":"홍길동","phone":"01012345678","email":"gildong@example.com","parameter1":"결제완료","parameter2":"2024-11-05 10:21"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90025-payment.json", bind: "phone=01012345678:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"202411050001234","username":"홍길동","phone":"01012345678","email":"gildong@example.com","parameter1":"결제완료","parameter2":"2024-11-05 10:21"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90162-tracking.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90162-tracking.json", bind: "order_number=202411050001234:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"202411050001234","parcel_number":"689412345678","scenario_next":"Y"}"#]),
        PresetCase("mappings/optional", "/hooks/cafe24/orders", "cafe24-90162-tracking.json", bind: "phone=01012345678:u-ph/r-ph", expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-created.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-created-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"A1044","username":"김영희","phone":"01098765432","email":"yh@example.com"}"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-created.json", bind: "order_number=a1044:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"A1044","username":"김영희","phone":"01098765432","email":"yh@example.com"}"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-created.json", bind: "phone=01098765432:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"A1044","username":"김영희","phone":"01098765432","email":"yh@example.com"}"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-shipped.json", bind: nil, expected: [#"ignored: no chat user for this order"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-shipped-chat.json", bind: nil, expected: [#"{"token":"***","uuid":"u-chat","room_id":"r-chat","order_number":"A1044","parcel_number":"EE123456789KR","scenario_next":"Y"}"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-shipped.json", bind: "order_number=a1044:u-ord/r-ord", expected: [#"{"token":"***","uuid":"u-ord","room_id":"r-ord","order_number":"A1044","parcel_number":"EE123456789KR","scenario_next":"Y"}"#]),
        PresetCase("mappings/optional", "/hooks/standard-webhooks/orders", "standard-webhooks-order-shipped.json", bind: "phone=01098765432:u-ph/r-ph", expected: [#"{"token":"***","uuid":"u-ph","room_id":"r-ph","order_number":"A1044","parcel_number":"EE123456789KR","scenario_next":"Y"}"#]),
        PresetCase("mappings", "/hooks/chatbot/order-inquiry", "chatbot-order-inquiry.json", bind: nil, expected: [#"would bind order_number=9999 to uuid u-1, room_id r-9 (map stores nothing)"#, #"would bind phone=01012345678 to uuid u-1, room_id r-9 (map stores nothing)"#, #"{"token":"***","uuid":"u-1","room_id":"r-9","order_number":"9999","phone":"01012345678"}"#]),
        PresetCase("mappings", "/hooks/chatbot/parameters", "chatbot-parameters.json", bind: nil, expected: [#"{"token":"***","uuid":"u-1","room_id":"r-9","order_number":"202411050001234","parameter1":"배송이 언제 시작되는지 알고 싶어요","scenario_next":"Y"}"#]),
    ]

    @Test(arguments: cases)
    func presetMapsTheVendorSample(_ preset: PresetCase) throws {
        let root = MappingCommandsTests.repository.appendingPathComponent(preset.mappings).path
        let result = try MappingCommands.map(
            ["--route", preset.route, "--mappings", root] + (preset.bind.map { ["--bind", $0] } ?? []) + [Self.fixtures + "/" + preset.sample],
            environment: [:], standardInput: { [] })
        #expect(result.lines == preset.expected)
        #expect(result.exitCode == (preset.expected.first?.hasPrefix("ignored:") == true ? 3 : 0))
    }

    @Test func everyEventTypeHasItsCases() {
        let samples = Set(Self.cases.map(\.sample))
        #expect(samples.count == 24)
        // No shop event ends as a failure: it makes a call, or it is ignored with a reason.
        #expect(!Self.cases.contains { $0.expected.contains { $0.hasPrefix("invalid:") } })
    }
}
