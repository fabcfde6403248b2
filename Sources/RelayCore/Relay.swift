import FoundationEssentials
import RelayHTTP
import RelayMapping
import RelayStore
import Synchronization

/// The webhook executor: serves each route at its path, runs the pipeline's decisions and
/// carries out their effects — the dedupe reservation, the store writer, HappyTalk — then
/// answers through `WebhookAnswers`, with one log line and the route's metrics per webhook.
///
/// A webhook stays on the event loop that read it: a sync route's call to HappyTalk is made
/// from that loop's connection pool, and a stored webhook is answered on it. Routes that read
/// the database (`resolve`, a sync route's stored dedupe keys) decide on a lookup thread and
/// come back to the loop.
package final class Relay: Sendable {
    /// The routes served now, replaced whole by a reload.
    private struct RouteSet {
        var served: [ServedRoute]
        var generation: Int
        var unverified: [String]
    }

    private let current: Mutex<RouteSet>
    private let credentials: Credentials
    private let environment: [String: String]
    private let upstream: HappyTalkUpstream?
    private let store: StoreWriter?
    private let lookups: (any StoreLookups)?
    private let workers: BlockingWorkers?
    private let logger: Logger
    private let metrics: RelayMetrics
    private let dedupe = DedupeWindow()
    /// Unix milliseconds.
    private let clock: @Sendable () -> Int

    /// Whether nothing is sent (no token configured, or `--dry-run`).
    package let isDryRun: Bool
    /// Routes served without verification because their secret is not set (dry run only).
    package var unverifiedRoutes: [String] { current.withLock { $0.unverified } }

    /// Prepares routes: resolves secrets and tokens, failing closed with every problem as
    /// `FILE: POINTER: message` unless in a dry run, where unverifiable routes are served
    /// unverified (and named in the log). Without `store`, nothing is stored (a dry run).
    package init(
        routes: [MappingRoute], credentials: Credentials, upstream: HappyTalkUpstream?, store: StoreWriter? = nil,
        lookups: (any StoreLookups)? = nil, dryRun: Bool, environment: [String: String], logger: Logger,
        metrics: RelayMetrics = RelayMetrics(), clock: @escaping @Sendable () -> Int = currentUnixMilliseconds
    ) throws(MappingDiagnostics) {
        let isDryRun = dryRun || credentials.isEmpty
        let prepared = try Self.prepare(routes, credentials: credentials, isDryRun: isDryRun, environment: environment, metrics: metrics)
        current = Mutex(RouteSet(served: prepared.served, generation: 1, unverified: prepared.unverified))
        self.credentials = credentials
        self.environment = environment
        self.upstream = upstream
        self.store = isDryRun ? nil : store
        self.lookups = isDryRun ? nil : lookups
        workers = isDryRun || lookups == nil ? nil : BlockingWorkers()
        self.logger = logger
        self.metrics = metrics
        self.isDryRun = isDryRun
        self.clock = clock
    }

    /// Routes ready to serve: secrets and tokens resolved, failing closed with every problem
    /// as `FILE: POINTER: message` unless in a dry run (see `init`).
    private static func prepare(
        _ routes: [MappingRoute], credentials: Credentials, isDryRun: Bool, environment: [String: String], metrics: RelayMetrics
    ) throws(MappingDiagnostics) -> (served: [ServedRoute], unverified: [String]) {
        var problems: [MappingDiagnostic] = []
        var served: [ServedRoute] = []
        var unverified: [String] = []
        for route in routes {
            var keys: [[UInt8]] = []
            // Which secret each key is (a secret that is missing has none).
            var keySecrets: [Int] = []
            var missing: [String] = []
            for (index, reference) in route.verify.secrets.enumerated() {
                let secretPointer = pointer(ofSecret: index, in: route.verify)
                switch Secrets.resolve(reference, environment: environment) {
                case .success(let secret):
                    if let key = WebhookVerifier.key(from: secret, scheme: route.verify.scheme) {
                        keys.append(key)
                        keySecrets.append(index)
                    } else {
                        problems.append(MappingDiagnostic(file: route.file, pointer: secretPointer, message: "\(reference) is not a whsec_ base64 key"))
                    }
                case .failure(let error):
                    missing.append(error.message)
                    if !isDryRun { problems.append(MappingDiagnostic(file: route.file, pointer: secretPointer, message: error.message)) }
                }
            }
            var verifier: WebhookVerifier?
            do throws(WebhookVerifier.RefusedKey) {
                verifier = try WebhookVerifier(spec: route.verify, secrets: keys)
            } catch {
                problems.append(
                    MappingDiagnostic(
                        file: route.file, pointer: pointer(ofSecret: keySecrets[error.index], in: route.verify),
                        message: "libcrypto refuses this secret as an HMAC key (a FIPS-mode libcrypto refuses short keys): every webhook would be rejected"))
            }
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
        return (served, unverified)
    }

    /// Where a route's secret is in its mapping file.
    private static func pointer(ofSecret index: Int, in verify: VerifySpec) -> String {
        verify.secrets.count == 1 ? "/verify/secret" : "/verify/secrets/\(index)"
    }

    /// Serves `routes` from now on (after `register` into the server's new router): secret
    /// files are read again; a set with any problem is refused whole and the current one
    /// kept. Webhooks in flight finish with the routes they started with. Returns the new
    /// generation.
    @discardableResult
    package func reload(_ routes: [MappingRoute]) throws(MappingDiagnostics) -> Int {
        let prepared = try Self.prepare(routes, credentials: credentials, isDryRun: isDryRun, environment: environment, metrics: metrics)
        return current.withLock { set in
            set = RouteSet(served: prepared.served, generation: set.generation + 1, unverified: prepared.unverified)
            return set.generation
        }
    }

    /// The mapping routes served now.
    package var routes: [MappingRoute] { current.withLock { $0.served.map(\.route) } }

    /// How many sets of routes have been loaded (1 at start, one more per reload).
    package var generation: Int { current.withLock { $0.generation } }

    /// Adds every route of the current set to the router.
    package func register(in router: inout Router) {
        for route in current.withLock({ $0.served }) {
            router.add(.post, route.route.path, .deferred { [self] request, responder in handle(request, route: route, responder: responder) })
        }
    }

    /// Ends the lookup threads.
    package func shutdown() {
        workers?.shutdown()
    }

    // MARK: The executor

    /// One webhook on its way: what its answer, its effects and its log line need. A class:
    /// each completion that captures it retains one object, where a struct of the route, the
    /// request and the rest was copied field by field into every closure.
    final class Exchange: Sendable {
        let route: ServedRoute
        let request: HTTPRequest
        /// The request's query, parsed when it was admitted.
        let query: [(name: String, value: String)]
        let requestID: String
        /// The id in log lines (the client's X-Request-Id, or `requestID`).
        let logID: String
        let loop: EventLoop
        let finish: @Sendable (WebhookResult, String) -> Void

        init(
            route: ServedRoute, request: HTTPRequest, query: [(name: String, value: String)], requestID: String, logID: String, loop: EventLoop,
            finish: @escaping @Sendable (WebhookResult, String) -> Void
        ) {
            self.route = route
            self.request = request
            self.query = query
            self.requestID = requestID
            self.logID = logID
            self.loop = loop
            self.finish = finish
        }
    }

    func handle(_ request: HTTPRequest, route served: ServedRoute, responder: HTTPResponder) {
        let started = ContinuousClock.now
        // A client's X-Request-Id is for logs only: stored records are named by ids the relay makes.
        let requestID = request.hasGeneratedID ? request.id : RequestID.make()
        let logID = request.id
        let path = served.route.path
        var isVerified = true
        let answer: @Sendable (WebhookResult, String, Bool) -> Void = { [logger, metrics = served.metrics] result, rule, isVerified in
            let response = WebhookAnswers.response(for: result, isVerified: isVerified)
            responder.respond(response)
            let elapsed = ContinuousClock.now - started
            metrics.answered(result.outcome, after: elapsed)
            guard logger.level <= .info else { return }
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            let detail: (key: String, value: String)
            if case .ignored(let reason) = result { detail = ("reason", reason) } else { detail = ("rule", rule) }
            logger.info(
                "webhook",
                [
                    "route": path, detail.key: detail.value, "outcome": result.outcome.rawValue, "status": response.status.code,
                    "duration_ms": (milliseconds * 100).rounded() / 100, "client": request.remoteAddress, "request_id": logID,
                    "delivery.id": requestID,
                ])
        }
        let now = clock()
        let webhook: AdmittedWebhook
        switch WebhookPipeline.admit(request, route: served, requestID: requestID, now: now) {
        case .success(let admitted):
            webhook = admitted
            isVerified = admitted.isVerified
        case .failure(.verification(let reason)):
            served.metrics.verificationFailures.increment()
            logger.warning("verification failed", ["route": path, "scheme": served.route.verify.scheme.rawValue, "reason": reason, "request_id": logID])
            answer(.rejected(Rejection(.unauthorized, error: "invalid_signature", message: reason)), "", true)
            return
        case .failure(.answer(let result)):
            answer(result, "", true)
            return
        }
        let verified = isVerified
        // A dedupe key is reserved now, so that the same event arriving twice at once is
        // handled once; it is marked handled when its webhook is, and released when it is not.
        var reserved: DedupeRecord?
        if let text = webhook.dedupeKey, let window = served.route.dedupe?.window {
            let record = DedupeRecord(
                digest: DedupeDigest(route: path, key: text), firstID: requestID, expiresAt: now.addingSaturating(window.wholeMilliseconds))
            switch dedupe.check(record.digest, id: requestID, expiresAt: record.expiresAt, now: now) {
            case .duplicate(let first):
                answer(.duplicate(firstID: first), "", verified)
                return
            case .inFlight:
                answer(.inProgress, "", verified)
                return
            case .reserved:
                reserved = record
            }
        }
        let key = reserved
        let exchange = Exchange(route: served, request: request, query: webhook.query, requestID: requestID, logID: logID, loop: responder.loop) { [dedupe] result, rule in
            if let key {
                switch result {
                case .accepted, .delivered, .dryRun, .bound: dedupe.markHandled(key.digest, id: requestID, expiresAt: key.expiresAt)
                case .duplicate(let first): dedupe.markHandled(key.digest, id: first, expiresAt: key.expiresAt)
                default: dedupe.release(key.digest, id: requestID)
                }
            }
            answer(result, rule, verified)
        }
        // The database is read off the loop: bindings for rules that resolve, and on a sync
        // route the dedupe keys a restart left (an async route meets them in its write).
        let checksStoredKey = key != nil && served.route.delivery == .sync
        if let workers, let lookups, served.route.resolvesBindings || checksStoredKey {
            let route = served.route
            workers.submit { [self] in
                let stored = checksStoredKey ? key.flatMap { lookups.firstID(for: $0.digest) } : nil
                let decision = stored == nil ? WebhookPipeline.decide(webhook, route: route, isDryRun: isDryRun, bindings: lookups) : nil
                exchange.loop.execute { [self] in
                    if let stored {
                        exchange.finish(.duplicate(firstID: stored), "")
                    } else if let decision {
                        carryOut(decision, exchange: exchange, key: key)
                    }
                }
            }
            return
        }
        carryOut(WebhookPipeline.decide(webhook, route: served.route, isDryRun: isDryRun, bindings: NoBindings()), exchange: exchange, key: key)
    }

    /// Performs a decision's effects on the exchange's loop, then answers.
    private func carryOut(_ decision: WebhookDecision, exchange: Exchange, key: DedupeRecord?) {
        // Read through the class: a copy of the route would retain each of its fields.
        let served = exchange.route
        switch decision {
        case .finished(let result):
            if case .mappingFailed(let failure, _) = result { noteMappingFailure(failure, exchange: exchange) }
            exchange.finish(result, "")
        case .dryRun(let calls):
            for call in calls {
                logger.info(
                    "dry run: would send",
                    ["route": served.route.path, "rule": call.rule, "call": String(decoding: call.body(token: "***"), as: UTF8.self), "request_id": exchange.logID])
            }
            exchange.finish(.dryRun(isSync: served.route.delivery == .sync, id: exchange.requestID), calls.map(\.rule).joined(separator: ","))
        case .bind(let writes):
            submit(WebhookWrite(dedupe: key, bindings: writes), exchange: exchange, rule: "") { .bound(isDryRun: false) }
        case .deadLetter(let failure):
            noteMappingFailure(failure, exchange: exchange)
            // Kept as a dead delivery with the raw request, so that a fixed mapping can replay it.
            let dead = NewDelivery(
                id: exchange.requestID, route: served.route.path, room: RoomKey(credential: served.route.credential ?? "", roomID: ""), call: Array("{}".utf8),
                request: Self.replayRecord(exchange.request, query: exchange.query, route: served.route), body: exchange.request.body,
                deadReason: "mapping failed: \(failure)")
            submit(WebhookWrite(deliveries: [dead]), exchange: exchange, rule: failure.rule) {
                .mappingFailed(failure, deadLetterID: exchange.requestID)
            }
        case .enqueue(let calls, let binds):
            let record = Self.replayRecord(exchange.request, query: exchange.query, route: served.route)
            let deliveries = calls.enumerated().map { index, call in
                NewDelivery(
                    id: index == 0 ? exchange.requestID : "\(exchange.requestID)-\(index)", route: served.route.path,
                    room: RoomKey(credential: served.route.credential ?? "", roomID: call["room_id"] ?? ""), call: call.storedForm(), request: record,
                    body: exchange.request.body)
            }
            // The deliveries, their bindings and the dedupe key: one write, stored before the 202.
            submit(WebhookWrite(deliveries: deliveries, dedupe: key, bindings: binds), exchange: exchange, rule: calls.map(\.rule).joined(separator: ",")) {
                .accepted(id: exchange.requestID)
            }
        case .send(let calls, let binds):
            let rules = calls.map(\.rule).joined(separator: ",")
            guard !binds.isEmpty, let store else {
                send(calls[...], exchange: exchange, rules: rules, key: key)
                return
            }
            // Bindings are stored (durably) before the call is made.
            store.submit(WebhookWrite(bindings: binds), on: exchange.loop) { [self] result in
                switch result {
                case .success: send(calls[...], exchange: exchange, rules: rules, key: key)
                case .failure(let error): exchange.finish(.storeRefused(error), rules)
                }
            }
        }
    }

    /// Stores a write, then answers `success()`, `duplicate` (the store knew the key), or the
    /// store's refusal.
    private func submit(_ write: WebhookWrite, exchange: Exchange, rule: String, success: @escaping @Sendable () -> WebhookResult) {
        guard let store else {
            exchange.finish(.storeRefused(.unavailable("the queue is not available")), rule)
            return
        }
        store.submit(write, on: exchange.loop) { [logger] result in
            switch result {
            case .success(.stored):
                exchange.finish(success(), rule)
            case .success(.duplicate(let first)):
                exchange.finish(.duplicate(firstID: first), rule)
            case .failure(let error):
                if case .bindingConflict(let kind) = error {
                    logger.warning(
                        "binding refused: the key is bound to another chat", ["route": exchange.route.route.path, "kind": kind, "request_id": exchange.logID])
                }
                exchange.finish(.storeRefused(error), rule)
            }
        }
    }

    /// A sync route's calls, one after the other on the exchange's loop, answered with
    /// HappyTalk's verdict on the first that fails, or success.
    private func send(_ calls: ArraySlice<MappedCall>, exchange: Exchange, rules: String, key: DedupeRecord?) {
        let served = exchange.route
        guard let call = calls.first else {
            // Remembered only once delivered, so that a sender's retry after a failure is sent.
            if let key { store?.submit(WebhookWrite(dedupe: key)) { _ in } }
            exchange.finish(.delivered, rules)
            return
        }
        guard let upstream, let token = exchange.route.token else {
            exchange.finish(.storeRefused(.unavailable("no upstream is configured")), rules)
            return
        }
        let sent = ContinuousClock.now
        upstream.send(body: call.body(token: token), on: exchange.loop, timeout: served.route.timeout) { [self] result, _ in
            guard result == .success else {
                metrics.delivery(sync: true, .failed, result: result, latency: nil)
                if case .failed(let code, let message, true) = result {
                    logger.error(
                        "HappyTalk refused the relay's credential: check the token",
                        ["route": served.route.path, "code": code, "message": message, "request_id": exchange.logID])
                } else if case .transient(let reason) = result {
                    // The sender gets a stable error; what went wrong stays in the log.
                    logger.warning("HappyTalk could not be reached", ["route": served.route.path, "reason": reason, "request_id": exchange.logID])
                }
                exchange.finish(.upstreamFailed(result, timeout: served.route.timeout), rules)
                return
            }
            metrics.delivery(sync: true, .delivered, result: result, latency: ContinuousClock.now - sent)
            send(calls.dropFirst(), exchange: exchange, rules: rules, key: key)
        }
    }

    private func noteMappingFailure(_ failure: MappingFailure, exchange: Exchange) {
        metrics.mappingFailed(route: exchange.route.route.path, field: failure.field)
        logger.warning(
            "mapping failed", ["route": exchange.route.route.path, "rule": failure.rule, "field": failure.field, "request_id": exchange.logID])
    }

    /// What replay needs of a request besides its body: the headers and query parameters its
    /// paths read (never Authorization, a verification header or a secret query parameter).
    static func replayRecord(_ request: HTTPRequest, query: [(name: String, value: String)], route: MappingRoute) -> String {
        let secretHeader = route.verify.scheme == .header ? route.verify.header : nil
        let secretParameter = route.verify.scheme == .query ? route.verify.parameter : nil
        var output: [UInt8] = []
        output.reserveCapacity(256)
        output.append(contentsOf: #"{"headers":{"#.utf8)
        var first = true
        for field in request.headers.fields
        where field.name != "authorization" && field.name != secretHeader && field.name != "cookie"
            && (route.readsHeader(field.name) || field.name == "content-type")
        {
            JSONSerializer.appendMember(field.name, field.value, first: &first, to: &output)
        }
        output.append(contentsOf: #"},"query":{"#.utf8)
        first = true
        for pair in query where pair.name != secretParameter {
            JSONSerializer.appendMember(pair.name, pair.value, first: &first, to: &output)
        }
        output.append(contentsOf: "}}".utf8)
        return String(decoding: output, as: UTF8.self)
    }
}
