import Foundation
import TestSupport
import Testing

@testable import RelayCore
@testable import RelayCrypto

/// Every scheme accepts its correct signature and rejects a wrong, missing or expired one;
/// the mock receives exactly the expected body with the token.
@Suite struct RelayVerificationTests {
    static let secret = "sh4red-s3cret"
    static let whsecKey: [UInt8] = Array("0123456789abcdef0123456789abcdef".utf8)
    static var whsec: String { "whsec_" + ByteEncoding.base64(whsecKey) }

    static let mappings: [String: String] = [
        "shopify.json": RelayHarness.route("/shopify", verify: #"{ "scheme": "shopify", "secret": { "env": "S1" } }"#),
        "woo.json": RelayHarness.route("/woo", verify: #"{ "scheme": "woocommerce", "secret": { "env": "S1" } }"#),
        "github.json": RelayHarness.route("/github", verify: #"{ "scheme": "github", "secret": { "env": "S1" } }"#),
        "stripe.json": RelayHarness.route("/stripe", verify: #"{ "scheme": "stripe", "secret": { "env": "S1" }, "tolerance": "300s" }"#),
        "std.json": RelayHarness.route("/std", verify: #"{ "scheme": "standard-webhooks", "secret": { "env": "WHSEC" } }"#),
        "hmac1.json": RelayHarness.route("/hmac-sha1", verify: #"{ "scheme": "hmac", "secret": { "env": "S1" }, "header": "X-Sig", "algorithm": "sha1", "encoding": "hex" }"#),
        "hmac512.json": RelayHarness.route("/hmac-sha512", verify: #"{ "scheme": "hmac", "secret": { "env": "S1" }, "header": "X-Sig", "algorithm": "sha512", "encoding": "base64url", "prefix": "v=" }"#),
        "bearer.json": RelayHarness.route("/bearer", verify: #"{ "scheme": "bearer", "secrets": [ { "env": "OLD" }, { "file": "/dev/null-placeholder" } ] }"#),
        "header.json": RelayHarness.route("/header", verify: #"{ "scheme": "header", "header": "X-Relay-Key", "secret": { "env": "S1" } }"#),
        "query.json": RelayHarness.route("/query", verify: #"{ "scheme": "query", "param": "key", "secret": { "env": "S1" } }"#),
        "none.json": RelayHarness.route("/open", verify: #"{ "scheme": "none" }"#),
        "blocked.json": RelayHarness.route("/blocked", verify: #"{ "scheme": "none", "allow_ips": ["203.0.113.0/24", "2001:db8::/32"] }"#),
        "allowed.json": RelayHarness.route("/allowed", verify: #"{ "scheme": "none", "allow_ips": ["127.0.0.0/8"] }"#),
    ]

    func harness() throws -> RelayHarness {
        var mappings = Self.mappings
        mappings["bearer.json"] = mappings["bearer.json"]!.replacingOccurrences(of: "/dev/null-placeholder", with: "{{DIR}}/bearer-secret")
        return try RelayHarness(
            mappings: mappings, files: ["bearer-secret": "n3w-rotated-secret\n"],
            environment: ["S1": Self.secret, "WHSEC": Self.whsec, "OLD": "0ld-secret"])
    }

    @Test func everySchemeAcceptsItsSignatureAndRejectsOthers() async throws {
        try await offPool { [self] in
            let relay = try harness()
            let body = RelayHarness.body
            let json = ("Content-Type", "application/json")
            var accepted = 0
            func expectAccepted(_ path: String, _ headers: [(String, String)], sourceLocation: SourceLocation = #_sourceLocation) throws {
                let response = try relay.post(path, body: body, headers: [json] + headers)
                #expect(response.status == 200, "\(path): \(response.text)", sourceLocation: sourceLocation)
                #expect(response.text == #"{"result":"success"}"#, sourceLocation: sourceLocation)
                accepted += 1
            }
            func expectRejected(_ path: String, _ headers: [(String, String)], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
                let response = try relay.post(path, body: body, headers: [json] + headers)
                #expect(response.status == 401, "\(path): \(response.text)", sourceLocation: sourceLocation)
                #expect(response.text == #"{"result":"fail","error":"invalid_signature","message":"\#(message)"}"#, sourceLocation: sourceLocation)
            }
            let mac = Sign.hmac256(Self.secret, body)

            try expectAccepted("/shopify", [("X-Shopify-Hmac-Sha256", Sign.base64(mac))])
            try expectRejected("/shopify", [("X-Shopify-Hmac-Sha256", Sign.base64(Sign.hmac256("wrong", body)))], "signature does not match")
            try expectRejected("/shopify", [], "missing X-Shopify-Hmac-Sha256 header")

            try expectAccepted("/woo", [("X-WC-Webhook-Signature", Sign.base64(mac))])
            try expectRejected("/woo", [("X-WC-Webhook-Signature", "AAAA")], "signature does not match")

            try expectAccepted("/github", [("X-Hub-Signature-256", "sha256=" + Sign.hex(mac))])
            try expectRejected("/github", [("X-Hub-Signature-256", "sha1=" + Sign.hex(mac))], "X-Hub-Signature-256 is not sha256=<hex>")

            let t = Sign.now
            let stripeMac = Sign.hex(Sign.hmac256(Self.secret, "\(t).\(body)"))
            try expectAccepted("/stripe", [("Stripe-Signature", "t=\(t),v1=\(Sign.hex(Sign.hmac256("other", "x"))),v1=\(stripeMac)")])
            let old = t - 3600
            try expectRejected("/stripe", [("Stripe-Signature", "t=\(old),v1=\(Sign.hex(Sign.hmac256(Self.secret, "\(old).\(body)")))")], "timestamp is outside the tolerance")
            try expectRejected("/stripe", [("Stripe-Signature", "t=\(t),v1=\(Sign.hex(Sign.hmac256(Self.secret, "\(t).{}")))")], "signature does not match")

            let id = "msg_2Lh9KRb0pzN4LePd3XiA4"
            let signed = ByteEncoding.base64(HMAC.authenticationCode(SHA256.self, key: Self.whsecKey, message: Array("\(id).\(t).\(body)".utf8)))
            try expectAccepted("/std", [("webhook-id", id), ("webhook-timestamp", "\(t)"), ("webhook-signature", "v1,AAAA v1,\(signed)")])
            try expectRejected("/std", [("webhook-id", id), ("webhook-timestamp", "\(old)"), ("webhook-signature", "v1,\(signed)")], "timestamp is outside the tolerance")
            try expectRejected("/std", [("webhook-id", "msg_other"), ("webhook-timestamp", "\(t)"), ("webhook-signature", "v1,\(signed)")], "signature does not match")

            try expectAccepted("/hmac-sha1", [("X-Sig", Sign.hex(HMAC.authenticationCode(SHA1.self, key: Array(Self.secret.utf8), message: Array(body.utf8))))])
            let sha512 = HMAC.authenticationCode(SHA512.self, key: Array(Self.secret.utf8), message: Array(body.utf8))
            try expectAccepted("/hmac-sha512", [("X-Sig", "v=" + Sign.base64(sha512, urlSafe: true))])
            try expectRejected("/hmac-sha512", [("X-Sig", Sign.base64(sha512, urlSafe: true))], "x-sig does not start with the expected prefix")

            // Rotation: either secret is accepted (one from the environment, one from a file).
            try expectAccepted("/bearer", [("Authorization", "Bearer 0ld-secret")])
            try expectAccepted("/bearer", [("Authorization", "Bearer n3w-rotated-secret")])
            try expectRejected("/bearer", [("Authorization", "Bearer guess")], "bearer token does not match")

            try expectAccepted("/header", [("X-Relay-Key", Self.secret)])
            try expectRejected("/header", [("X-Relay-Key", "nope")], "x-relay-key does not match")
            try expectAccepted("/query?key=\(Self.secret)", [])
            try expectRejected("/query?key=nope", [], "query parameter key does not match")
            try expectAccepted("/open", [])

            let blocked = try relay.post("/blocked", body: body)
            #expect(blocked.status == 403)
            try expectAccepted("/allowed", [])

            #expect(relay.recordedCalls == Array(repeating: RelayHarness.expectedCall, count: accepted))
        }
    }

    @Test func wooCommercePingIsAnsweredAndNotDelivered() async throws {
        try await offPool { [self] in
            let relay = try harness()
            let response = try relay.post("/woo", body: "webhook_id=15", headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(response.status == 200)
            #expect(response.text == #"{"result":"ignored","reason":"ping"}"#)
            #expect(relay.recordedCalls.isEmpty)
        }
    }

    @Test func verificationUsesTheRawBytes() async throws {
        try await offPool { [self] in
            let relay = try harness()
            // The same JSON re-serialized with other spacing no longer matches.
            let mac = Sign.hmac256(Self.secret, RelayHarness.body)
            let response = try relay.post("/shopify", body: #"{"uuid": "u-1", "room": "r-1"}"#, headers: [("Content-Type", "application/json"), ("X-Shopify-Hmac-Sha256", Sign.base64(mac))])
            #expect(response.status == 401)
            // A body that verifies but does not parse is a 400; one that does not verify is a 401 whatever it holds.
            let garbage = "{not json"
            let valid = try relay.post("/shopify", body: garbage, headers: [("Content-Type", "application/json"), ("X-Shopify-Hmac-Sha256", Sign.base64(Sign.hmac256(Self.secret, garbage)))])
            #expect(valid.status == 400)
            #expect(valid.text.contains("\"error\":\"invalid_json\""))
            let forged = try relay.post("/shopify", body: garbage, headers: [("Content-Type", "application/json"), ("X-Shopify-Hmac-Sha256", "AAAA")])
            #expect(forged.status == 401)
        }
    }
}
