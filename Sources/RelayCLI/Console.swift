import FoundationEssentials
import RelayCore
import RelayCrypto
import RelayHTTP
import RelayMapping
import RelayStore

/// The operator console at `/admin/`: its page and assets (our own HTML, CSS and JavaScript,
/// embedded; no data in them), sign-in and sign-out, and the mapping tester. Its data comes
/// from the admin API, called by the page with the session cookie.
enum Console {
    /// Headers every console answer carries: nothing from elsewhere runs or frames it.
    static func hardened(_ response: HTTPResponse, contentType: String? = nil) -> HTTPResponse {
        var response = response
        if let contentType { response.headers.replaceOrAdd(name: "content-type", value: contentType) }
        response.headers.add(
            name: "content-security-policy",
            value: "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
        response.headers.add(name: "x-content-type-options", value: "nosniff")
        response.headers.add(name: "referrer-policy", value: "no-referrer")
        response.headers.add(name: "cache-control", value: "no-store")
        return response
    }

    /// What needs no credentials: the page, its assets, signing in.
    static func publicResponse(_ request: HTTPRequest, expected: [UInt8], context: AdminRoutes.Context) -> HTTPResponse? {
        switch (request.method, String(request.head.path)) {
        case (.get, "/admin/"), (.head, "/admin/"):
            return hardened(HTTPResponse(body: Array(ConsoleAssets.page.utf8)), contentType: "text/html; charset=utf-8")
        case (.get, "/admin/console.js"), (.head, "/admin/console.js"):
            return hardened(HTTPResponse(body: Array(ConsoleAssets.script.utf8)), contentType: "text/javascript; charset=utf-8")
        case (.get, "/admin/console.css"), (.head, "/admin/console.css"):
            return hardened(HTTPResponse(body: Array(ConsoleAssets.style.utf8)), contentType: "text/css; charset=utf-8")
        case (.post, "/admin/session"):
            return signIn(request, expected: expected, context: context)
        default:
            return nil
        }
    }

    /// `POST /admin/session` with `{"token":"…"}`: a session cookie, or 401; 429 after too
    /// many wrong tokens from one client. Every refusal is logged (never the token).
    static func signIn(_ request: HTTPRequest, expected: [UInt8], context: AdminRoutes.Context) -> HTTPResponse {
        let client = request.remoteAddress
        if let wait = context.sessions.refusal(for: client) {
            context.logger.warning("console sign-in refused", ["client": client, "reason": "too many wrong tokens", "request_id": request.id])
            var headers = HTTPHeaders()
            headers.add(name: "retry-after", value: String(wait))
            return hardened(.json(.tooManyRequests, #"{"result":"fail","error":"too_many_attempts","message":"too many wrong tokens; try again later"}"#, headers: headers))
        }
        let given = (try? JSONParser(maxDepth: 2, maxBytes: 4096).parse(request.body))?["token"]?.stringValue ?? ""
        guard !given.isEmpty, secretEquals(Array(given.utf8), expected) else {
            let count = context.sessions.noteFailure(from: client)
            context.logger.warning("console sign-in refused", ["client": client, "reason": "wrong token", "failures": count, "request_id": request.id])
            return hardened(.json(.unauthorized, #"{"result":"fail","error":"wrong_token","message":"the admin token is not right"}"#))
        }
        context.sessions.noteSuccess(from: client)
        let (id, session) = context.sessions.open()
        context.logger.info("console sign-in", ["client": client, "request_id": request.id])
        var headers = HTTPHeaders()
        headers.add(name: "set-cookie", value: ConsoleSessions.setCookie(id, secure: isSecure(request, context: context)))
        return hardened(.json(.ok, "{\"result\":\"signed_in\",\"csrf\":\"\(session.csrf)\"}", headers: headers))
    }

    /// Session calls that need a session: `GET /admin/session` (the CSRF token, for a page
    /// that was reloaded) and `DELETE /admin/session` (sign out).
    static func sessionResponse(_ request: HTTPRequest, credential: AdminRoutes.Credential, context: AdminRoutes.Context) -> HTTPResponse? {
        guard request.head.path == "/admin/session", case .session(let id, let csrf) = credential else { return nil }
        switch request.method {
        case .get:
            return hardened(.json(.ok, "{\"result\":\"signed_in\",\"csrf\":\"\(csrf)\"}"))
        case .delete:
            context.sessions.close(id)
            var headers = HTTPHeaders()
            headers.add(name: "set-cookie", value: ConsoleSessions.setCookie(nil, secure: isSecure(request, context: context)))
            return hardened(.json(.ok, #"{"result":"signed_out"}"#, headers: headers))
        default:
            return nil
        }
    }

    /// Served over HTTPS: by the relay, or by a proxy that says so.
    static func isSecure(_ request: HTTPRequest, context: AdminRoutes.Context) -> Bool {
        context.isTLS || request.headers["x-forwarded-proto"]?.lowercased() == "https"
    }

    /// `POST /admin/map` with `{"route":…,"headers":"Name: value\n…","query":"a=b","body":"…"}`:
    /// what the route's loaded mapping makes of it, as `map --explain` says it, bindings read
    /// from the store; nothing is sent or stored.
    static func tryMapping(_ request: HTTPRequest, context: AdminRoutes.Context) -> HTTPResponse {
        guard let input = try? JSONParser(maxDepth: 4, maxBytes: 1 << 20).parse(request.body), let path = input["route"]?.stringValue else {
            return HTTPErrorBody.response(.badRequest, message: "give {\"route\":…,\"headers\":…,\"body\":…}")
        }
        guard let route = context.routes().first(where: { $0.path == path }) else {
            return HTTPErrorBody.response(.notFound, message: "no loaded mapping declares \(path)")
        }
        var headers: [(name: String, value: String)] = []
        for line in (input["headers"]?.stringValue ?? "").split(whereSeparator: \.isNewline) {
            guard let field = MappingCommands.headerField(line) else {
                return HTTPErrorBody.response(.badRequest, message: "header \"\(line)\" is not 'Name: value'")
            }
            headers.append(field)
        }
        if !headers.contains(where: { $0.name == "content-type" }) { headers.append(("content-type", "application/json")) }
        let query = FormBody.pairs(Array((input["query"]?.stringValue ?? "").utf8))
        var bindings: any BindingLookup = NoBindings()
        if let lookups = try? context.store.openLookups() { bindings = lookups }
        let result = MappingCommands.tryRoute(
            route, body: Array((input["body"]?.stringValue ?? "").utf8), headers: headers, query: query, bindings: bindings, explain: true)
        let lines = result.lines.map { "\"\(JSONText.escaped($0))\"" }.joined(separator: ",")
        let outcome = result.exitCode == 0 ? "call" : result.exitCode == 3 ? "ignored" : "invalid"
        return .json(.ok, "{\"outcome\":\"\(outcome)\",\"lines\":[\(lines)]}")
    }
}

/// The console's JSON documents that are not the admin API's own.
enum ConsoleData {
    struct LastReload: Sendable {
        let at: Date
        let trigger: String
        let errors: [String]
    }

    static func string(_ text: String) -> JSONValue { .string(text) }
    static func number(_ value: Int) -> JSONValue { .number(String(value)) }
    /// A non-negative number with one decimal: 12.25 → `12.3`.
    static func tenths(_ value: Double) -> String {
        let tenths = Int((max(0, value) * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// `GET /admin/overview`: webhooks per route and outcome, sends by outcome and code, the
    /// queue, and webhooks per interval per route.
    static func overview(metrics: RelayMetrics.Snapshot, queue: QueueGauges?, generation: Int, isDryRun: Bool, traffic: TrafficHistory) -> String {
        var members: [(key: String, value: JSONValue)] = [("generation", number(generation)), ("dry_run", .bool(isDryRun))]
        if let queue {
            members.append((
                "queue",
                .object([
                    ("pending", number(queue.pending)), ("dead", number(queue.dead)),
                    ("oldest_pending_age_seconds", .number(Self.tenths(queue.oldestPendingAge))),
                ])
            ))
        } else {
            members.append(("queue", .null))
        }
        members.append(("webhooks", .array(metrics.webhooks.map { .object([("route", string($0.route)), ("outcome", string($0.outcome)), ("count", number($0.count))]) })))
        members.append((
            "deliveries",
            .array(
                metrics.deliveries.map { row in
                    .object([
                        ("delivery", string(row.labels[0])), ("outcome", string(row.labels[1])), ("result", string(row.labels[2])),
                        ("code", string(row.labels[3])), ("count", number(row.count)),
                    ])
                })
        ))
        let series = traffic.perInterval(current: metrics.webhooksByRoute).sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.array($0.value.map(number))) }
        members.append((
            "history", .object([("interval_seconds", number(traffic.interval)), ("slots", number(traffic.slots)), ("routes", .object(series))])
        ))
        return JSONSerializer.string(.object(members))
    }

    /// `GET /admin/mappings`: the routes served, their files, the generation, the last reload.
    static func mappings(routes: [MappingRoute], generation: Int, folder: String, lastReload: LastReload?) -> String {
        var members: [(key: String, value: JSONValue)] = [
            ("generation", number(generation)), ("folder", string(URL(fileURLWithPath: folder).standardizedFileURL.path)),
            (
                "routes",
                .array(
                    routes.map { route in
                        .object([
                            ("route", string(route.path)), ("file", string(FilePath.lastComponent(of: route.file))),
                            ("delivery", string(route.delivery == .sync ? "sync" : "async")), ("scheme", string(route.verify.scheme.rawValue)),
                        ])
                    })
            ),
        ]
        if let lastReload {
            members.append((
                "last_reload",
                .object([
                    ("at", string(RFC3339.timestamp(milliseconds: Int(lastReload.at.timeIntervalSince1970 * 1000)))), ("trigger", string(lastReload.trigger)),
                    ("errors", .array(lastReload.errors.map(string))),
                ])
            ))
        } else {
            members.append(("last_reload", .null))
        }
        return JSONSerializer.string(.object(members))
    }
}
