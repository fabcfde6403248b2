import FoundationEssentials
import RelayCrypto
import RelayMapping

/// Checks that a webhook comes from who the route says (docs/mapping.md, "Verification
/// schemes"): always over the raw body bytes, comparing in constant time, and never
/// putting an expected signature or a secret in its reasons.
package final class WebhookVerifier: Sendable {
    /// The verdict on one request.
    package enum Verdict: Equatable, Sendable {
        case verified
        /// WooCommerce's unsigned creation ping: answered 200 and not delivered.
        case ping
        /// The reason is safe to show the sender.
        case rejected(String)
    }

    package let spec: VerifySpec
    /// The secrets' bytes, in rotation order, for the schemes that compare them (bearer,
    /// header, query); empty otherwise, and when unverified (dry run).
    private let secrets: [[UInt8]]
    /// The secrets prepared as HMAC keys, in rotation order, for the schemes that sign.
    private let macKeys: [HMACKey]

    /// A secret that libcrypto refuses as an HMAC key (a FIPS-mode libcrypto refuses short
    /// keys): every webhook of the route would be rejected, so the route is refused at load.
    package struct RefusedKey: Error {
        /// The secret's place in rotation order.
        package let index: Int
    }

    package init(spec: VerifySpec, secrets: [[UInt8]]) throws(RefusedKey) {
        self.spec = spec
        let hash: any HashFunction.Type
        switch spec.scheme {
        case .shopify, .woocommerce, .github, .stripe, .standardWebhooks:
            hash = SHA256.self
        case .hmac:
            switch spec.algorithm {
            case .sha256: hash = SHA256.self
            case .sha1: hash = SHA1.self
            case .sha512: hash = SHA512.self
            }
        case .bearer, .header, .query:
            self.secrets = secrets
            macKeys = []
            return
        case .none:
            self.secrets = []
            macKeys = []
            return
        }
        self.secrets = []
        var keys: [HMACKey] = []
        for (index, secret) in secrets.enumerated() {
            guard let key = HMACKey(hash, key: secret) else { throw RefusedKey(index: index) }
            keys.append(key)
        }
        macKeys = keys
    }

    /// Verifies a request. `headers` are lower-cased names; `now` is unix seconds.
    package func verify(
        body: [UInt8], headers: [(name: String, value: String)], query: [(name: String, value: String)], now: Int
    ) -> Verdict {
        func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
        switch spec.scheme {
        case .none:
            return .verified
        case .shopify:
            return matchBase64(header("x-shopify-hmac-sha256"), name: "X-Shopify-Hmac-Sha256", body: body)
        case .woocommerce:
            guard let signature = header("x-wc-webhook-signature") else {
                // WooCommerce sends "webhook_id=N" unsigned when a webhook is created.
                if Self.isWooCommercePing(body) { return .ping }
                return .rejected("missing X-WC-Webhook-Signature header")
            }
            return matchBase64(signature, name: "X-WC-Webhook-Signature", body: body)
        case .github:
            guard let signature = header("x-hub-signature-256") else { return .rejected("missing X-Hub-Signature-256 header") }
            guard signature.hasPrefix("sha256="), let given = ByteEncoding.decodeHex(String(signature.dropFirst(7))) else {
                return .rejected("X-Hub-Signature-256 is not sha256=<hex>")
            }
            return signatureVerdict(body, given: [given])
        case .stripe:
            return verifyStripe(header("stripe-signature"), body: body, now: now)
        case .standardWebhooks:
            return verifyStandardWebhooks(
                id: header("webhook-id"), timestamp: header("webhook-timestamp"), signatures: header("webhook-signature"), body: body,
                now: now)
        case .hmac:
            let name = spec.header ?? ""
            guard let value = header(name) else { return .rejected("missing \(name) header") }
            guard value.hasPrefix(spec.prefix) else { return .rejected("\(name) does not start with the expected prefix") }
            let encoded = String(value.dropFirst(spec.prefix.count))
            let given: [UInt8]?
            switch spec.encoding {
            case .hex: given = ByteEncoding.decodeHex(encoded)
            case .base64, .base64url: given = ByteEncoding.decodeBase64(encoded)
            }
            guard let given else { return .rejected("\(name) is not \(spec.encoding.rawValue)") }
            return signatureVerdict(body, given: [given])
        case .bearer:
            guard let authorization = header("authorization"), authorization.lowercased().hasPrefix("bearer ") else {
                return .rejected("missing Authorization: Bearer header")
            }
            let given = Array(authorization.dropFirst(7).utf8)
            return anySecret { secretEquals(given, $0) } ? .verified : .rejected("bearer token does not match")
        case .header:
            let name = spec.header ?? ""
            guard let value = header(name) else { return .rejected("missing \(name) header") }
            return anySecret { secretEquals(Array(value.utf8), $0) } ? .verified : .rejected("\(name) does not match")
        case .query:
            let name = spec.parameter ?? ""
            guard let value = query.last(where: { $0.name == name })?.value else { return .rejected("missing query parameter \(name)") }
            return anySecret { secretEquals(Array(value.utf8), $0) } ? .verified : .rejected("query parameter \(name) does not match")
        }
    }

    private func anySecret(_ matches: ([UInt8]) -> Bool) -> Bool { Self.any(of: secrets, matches) }

    /// Whether any item matches; every item is tried (no early exit), so timing does not tell
    /// which secret matched.
    private static func any<Item>(of items: [Item], _ matches: (Item) -> Bool) -> Bool {
        var matched = false
        for item in items where matches(item) { matched = true }
        return matched
    }

    private func matchBase64(_ value: String?, name: String, body: [UInt8]) -> Verdict {
        guard let value else { return .rejected("missing \(name) header") }
        guard let given = ByteEncoding.decodeBase64(value) else { return .rejected("\(name) is not base64") }
        return signatureVerdict(body, given: [given])
    }

    /// Verified when any secret's HMAC of `message` equals one of the `given` signatures.
    private func signatureVerdict(_ message: [UInt8], given: [[UInt8]]) -> Verdict {
        let matched = Self.any(of: macKeys) { key in
            let expected = key.authenticationCode(message)
            return given.contains { constantTimeEquals($0, expected) }
        }
        return matched ? .verified : .rejected("signature does not match")
    }

    private var toleranceSeconds: Int { Int(spec.tolerance.components.seconds) }

    /// A timestamp as senders write it: 1 to 12 ASCII digits (no sign, no spaces), so that
    /// no value from a request can overflow the arithmetic that follows.
    static func epochSeconds(_ text: Substring) -> Int? {
        guard (1...12).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }

    /// `now - timestamp`, or nil when it does not fit (never a trap).
    static func age(of timestamp: Int, now: Int) -> Int? {
        let (age, overflow) = now.subtractingReportingOverflow(timestamp)
        return overflow ? nil : age
    }

    /// Stripe: `t=TIMESTAMP,v1=HEX[,v1=HEX…]` over "TIMESTAMP.BODY" (Stripe docs, "Verify manually").
    private func verifyStripe(_ header: String?, body: [UInt8], now: Int) -> Verdict {
        guard let header else { return .rejected("missing Stripe-Signature header") }
        var timestampText: Substring?
        var signatures: [[UInt8]] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestampText = Substring(pair[1]) }
            if pair[0] == "v1", let bytes = ByteEncoding.decodeHex(pair[1]) { signatures.append(bytes) }
        }
        guard let timestampText else { return .rejected("Stripe-Signature has no timestamp") }
        guard let timestamp = Self.epochSeconds(timestampText) else { return .rejected("Stripe-Signature's timestamp is not a number") }
        guard !signatures.isEmpty else { return .rejected("Stripe-Signature has no v1 signature") }
        // Stripe's libraries accept an age of exactly the tolerance; a timestamp as far in the
        // future is refused too, which theirs do not check.
        guard let age = Self.age(of: timestamp, now: now), age.magnitude <= toleranceSeconds.magnitude else {
            return .rejected("timestamp is outside the tolerance")
        }
        return signatureVerdict(Array("\(timestampText).".utf8) + body, given: signatures)
    }

    /// Standard Webhooks: `v1,BASE64` signatures (space separated) over "ID.TIMESTAMP.BODY".
    private func verifyStandardWebhooks(id: String?, timestamp: String?, signatures: String?, body: [UInt8], now: Int) -> Verdict {
        guard let id, let timestamp, let signatures else {
            return .rejected("missing webhook-id, webhook-timestamp or webhook-signature header")
        }
        guard let seconds = Self.epochSeconds(Substring(timestamp)), let age = Self.age(of: seconds, now: now) else {
            return .rejected("webhook-timestamp is not a number")
        }
        // As the Standard Webhooks reference libraries decide with a clock finer than a second:
        // an age of exactly the tolerance is too old, a timestamp exactly that far ahead passes.
        guard age < toleranceSeconds, -age <= toleranceSeconds else { return .rejected("timestamp is outside the tolerance") }
        let given = signatures.split(separator: " ").compactMap { entry -> [UInt8]? in
            guard entry.hasPrefix("v1,") else { return nil }
            return ByteEncoding.decodeBase64(String(entry.dropFirst(3)))
        }
        guard !given.isEmpty else { return .rejected("webhook-signature has no v1 signature") }
        return signatureVerdict(Array("\(id).\(timestamp).".utf8) + body, given: given)
    }

    static func isWooCommercePing(_ body: [UInt8]) -> Bool {
        let pairs = FormBody.pairs(body)
        return pairs.count == 1 && pairs[0].name == "webhook_id" && !pairs[0].value.isEmpty
            && pairs[0].value.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    /// The bytes of a secret as the scheme uses them: a decoded (`hex:`, `base64:`) secret is
    /// the key; Standard Webhooks keys are the base64 after `whsec_`; everything else is the
    /// text itself. Nil when a whsec_ key is malformed.
    package static func key(from secret: SecretValue, scheme: VerifySpec.Scheme) -> [UInt8]? {
        guard scheme == .standardWebhooks, !secret.isDecoded else { return secret.bytes }
        var text = String(decoding: secret.bytes, as: UTF8.self)
        if text.hasPrefix("whsec_") { text.removeFirst(6) }
        return ByteEncoding.decodeBase64(text)
    }
}
