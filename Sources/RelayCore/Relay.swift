import Foundation
import RelayHTTP
import RelayMapping
import Synchronization

/// The webhook pipeline: ingress → allow_ips → verify → parse → dedupe → map → validate →
/// deliver. Each compiled route is served at its path; answers follow interface.md.
package final class Relay: Sendable {
    /// A route ready to serve: its mapping, its verifier (nil when served unverified in a
    /// dry run), and the token it sends with (nil in a dry run).
    struct ServedRoute: Sendable {
        let route: MappingRoute
        let verifier: WebhookVerifier?
        let token: String?
        let metrics: RouteMetrics
    }

    private let served: [ServedRoute]
    private let upstream: HappyTalkUpstream?
    private let queue: DeliveryQueue?
    /// Where rules that `resolve` look bindings up, and sync routes their dedupe keys (nil:
    /// nothing is bound and keys live in memory only, as in a dry run).
    private let lookups: SQLiteBindings?
    private let logger: Logger
    private let metrics: RelayMetrics
    private let dedupe = DedupeWindow()
    /// Unix milliseconds.
    private let clock: @Sendable () -> Int

    /// Whether nothing is sent (no token configured, or `--dry-run`).
    package let isDryRun: Bool
    /// Routes served without verification because their secret is not set (dry run only).
    package let unverifiedRoutes: [String]

    /// Prepares routes: resolves secrets and tokens, failing closed with every problem as
    /// `FILE: POINTER: message` unless in a dry run, where unverifiable routes are served
    /// unverified (and named in the log).
    package init(
        routes: [MappingRoute], credentials: Credentials, upstream: HappyTalkUpstream?, queue: DeliveryQueue? = nil,
        lookups: SQLiteBindings? = nil, dryRun: Bool, environment: [String: String], logger: Logger,
        metrics: RelayMetrics = RelayMetrics(), clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970 * 1000) }
    ) throws(MappingDiagnostics) {
        let isDryRun = dryRun || credentials.isEmpty
        var problems: [MappingDiagnostic] = []
        var served: [ServedRoute] = []
        var unverified: [String] = []
        for route in routes {
            var keys: [[UInt8]] = []
            var missing: [String] = []
            for (index, reference) in route.verify.secrets.enumerated() {
                let pointer = route.verify.secrets.count == 1 ? "/verify/secret" : "/verify/secrets/\(index)"
                switch Secrets.resolve(reference, environment: environment) {
                case .success(let text):
                    if let key = WebhookVerifier.key(from: text, scheme: route.verify.scheme) {
                        keys.append(key)
                    } else {
                        problems.append(MappingDiagnostic(file: route.file, pointer: pointer, message: "\(reference) is not a whsec_ base64 key"))
                    }
                case .failure(let error):
                    missing.append(error.message)
                    if !isDryRun { problems.append(MappingDiagnostic(file: route.file, pointer: pointer, message: error.message)) }
                }
            }
            var verifier: WebhookVerifier? = WebhookVerifier(spec: route.verify, secrets: keys)
            if isDryRun && !missing.isEmpty {
                verifier = nil
                unverified.append(route.path)
            }
            let token = credentials.token(named: route.credential)
            if !isDryRun && token == nil {
                problems.append(
                    MappingDiagnostic(
                        file: route.file, pointer: "/credential",
                        message: "\(Credentials.variable(for: route.credential)) is not set (the route's credential)"))
            }
            served.append(
                ServedRoute(
                    route: route, verifier: verifier, token: isDryRun ? nil : token,
                    metrics: metrics.route(route.path, scheme: route.verify.scheme.rawValue)))
        }
        if !problems.isEmpty { throw MappingDiagnostics(problems) }
        self.served = served
        self.unverifiedRoutes = unverified
        self.upstream = upstream
        self.queue = queue
        self.lookups = lookups
        self.logger = logger
        self.metrics = metrics
        self.isDryRun = isDryRun
        self.clock = clock
    }

    /// Adds every route to the router.
    package func register(in router: inout Router) {
        for route in served {
            router.add(.post, route.route.path, .deferred { [self] request, responder in handle(request, route: route, responder: responder) })
        }
    }

    // MARK: The pipeline

    /// Answers a webhook: logs, counts and sends the answer.
    typealias Finish = @Sendable (HTTPResponse, WebhookOutcome, String) -> Void

    func handle(_ request: HTTPRequest, route served: ServedRoute, responder: HTTPResponder) {
        let started = ContinuousClock.now
        let requestID = Self.makeID()
        let route = served.route
        let finish: Finish = { [logger, metrics = served.metrics] response, outcome, rule in
            defer { responder.respond(response) }
            let elapsed = ContinuousClock.now - started
            metrics.answered(outcome, after: elapsed)
            // The line costs a formatted duration: build it only when it will be written.
            guard logger.level <= .info else { return }
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            logger.info(
                "webhook",
                [
                    "route": route.path, "rule": rule, "outcome": outcome.rawValue, "status": String(response.status.code),
                    "duration_ms": String(format: "%.2f", milliseconds), "request_id": requestID,
                ])
        }
        if !route.verify.allowIPs.isEmpty && !route.verify.allowIPs.contains(where: { $0.contains(request.remoteAddress) }) {
            finish(HTTPErrorBody.response(.forbidden, error: "forbidden", message: "this address may not call the route"), .rejected, "")
            return
        }
        let headers = request.headers.fields
        let query = FormBody.pairs(Array(request.head.query.utf8))
        let now = clock()
        let verified: Bool
        if let verifier = served.verifier {
            switch verifier.verify(body: request.body, headers: headers, query: query, now: now / 1000) {
            case .verified:
                verified = true
            case .ping:
                finish(Self.json(.ok, [("result", "ignored"), ("reason", "ping")]), .ignored, "")
                return
            case .rejected(let reason):
                served.metrics.verificationFailures.increment()
                logger.warning("verification failed", ["route": route.path, "scheme": route.verify.scheme.rawValue, "reason": reason, "request_id": requestID])
                finish(HTTPErrorBody.response(.unauthorized, error: "invalid_signature", message: reason), .rejected, "")
                return
            }
        } else {
            verified = false
        }
        let body: JSONValue
        switch RequestBody.decode(request.body, contentType: request.headers["content-type"], acceptsForm: route.acceptsForm, keeping: route.bodyProjection) {
        case .success(let value): body = value
        case .failure(.invalidJSON(let detail)):
            finish(HTTPErrorBody.response(.badRequest, error: "invalid_json", message: "body is not valid JSON: \(detail)"), .rejected, "")
            return
        case .failure(let problem):
            finish(HTTPErrorBody.response(.unsupportedMediaType, error: "unsupported_media_type", message: problem.message), .rejected, "")
            return
        }
        let document = RequestDocument.make(
            body: body, headers: headers, query: query, route: route.path, receivedAt: RequestBody.timestamp(Date()), requestID: requestID)
        // A dedupe key is reserved now, so that the same event arriving twice at once is handled
        // once; it is marked handled when its webhook is, and released when it is not.
        var key: DedupeRecord?
        if let dedupeSpec = route.dedupe, let text = dedupeSpec.key.evaluate(in: document) {
            let record = DedupeRecord(
                digest: DedupeDigest(route: route.path, key: text), firstID: requestID,
                expiresAt: RetryPolicy.adding(now, RetryPolicy.milliseconds(dedupeSpec.window)))
            switch dedupe.check(record.digest, id: requestID, expiresAt: record.expiresAt, now: now) {
            case .duplicate(let first):
                finish(Self.json(.ok, [("result", "duplicate"), ("id", first)]), .duplicate, "")
                return
            case .inFlight:
                // Not `duplicate`: the first may still fail, and then this event must be sent again.
                var response = HTTPErrorBody.response(
                    .conflict, error: "in_progress", message: "the same event is being handled now; retry shortly")
                response.headers.add(name: "retry-after", value: "1")
                finish(response, .duplicate, "")
                return
            case .reserved:
                // Async routes meet stored keys in their write; a sync route asks before it sends.
                if route.delivery == .sync, let first = lookups?.firstID(for: record.digest) {
                    dedupe.markHandled(record.digest, id: first, expiresAt: record.expiresAt)
                    finish(Self.json(.ok, [("result", "duplicate"), ("id", first)]), .duplicate, "")
                    return
                }
            }
            key = record
        }
        let context = WebhookContext(relay: self, route: served, request: request, query: query, requestID: requestID, key: key, finish: finish)
        let extra: [(String, String)] = verified ? [] : [("verified", "false")]
        switch route.apply(to: document, bindings: lookups ?? NoBindings()) {
        case .ignored(let reason):
            context.release()
            finish(Self.json(.ok, [("result", "ignored"), ("reason", reason)], extra: extra), .ignored, "")
        case .bound(let writes):
            guard !isDryRun, let queue else {
                // Nothing is stored in a dry run.
                context.release()
                finish(Self.json(.ok, [("result", "bound")], extra: [("dry_run", "true")] + extra), .bound, "")
                return
            }
            queue.write(WebhookWrite(dedupe: key, bindings: writes)) { result in
                context.answerStored(result, rule: "", outcome: .bound) { Self.json(.ok, [("result", "bound")], extra: extra) }
            }
        case .failed(let failure):
            context.release()
            metrics.mappingFailed(route: route.path, field: failure.field)
            logger.warning("mapping failed", ["route": route.path, "rule": failure.rule, "field": failure.field, "request_id": requestID])
            if route.delivery == .async, !isDryRun, let queue {
                // Kept as a dead delivery with the raw request, so a fixed mapping can replay it;
                // answered 2xx because resending cannot fix a mapping.
                let dead = NewDelivery(
                    id: requestID, route: route.path, credential: route.credential ?? "", roomID: "", call: "{}",
                    request: Self.replayRecord(request, query: query, route: route), deadReason: "mapping failed: \(failure)")
                queue.write(WebhookWrite(deliveries: [dead])) { result in
                    switch result {
                    case .success:
                        finish(
                            Self.json(.accepted, [("result", "fail"), ("error", "mapping_failed"), ("message", failure.description), ("id", requestID)]),
                            .failed, failure.rule)
                    case .failure(let error):
                        finish(Self.storeErrorAnswer(error), .failed, failure.rule)
                    }
                }
                return
            }
            finish(HTTPErrorBody.response(.unprocessableContent, error: "mapping_failed", message: failure.description), .failed, failure.rule)
        case .calls(let calls, let binds):
            deliver(calls, binds: binds, context: context, extra: extra)
        }
    }

    /// One webhook on its way through the pipeline: what its answer needs, and its dedupe key.
    struct WebhookContext: Sendable {
        let relay: Relay
        let route: ServedRoute
        let request: HTTPRequest
        let query: [(name: String, value: String)]
        let requestID: String
        let key: DedupeRecord?
        let finish: Finish

        /// The key's webhook was not handled: a retry by the sender will be.
        func release() {
            if let key { relay.dedupe.release(key.digest, id: requestID) }
        }

        /// The key's webhook was handled (by `id`, the first to have the key).
        func markHandled(firstID: String? = nil) {
            if let key { relay.dedupe.markHandled(key.digest, id: firstID ?? requestID, expiresAt: key.expiresAt) }
        }

        /// Answers a committed (or refused) write: `success()` when stored, `duplicate` when the
        /// store already had the key, the store's error otherwise.
        func answerStored(
            _ result: Result<StoreOutcome, StoreError>, rule: String, outcome: WebhookOutcome, success: () -> HTTPResponse
        ) {
            switch result {
            case .success(.stored):
                markHandled()
                finish(success(), outcome, rule)
            case .success(.duplicate(let first)):
                markHandled(firstID: first)
                finish(Relay.json(.ok, [("result", "duplicate"), ("id", first)]), .duplicate, rule)
            case .failure(let error):
                release()
                if case .bindingConflict(let kind) = error {
                    relay.logger.warning(
                        "binding refused: the key is bound to another chat", ["route": route.route.path, "kind": kind, "request_id": requestID])
                }
                finish(Relay.storeErrorAnswer(error), .failed, rule)
            }
        }
    }

    /// The answer for a write the store refused.
    static func storeErrorAnswer(_ error: StoreError) -> HTTPResponse {
        switch error {
        case .bindingConflict:
            return HTTPErrorBody.response(.conflict, error: "binding_conflict", message: error.description)
        case .full, .unavailable, .stopping:
            var response = HTTPErrorBody.response(.serviceUnavailable, error: "unavailable", message: "\(error.description); retry later")
            response.headers.add(name: "retry-after", value: "5")
            return response
        }
    }

    /// Sends the calls (sync), queues them (async), or logs them (dry run), then answers.
    private func deliver(_ calls: [MappedCall], binds: [BindingWrite], context: WebhookContext, extra: [(String, String)]) {
        let route = context.route.route
        let finish = context.finish
        let requestID = context.requestID
        let rules = calls.map(\.rule).joined(separator: ",")
        if isDryRun {
            for call in calls {
                logger.info("dry run: would send", ["route": route.path, "rule": call.rule, "call": String(decoding: call.body(token: "***"), as: UTF8.self), "request_id": requestID])
            }
            context.markHandled()
            if route.delivery == .sync {
                finish(Self.json(.ok, [("result", "success")], extra: [("dry_run", "true")] + extra), .accepted, rules)
            } else {
                finish(Self.json(.accepted, [("result", "accepted"), ("id", requestID)], extra: [("dry_run", "true")] + extra), .accepted, rules)
            }
            return
        }
        if route.delivery == .async {
            guard let queue else {
                context.release()
                finish(Self.storeErrorAnswer(.unavailable("the queue is not available")), .failed, rules)
                return
            }
            let record = Self.replayRecord(context.request, query: context.query, route: route)
            let deliveries = calls.enumerated().map { index, call in
                NewDelivery(
                    id: index == 0 ? requestID : "\(requestID)-\(index)", route: route.path, credential: route.credential ?? "",
                    roomID: call["room_id"] ?? "", call: Self.fieldsObject(call), request: record, deadReason: nil)
            }
            // The deliveries, their bindings and the dedupe key: one write, stored before the 202.
            queue.write(WebhookWrite(deliveries: deliveries, dedupe: context.key, bindings: binds)) { result in
                context.answerStored(result, rule: rules, outcome: .accepted) {
                    Self.json(.accepted, [("result", "accepted"), ("id", requestID)])
                }
            }
            return
        }
        guard !binds.isEmpty, let queue else {
            send(calls, context: context, rules: rules)
            return
        }
        // Bindings are stored (durably) before the call is made.
        queue.write(WebhookWrite(bindings: binds)) { [self] result in
            switch result {
            case .success: send(calls, context: context, rules: rules)
            case .failure: context.answerStored(result, rule: rules, outcome: .failed) { HTTPResponse() }
            }
        }
    }

    /// A sync route's calls, one after the other, answered with HappyTalk's verdict.
    private func send(_ calls: [MappedCall], context: WebhookContext, rules: String) {
        let route = context.route.route
        guard let upstream, let token = context.route.token else {
            context.release()
            context.finish(Self.storeErrorAnswer(.unavailable("no upstream is configured")), .failed, rules)
            return
        }
        let timeout = route.timeout
        let logger = logger
        let metrics = metrics
        let queue = queue
        Task {
            var answer = Self.json(.ok, [("result", "success")])
            var outcome = WebhookOutcome.accepted
            for call in calls {
                let sent = ContinuousClock.now
                let result = await upstream.send(call, token: token, timeout: timeout)
                if result == .success {
                    metrics.delivery(sync: true, .delivered, result: result, latency: ContinuousClock.now - sent)
                    continue
                }
                metrics.delivery(sync: true, .failed, result: result, latency: nil)
                outcome = .failed
                answer = Self.answer(for: result, timeout: timeout)
                if case .failed(let code, let message, true) = result {
                    logger.error("HappyTalk refused the relay's credential: check the token", ["route": route.path, "code": String(code), "message": message, "request_id": context.requestID])
                } else if case .transient(let reason) = result {
                    // The sender gets a stable error; what went wrong stays in the log.
                    logger.warning("HappyTalk could not be reached", ["route": route.path, "reason": reason, "request_id": context.requestID])
                }
                break
            }
            if outcome == .accepted {
                // Remembered only once delivered, so that a sender's retry after a failure is sent.
                context.markHandled()
                if let key = context.key { queue?.write(WebhookWrite(dedupe: key)) { _ in } }
            } else {
                context.release()
            }
            context.finish(answer, outcome, rules)
        }
    }

    /// A call's fields as a JSON object, without the token.
    static func fieldsObject(_ call: MappedCall) -> String {
        JSONSerializer.objectText(call.fields.map { (key: $0.name, value: $0.value) })
    }

    /// What replay needs of a request: the headers and query parameters its paths read
    /// (never Authorization, a verification header or a secret query parameter) and the body.
    static func replayRecord(_ request: HTTPRequest, query: [(name: String, value: String)], route: MappingRoute) -> String {
        let secretHeader = route.verify.scheme == .header ? route.verify.header : nil
        let secretParameter = route.verify.scheme == .query ? route.verify.parameter : nil
        let headers = request.headers.fields.filter { field in
            field.name != "authorization" && field.name != secretHeader && field.name != "cookie"
                && (route.readsHeader(field.name) || field.name == "content-type")
        }
        let query = query.filter { $0.name != secretParameter }
        var output: [UInt8] = Array(#"{"headers":"#.utf8)
        JSONSerializer.writeObject(headers.map { (key: $0.name, value: $0.value) }, to: &output)
        output += Array(#","query":"#.utf8)
        JSONSerializer.writeObject(query.map { (key: $0.name, value: $0.value) }, to: &output)
        output += Array(#","body":"#.utf8)
        JSONSerializer.writeString(String(decoding: request.body, as: UTF8.self), to: &output)
        output.append(UInt8(ascii: "}"))
        return String(decoding: output, as: UTF8.self)
    }

    /// The sync answer for a failed delivery.
    static func answer(for result: UpstreamResult, timeout: Duration) -> HTTPResponse {
        switch result {
        case .success:
            return json(.ok, [("result", "success")])
        case .failed(let code, let message, _):
            return .json(.badGateway, "{\"result\":\"fail\",\"code\":\(code),\"message\":\"\(JSONText.escaped(message))\"}")
        case .timedOut:
            return HTTPErrorBody.response(.gatewayTimeout, error: "upstream_timeout", message: "HappyTalk did not answer within \(timeout)")
        case .unavailable(let status):
            return HTTPErrorBody.response(.badGateway, error: "upstream_unavailable", message: "HappyTalk answered HTTP \(status)")
        case .transient:
            return HTTPErrorBody.response(.badGateway, error: "upstream_unreachable", message: "HappyTalk could not be reached")
        }
    }

    /// A JSON object of string members, plus literal members (`true`/`false`) in `extra`.
    static func json(_ status: HTTPStatus, _ members: [(String, String)], extra: [(String, String)] = []) -> HTTPResponse {
        var text = "{"
        for (index, (key, value)) in members.enumerated() {
            if index > 0 { text += "," }
            text += "\"\(key)\":\"\(JSONText.escaped(value))\""
        }
        for (key, literal) in extra { text += ",\"\(key)\":\(literal)" }
        return .json(status, text + "}")
    }

    /// A random 16-hex-digit id for requests and deliveries.
    static func makeID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
