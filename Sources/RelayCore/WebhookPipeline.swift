import FoundationEssentials
import RelayHTTP
import RelayMapping

/// A route ready to serve: its mapping, its verifier (nil when served unverified in a dry
/// run), the token it sends with (nil in a dry run), and its metrics. A class: every webhook
/// of the route, on every loop, holds it, and a copy of a struct this size retained each of
/// its fields, reference counts that the loops' cores then passed back and forth.
package final class ServedRoute: Sendable {
    package let route: MappingRoute
    package let verifier: WebhookVerifier?
    package let token: String?
    package let metrics: RouteMetrics

    package init(route: MappingRoute, verifier: WebhookVerifier?, token: String?, metrics: RouteMetrics) {
        self.route = route
        self.verifier = verifier
        self.token = token
        self.metrics = metrics
    }
}

/// A webhook that passed the address check, verification and body decoding.
package struct AdmittedWebhook: Sendable {
    /// The request document that paths read: body, headers, query, meta.
    package let document: JSONValue
    package let query: [(name: String, value: String)]
    /// False when the route is served without verification (a dry run without its secret).
    package let isVerified: Bool
    /// The route's dedupe key for this webhook, when it has one.
    package let dedupeKey: String?
}

/// What a webhook comes to, decided before any effect.
package enum WebhookDecision: Sendable {
    /// Answered as it is: ignored, a sync mapping failure, a dry run's bind.
    case finished(WebhookResult)
    /// Dry run: the calls are logged, nothing is stored or sent.
    case dryRun([MappedCall])
    /// Only bindings to store.
    case bind([BindingWrite])
    /// Sync: store the bindings, then send the calls and pass HappyTalk's answer on.
    case send([MappedCall], binds: [BindingWrite])
    /// Async: store the calls (and bindings, and the dedupe key) in one write, then answer 202.
    case enqueue([MappedCall], binds: [BindingWrite])
    /// Async: the rule matched but made an invalid call; the request is kept as a dead delivery.
    case deadLetter(MappingFailure)
}

/// The webhook pipeline's decisions, free of I/O: `admit` checks who sent a request and reads
/// its body; `decide` applies the route's rules. Effects (the store, HappyTalk, the answer)
/// are the executor's (`Relay`).
package enum WebhookPipeline {
    /// Order of work: `allow_ips`, signature over the raw bytes, then parsing. A body that does
    /// not verify is a 401 whatever it holds; one that verifies but does not parse is a 400.
    package static func admit(
        _ request: HTTPRequest, route served: ServedRoute, requestID: String, now: Int
    ) -> Result<AdmittedWebhook, WebhookFailure> {
        // Fields are read through `served`: a copy of the route would retain every one of them.
        let allowIPs = served.route.verify.allowIPs
        if !allowIPs.isEmpty && !allowIPs.contains(where: { $0.contains(request.remoteAddress) }) {
            return .failure(.answer(.rejected(Rejection(.forbidden, error: "forbidden", message: "this address may not call the route"))))
        }
        let headers = request.headers.fields
        let query = FormBody.pairs(Array(request.head.query.utf8))
        var isVerified = false
        if let verifier = served.verifier {
            switch verifier.verify(body: request.body, headers: headers, query: query, now: now / 1000) {
            case .verified:
                isVerified = true
            case .ping:
                return .failure(.answer(.ignored(reason: "ping")))
            case .rejected(let reason):
                return .failure(.verification(reason))
            }
        }
        let body: JSONValue
        switch RequestBody.decode(request.body, contentType: request.headers["content-type"], acceptsForm: served.route.acceptsForm) {
        case .success(let value): body = value
        case .failure(.invalidJSON(let detail)):
            return .failure(.answer(.rejected(Rejection(.badRequest, error: "invalid_json", message: "body is not valid JSON: \(detail)"))))
        case .failure(let problem):
            return .failure(.answer(.rejected(Rejection(.unsupportedMediaType, error: "unsupported_media_type", message: problem.message))))
        }
        let document = RequestDocument.make(
            body: body, headers: headers, query: query, route: served.route.path, receivedAt: RFC3339.timestamp(milliseconds: now), requestID: requestID,
            headerNames: served.route.readHeaderNames)
        let dedupeKey = served.route.dedupe.flatMap { $0.key.evaluate(in: document) }
        return .success(AdmittedWebhook(document: document, query: query, isVerified: isVerified, dedupeKey: dedupeKey))
    }

    /// Applies the route's rules to an admitted webhook, reading bindings from `bindings`.
    package static func decide(_ webhook: AdmittedWebhook, route: MappingRoute, isDryRun: Bool, bindings: any BindingLookup) -> WebhookDecision {
        switch route.apply(to: webhook.document, bindings: bindings) {
        case .ignored(let reason):
            return .finished(.ignored(reason: reason))
        case .bound(let writes):
            return isDryRun ? .finished(.bound(isDryRun: true)) : .bind(writes)
        case .failed(let failure):
            return route.delivery == .async && !isDryRun ? .deadLetter(failure) : .finished(.mappingFailed(failure, deadLetterID: nil))
        case .calls(let calls, let binds):
            if isDryRun { return .dryRun(calls) }
            return route.delivery == .async ? .enqueue(calls, binds: binds) : .send(calls, binds: binds)
        }
    }
}

/// Why `admit` stopped a webhook.
package enum WebhookFailure: Error, Sendable {
    /// Verification failed with this reason (counted and logged before the 401).
    case verification(String)
    /// Answered as it is.
    case answer(WebhookResult)
}
