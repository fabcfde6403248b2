import Foundation
import TestSupport
import Testing

@testable import RelayCore

/// `GET /metrics` from the real relay: a valid exposition whose counters move with the
/// webhooks sent, and that never carries a secret or a payload value.
@Suite struct MetricsTests {
    static let secret = "m3trics-s3cret-value"

    static let mappings: [String: String] = [
        "sync.json": RelayHarness.route("/sync", verify: #"{ "scheme": "shopify", "secret": { "env": "SHOP_SECRET" } }"#),
        "async.json": """
            { "route": "/async", "verify": { "scheme": "none" }, "delivery": "async",
              "rules": [ { "name": "r", "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }
            """,
    ]

    func scrape(_ relay: RelayHarness) throws -> PrometheusText {
        let response = try relay.post("/metrics", body: "", headers: [], method: "GET")
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(!response.text.contains(Self.secret) && !response.text.contains(RelayHarness.token))
        #expect(!response.text.contains("u-secret-payload"))
        return try PrometheusText(response.text)
    }

    /// Scrapes until `condition` holds (work finishing after its answer), or the deadline.
    func scrape(_ relay: RelayHarness, until condition: (PrometheusText) -> Bool) throws -> PrometheusText {
        let deadline = Date().addingTimeInterval(20)
        var metrics = try scrape(relay)
        while !condition(metrics) && Date() < deadline {
            usleep(20_000)
            metrics = try scrape(relay)
        }
        return metrics
    }

    @Test func countersMoveWithWebhooks() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: Self.mappings, environment: ["SHOP_SECRET": Self.secret], mockArguments: ["--uuid", "u-1"])
            let before = try scrape(relay)
            #expect(before["happyrelay_webhooks_total", ["route": "/sync", "outcome": "accepted"]] == 0)
            #expect(before.has("happyrelay_queue_pending"))
            #expect(before.types["happyrelay_ack_latency_seconds"] == "histogram")

            let body = RelayHarness.body
            let signature = Sign.base64(Sign.hmac256(Self.secret, body))
            let json = ("Content-Type", "application/json")
            #expect(try relay.post("/sync", body: body, headers: [json, ("X-Shopify-Hmac-Sha256", signature)]).status == 200)
            #expect(try relay.post("/sync", body: body, headers: [json, ("X-Shopify-Hmac-Sha256", "AAAA")]).status == 401)
            let unknown = #"{"uuid":"u-secret-payload","room":"r-1"}"#
            let refused = try relay.post("/sync", body: unknown, headers: [json, ("X-Shopify-Hmac-Sha256", Sign.base64(Sign.hmac256(Self.secret, unknown)))])
            #expect(refused.status == 502)
            #expect(try relay.post("/async", body: body).status == 202)
            #expect(try relay.post("/async", body: #"{"room":"r-1"}"#).status == 202)
            relay.waitForCalls(2)

            let after = try scrape(relay) {
                $0["happyrelay_deliveries_total", ["delivery": "async", "outcome": "delivered", "result": "success", "code": "none"]] == 1
                    && $0["happyrelay_queue_pending"] == 0
            }
            #expect(after["happyrelay_webhooks_total", ["route": "/sync", "outcome": "accepted"]] == 1)
            #expect(after["happyrelay_webhooks_total", ["route": "/sync", "outcome": "rejected"]] == 1)
            #expect(after["happyrelay_webhooks_total", ["route": "/sync", "outcome": "failed"]] == 1)
            #expect(after["happyrelay_webhooks_total", ["route": "/async", "outcome": "accepted"]] == 1)
            #expect(after["happyrelay_webhooks_total", ["route": "/async", "outcome": "failed"]] == 1)
            #expect(after["happyrelay_verification_failures_total", ["route": "/sync", "scheme": "shopify"]] == 1)
            #expect(after["happyrelay_mapping_failures_total", ["route": "/async", "field": "uuid"]] == 1)
            #expect(after["happyrelay_deliveries_total", ["delivery": "sync", "outcome": "delivered", "result": "success", "code": "none"]] == 1)
            #expect(after["happyrelay_deliveries_total", ["delivery": "sync", "outcome": "failed", "result": "fail", "code": "-503"]] == 1)
            #expect(after["happyrelay_deliveries_total", ["delivery": "async", "outcome": "delivered", "result": "success", "code": "none"]] == 1)
            #expect(after["happyrelay_dead_letters"] == 1)
            #expect(after["happyrelay_queue_pending"] == 0)
            #expect(after["happyrelay_ack_latency_seconds_count", ["route": "/sync"]] == 3)
            #expect(after["happyrelay_ack_latency_seconds_bucket", ["route": "/sync", "le": "+Inf"]] == 3)
            #expect(after["happyrelay_delivery_latency_seconds_count", ["delivery": "sync"]] == 1)
            #expect(after["happyrelay_delivery_latency_seconds_count", ["delivery": "async"]] == 1)
            #expect(after["happyrelay_upstream_connections_opened_total"] >= 1)
            #expect(after["happyrelay_upstream_connections_opened_total"] + after["happyrelay_upstream_requests_reused_total"] == 3)
        }
    }

    @Test func dryRunExposesNoQueueAndSaysSo() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: Self.mappings, withToken: false)
            #expect(try relay.post("/async", body: RelayHarness.body).status == 202)
            let metrics = try scrape(relay)
            #expect(metrics["happyrelay_build_info", ["version": "0.1.0", "dry_run": "true"]] == 1)
            #expect(metrics["happyrelay_webhooks_total", ["route": "/async", "outcome": "accepted"]] == 1)
            #expect(!metrics.has("happyrelay_queue_pending"))
        }
    }
}
