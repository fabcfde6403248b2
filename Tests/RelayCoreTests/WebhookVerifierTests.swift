import Testing

@testable import RelayCore
@testable import RelayCrypto
@testable import RelayMapping

/// Every scheme's edges with an injected clock: exactly at the tolerance, one second past it,
/// in the future, and timestamps that would overflow arithmetic.
@Suite struct WebhookVerifierTests {
    static let secret = Array("sh4red-s3cret".utf8)
    static let body = Array(#"{"uuid":"u-1","room":"r-1"}"#.utf8)
    static let now = 1_800_000_000

    func verifier(_ scheme: VerifySpec.Scheme, tolerance: Duration = .seconds(300), configure: (inout VerifySpec) -> Void = { _ in })
        -> WebhookVerifier
    {
        var spec = VerifySpec(scheme: scheme)
        spec.tolerance = tolerance
        configure(&spec)
        // A key libcrypto refused would crash the test here rather than fail it as a mismatch later.
        return try! WebhookVerifier(spec: spec, secrets: [Self.secret])
    }

    func stripeHeader(_ timestamp: String, body: [UInt8] = body) -> String {
        "t=\(timestamp),v1=" + ByteEncoding.hex(HMAC.authenticationCode(SHA256.self, key: Self.secret, message: Array("\(timestamp).".utf8) + body))
    }

    func stripe(_ header: String) -> WebhookVerifier.Verdict {
        verifier(.stripe).verify(body: Self.body, headers: [("stripe-signature", header)], query: [], now: Self.now)
    }

    /// Only WooCommerce's own creation ping (`webhook_id=N`, form-encoded) goes unsigned; any
    /// other body without a signature is refused, so an attacker cannot pass as a ping.
    @Test func onlyTheExactWooCommercePingGoesUnsigned() {
        let woo = verifier(.woocommerce)
        func verdict(_ text: String) -> WebhookVerifier.Verdict { woo.verify(body: Array(text.utf8), headers: [], query: [], now: Self.now) }
        #expect(verdict("webhook_id=42") == .ping)
        #expect(verdict(#"{"id":727,"status":"completed"}"#) == .rejected("missing X-WC-Webhook-Signature header"))
        #expect(verdict("webhook_id=42&status=completed") == .rejected("missing X-WC-Webhook-Signature header"))
        #expect(verdict("webhook_id=x") == .rejected("missing X-WC-Webhook-Signature header"))
        #expect(verdict("webhook_id=") == .rejected("missing X-WC-Webhook-Signature header"))
    }

    @Test func stripeAcceptsAnAgeOfExactlyTheToleranceEitherWay() {
        #expect(stripe(stripeHeader("\(Self.now)")) == .verified)
        #expect(stripe(stripeHeader("\(Self.now - 300)")) == .verified)
        #expect(stripe(stripeHeader("\(Self.now + 300)")) == .verified)
        #expect(stripe(stripeHeader("\(Self.now - 301)")) == .rejected("timestamp is outside the tolerance"))
        #expect(stripe(stripeHeader("\(Self.now + 301)")) == .rejected("timestamp is outside the tolerance"))
    }

    @Test func stripeRefusesTimestampsThatAreNotPlainDigitsWithoutTrapping() {
        for timestamp in ["-9223372036854775808", "9223372036854775807", "99999999999999999999999", "+1800000000", "1800000000x", "1e9", ""] {
            #expect(stripe(stripeHeader(timestamp)) == .rejected(timestamp.isEmpty ? "Stripe-Signature has no timestamp" : "Stripe-Signature's timestamp is not a number"), "\(timestamp)")
        }
    }

    func standard(_ timestamp: String, id: String = "msg_1") -> WebhookVerifier.Verdict {
        let key = Self.secret
        let signature = ByteEncoding.base64(HMAC.authenticationCode(SHA256.self, key: key, message: Array("\(id).\(timestamp).".utf8) + Self.body))
        return verifier(.standardWebhooks).verify(
            body: Self.body, headers: [("webhook-id", id), ("webhook-timestamp", timestamp), ("webhook-signature", "v1,\(signature)")], query: [],
            now: Self.now)
    }

    /// As the reference libraries decide (their clock has sub-second precision): an age of
    /// exactly the tolerance is too old; as far ahead is still accepted.
    @Test func standardWebhooksToleranceEdgesFollowTheReferenceLibraries() {
        #expect(standard("\(Self.now)") == .verified)
        #expect(standard("\(Self.now - 299)") == .verified)
        #expect(standard("\(Self.now - 300)") == .rejected("timestamp is outside the tolerance"))
        #expect(standard("\(Self.now + 300)") == .verified)
        #expect(standard("\(Self.now + 301)") == .rejected("timestamp is outside the tolerance"))
        #expect(standard("\(Self.now + 3000)") == .rejected("timestamp is outside the tolerance"))
    }

    @Test func standardWebhooksRefusesTimestampsThatWouldOverflow() {
        for timestamp in ["-9223372036854775808", "9223372036854775807", "18446744073709551616", "-1", "1800000000.5"] {
            #expect(standard(timestamp) == .rejected("webhook-timestamp is not a number"), "\(timestamp)")
        }
    }

    @Test func aLongerToleranceIsHonouredAndNoMore() {
        let wide = verifier(.stripe, tolerance: .seconds(3600))
        let verdict: (Int) -> WebhookVerifier.Verdict = { age in
            wide.verify(body: Self.body, headers: [("stripe-signature", stripeHeader("\(Self.now - age)"))], query: [], now: Self.now)
        }
        #expect(verdict(3600) == .verified)
        #expect(verdict(3601) == .rejected("timestamp is outside the tolerance"))
    }

    @Test func sharedSecretSchemesCompareWhateverTheLength() {
        let bearer = verifier(.bearer)
        for given in ["sh4red-s3cret", "sh4red-s3creT", "sh4red", "sh4red-s3cret-and-more", ""] {
            let verdict = bearer.verify(body: [], headers: [("authorization", "Bearer \(given)")], query: [], now: Self.now)
            #expect(verdict == (given == "sh4red-s3cret" ? .verified : .rejected("bearer token does not match")), "\(given)")
        }
        let query = verifier(.query) { $0.parameter = "key" }
        #expect(query.verify(body: [], headers: [], query: [("key", "sh4red-s3cret")], now: Self.now) == .verified)
        #expect(query.verify(body: [], headers: [], query: [("key", "sh4red-s3cre")], now: Self.now) == .rejected("query parameter key does not match"))
        let header = verifier(.header) { $0.header = "x-relay-key" }
        #expect(header.verify(body: [], headers: [("x-relay-key", "sh4red-s3cret")], query: [], now: Self.now) == .verified)
        #expect(header.verify(body: [], headers: [("x-relay-key", "x")], query: [], now: Self.now) == .rejected("x-relay-key does not match"))
    }

    @Test func secretEqualityIsByValue() {
        #expect(secretEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!secretEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!secretEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!secretEquals([], Array("a".utf8)))
    }
}
