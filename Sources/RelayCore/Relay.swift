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
    /// Where rules that `resolve` look bindings up (nil: nothing is bound, as in a dry run).
    private let bindings: (any BindingLookup)?
    private let logger: Logger
    private let metrics: RelayMetrics
    private let dedupe = DedupeWindow()
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
        bindings: (any BindingLookup)? = nil, dryRun: Bool,
        environment: [String: String], logger: Logger, metrics: RelayMetrics = RelayMetrics(), clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
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
        if let queue, let keys = try? queue.dedupeKeys() { dedupe.load(keys) }
        self.served = served
        self.unverifiedRoutes = unverified
        self.upstream = upstream
        self.queue = queue
        self.bindings = bindings
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

    func handle(_ request: HTTPRequest, route served: ServedRoute, responder: HTTPResponder) {
        let started = ContinuousClock.now
        let requestID = Self.makeID()
        let route = served.route
        let finish: @Sendable (HTTPResponse, WebhookOutcome, String) -> Void = { [logger, metrics = served.metrics] response, outcome, rule in
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
        let verified: Bool
        if let verifier = served.verifier {
            switch verifier.verify(body: request.body, headers: headers, query: query, now: clock()) {
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
        let dedupeKey = route.dedupe.flatMap { $0.key.evaluate(in: document) }
        if let dedupeKey, let first = dedupe.firstID(route: route.path, key: dedupeKey, now: clock()) {
            finish(Self.json(.ok, [("result", "duplicate"), ("id", first)]), .duplicate, "")
            return
        }
        // A key counts as seen once its webhook is handled (queued, or delivered for sync
        // routes), so that a sender's retry after a failure is not turned away.
        let rememberKey: @Sendable () -> Void = { [dedupe, queue, clock] in
            guard let dedupeKey, let window = route.dedupe?.window else { return }
            let expires = dedupe.remember(route: route.path, key: dedupeKey, id: requestID, window: window, now: clock())
            queue?.rememberDedupeKey(DedupeWindow.compound(route.path, dedupeKey), id: requestID, expiresAt: expires * 1000)
        }
        let extra: [(String, String)] = verified ? [] : [("verified", "false")]
        switch route.apply(to: document, bindings: bindings ?? NoBindings()) {
        case .ignored(let reason):
            finish(Self.json(.ok, [("result", "ignored"), ("reason", reason)], extra: extra), .ignored, "")
        case .bound(let writes):
            guard !isDryRun, let queue else {
                // Nothing is stored in a dry run.
                finish(Self.json(.ok, [("result", "bound")], extra: [("dry_run", "true")] + extra), .bound, "")
                return
            }
            queue.bind(writes) { result in
                switch result {
                case .success:
                    rememberKey()
                    finish(Self.json(.ok, [("result", "bound")], extra: extra), .bound, "")
                case .failure(let error):
                    finish(HTTPErrorBody.response(.serviceUnavailable, error: "unavailable", message: "\(error.description); retry later"), .failed, "")
                }
            }
        case .failed(let failure):
            metrics.mappingFailed(route: route.path, field: failure.field)
            logger.warning("mapping failed", ["route": route.path, "rule": failure.rule, "field": failure.field, "request_id": requestID])
            if route.delivery == .async, !isDryRun, let queue {
                // Kept as a dead delivery with the raw request, so a fixed mapping can replay it;
                // answered 2xx because resending cannot fix a mapping (interface.md).
                let dead = NewDelivery(
                    id: requestID, route: route.path, credential: route.credential ?? "", roomID: "", call: "{}",
                    request: Self.replayRecord(request, query: query, route: route), deadReason: "mapping failed: \(failure)")
                queue.enqueue([dead]) { result in
                    switch result {
                    case .success:
                        finish(
                            Self.json(.accepted, [("result", "fail"), ("error", "mapping_failed"), ("message", failure.description), ("id", requestID)]),
                            .failed, failure.rule)
                    case .failure:
                        finish(HTTPErrorBody.response(.serviceUnavailable, error: "unavailable", message: "the queue cannot be written; retry later"), .failed, failure.rule)
                    }
                }
                return
            }
            finish(HTTPErrorBody.response(.unprocessableContent, error: "mapping_failed", message: failure.description), .failed, failure.rule)
        case .calls(let calls, let binds) where !binds.isEmpty && !isDryRun && queue != nil:
            // Bindings are stored (durably) before the call is made or queued.
            queue?.bind(binds) { [self] result in
                switch result {
                case .success: deliver(calls, route: served, request: request, query: query, requestID: requestID, extra: extra, rememberKey: rememberKey, finish: finish)
                case .failure(let error):
                    finish(HTTPErrorBody.response(.serviceUnavailable, error: "unavailable", message: "\(error.description); retry later"), .failed, "")
                }
            }
        case .calls(let calls, _):
            deliver(calls, route: served, request: request, query: query, requestID: requestID, extra: extra, rememberKey: rememberKey, finish: finish)
        }
    }

    /// Sends the calls (sync), queues them (async), or logs them (dry run), then answers.
    private func deliver(
        _ calls: [MappedCall], route served: ServedRoute, request: HTTPRequest, query: [(name: String, value: String)], requestID: String,
        extra: [(String, String)],
        rememberKey: @escaping @Sendable () -> Void, finish: @escaping @Sendable (HTTPResponse, WebhookOutcome, String) -> Void
    ) {
        let route = served.route
        let rules = calls.map(\.rule).joined(separator: ",")
        if isDryRun {
            for call in calls {
                logger.info("dry run: would send", ["route": route.path, "rule": call.rule, "call": String(decoding: call.body(token: "***"), as: UTF8.self), "request_id": requestID])
            }
            rememberKey()
            if route.delivery == .sync {
                finish(Self.json(.ok, [("result", "success")], extra: [("dry_run", "true")] + extra), .accepted, rules)
            } else {
                finish(Self.json(.accepted, [("result", "accepted"), ("id", requestID)], extra: [("dry_run", "true")] + extra), .accepted, rules)
            }
            return
        }
        if route.delivery == .async {
            guard let queue else {
                finish(HTTPErrorBody.response(.serviceUnavailable, error: "unavailable", message: "the queue is not available; retry later"), .failed, rules)
                return
            }
            let record = Self.replayRecord(request, query: query, route: route)
            let deliveries = calls.enumerated().map { index, call in
                NewDelivery(
                    id: index == 0 ? requestID : "\(requestID)-\(index)", route: route.path, credential: route.credential ?? "",
                    roomID: call["room_id"] ?? "", call: Self.fieldsObject(call), request: record, deadReason: nil)
            }
            queue.enqueue(deliveries) { result in
                switch result {
                case .success:
                    rememberKey()
                    finish(Self.json(.accepted, [("result", "accepted"), ("id", requestID)]), .accepted, rules)
                case .failure(let error):
                    finish(HTTPErrorBody.response(.serviceUnavailable, error: "unavailable", message: "\(error.description); retry later"), .failed, rules)
                }
            }
            return
        }
        guard let upstream, let token = served.token else {
            finish(HTTPErrorBody.response(.serviceUnavailable, error: "unavailable", message: "no upstream is configured"), .failed, rules)
            return
        }
        let timeout = route.timeout
        let logger = logger
        let metrics = metrics
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
                    logger.error("HappyTalk refused the relay's credential: check the token", ["route": route.path, "code": String(code), "message": message, "request_id": requestID])
                }
                break
            }
            if outcome == .accepted { rememberKey() }
            finish(answer, outcome, rules)
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
        case .transient(let reason):
            return HTTPErrorBody.response(.badGateway, error: "upstream_unreachable", message: reason)
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

/// Dedupe keys seen recently: in memory for the check, persisted by the queue so that they
/// outlive a restart.
final class DedupeWindow: Sendable {
    private let seen = Mutex<[String: (id: String, expires: Int)]>([:])

    static func compound(_ route: String, _ key: String) -> String { route + "\u{0}" + key }

    /// The first id for this key when it was seen inside its window.
    func firstID(route: String, key: String, now: Int) -> String? {
        seen.withLock { seen in
            guard let entry = seen[Self.compound(route, key)], entry.expires > now else { return nil }
            return entry.id
        }
    }

    /// Records a key (keeping an earlier unexpired id); returns when it expires (unix seconds).
    @discardableResult
    func remember(route: String, key: String, id: String, window: Duration, now: Int) -> Int {
        seen.withLock { seen in
            let compound = Self.compound(route, key)
            if let entry = seen[compound], entry.expires > now { return entry.expires }
            if seen.count > 100_000 { seen = seen.filter { $0.value.expires > now } }
            let expires = now + Int(window.components.seconds)
            seen[compound] = (id, expires)
            return expires
        }
    }

    /// Loads persisted keys (expiry in milliseconds).
    func load(_ keys: [(key: String, id: String, expiresAt: Int)]) {
        seen.withLock { seen in
            for entry in keys { seen[entry.key] = (entry.id, entry.expiresAt / 1000) }
        }
    }
}
