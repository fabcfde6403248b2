import FoundationEssentials
import RelayCore
import RelayCrypto
import RelayHTTP
import RelayMapping
import RelayStore

/// What a reload of the mapping files did: the generation now served, or why the new set was
/// refused (every error; the old set stays).
package struct ReloadReport: Sendable {
    package var generation: Int
    package var errors: [String]

    package var isSuccess: Bool { errors.isEmpty }

    /// The admin API's answer.
    package var response: HTTPResponse {
        if isSuccess { return .json(.ok, "{\"result\":\"reloaded\",\"generation\":\(generation)}") }
        let list = errors.map { "\"\(JSONText.escaped($0))\"" }.joined(separator: ",")
        return .json(
            .unprocessableContent,
            "{\"result\":\"fail\",\"error\":\"invalid_mappings\",\"message\":\"the reload had errors; generation \(generation) is served\",\"errors\":[\(list)]}")
    }
}

/// The admin endpoints, behind `Authorization: Bearer $HAPPYRELAY_ADMIN_TOKEN`. Without the
/// token configured, or with a wrong one, they answer 404 like any unknown path. They run
/// off the event loops, on the typed admin operations of the store. Every action, and every
/// refused request while the token is configured, is written to the log (`admin` lines).
package enum AdminRoutes {
    /// What the endpoints work with.
    package struct Context: Sendable {
        package var token: String?
        /// The store the relay serves from.
        package var store: StoreLocation
        /// The routes the relay serves now: replay and the mapping tester use them.
        package var routes: @Sendable () -> [MappingRoute]
        /// Reloads the mapping files.
        package var reload: @Sendable () -> ReloadReport
        package var logger: Logger
        /// The console's sign-in sessions.
        package var sessions = ConsoleSessions()
        /// The overview's figures, as JSON.
        package var overview: @Sendable () -> String = { "{}" }
        /// The loaded mappings and the last reload, as JSON.
        package var mappings: @Sendable () -> String = { "{}" }
        /// Whether the relay serves TLS itself (session cookies are then `Secure`).
        package var isTLS = false
        /// The threads the admin API answers on: its reads and writes of the store may take
        /// seconds (a replay of every dead letter, the write lock held by another process).
        /// None without a token: the API is off.
        package var workers: BlockingWorkers?

        package init(
            token: String?, store: StoreLocation, routes: @escaping @Sendable () -> [MappingRoute],
            reload: @escaping @Sendable () -> ReloadReport, logger: Logger, workers: BlockingWorkers?
        ) {
            self.token = token
            self.store = store
            self.routes = routes
            self.reload = reload
            self.logger = logger
            self.workers = workers
        }
    }

    /// How a request proved it may use the admin endpoints.
    enum Credential {
        case bearer
        case session(id: String, csrf: String)
    }

    /// Adds `/admin/…` to the router: the console's page and assets, its sign-in, and the API
    /// (a Bearer token, or the console's session cookie with its CSRF token on changes).
    package static func add(to router: inout Router, context: Context) {
        guard let token = context.token, let workers = context.workers else {
            // Off: every path answers as an unknown one, at once on the loop.
            router.addPrefix("/admin/", .immediate { request in HTTPErrorBody.response(.notFound, message: "no route for \(request.head.path)") })
            return
        }
        let expected = Array(token.utf8)
        router.addPrefix(
            "/admin/",
            workers.handler { request in
                let path = String(request.head.path)
                if let response = Console.publicResponse(request, expected: expected, context: context) { return response }
                let credential: Credential
                if let authorization = request.headers["authorization"] {
                    guard authorization.lowercased().hasPrefix("bearer "), secretEquals(Array(authorization.dropFirst(7).utf8), expected) else {
                        return refused(request, reason: "wrong token", context: context)
                    }
                    credential = .bearer
                } else if let (id, session) = context.sessions.session(for: request) {
                    credential = .session(id: id, csrf: session.csrf)
                } else {
                    return refused(request, reason: ConsoleSessions.cookie(in: request) == nil ? "no bearer token or session" : "expired session", context: context)
                }
                // A change made with the session cookie must carry the session's CSRF token,
                // which only the console's own page can read.
                if case .session(_, let csrf) = credential, request.method != .get, request.method != .head {
                    guard let given = request.headers["x-csrf-token"], secretEquals(Array(given.utf8), Array(csrf.utf8)) else {
                        context.logger.warning(
                            "admin request refused",
                            ["method": request.method.rawValue, "path": path, "client": request.remoteAddress, "reason": "missing or wrong CSRF token", "request_id": request.id])
                        return HTTPErrorBody.response(.forbidden, error: "csrf", message: "a change needs the console's CSRF token")
                    }
                }
                let response = Console.sessionResponse(request, credential: credential, context: context) ?? answer(request, context: context)
                context.logger.info(
                    "admin",
                    [
                        "method": request.method.rawValue, "path": path, "query": String(request.head.query), "status": response.status.code,
                        "client": request.remoteAddress, "via": { if case .bearer = credential { "token" } else { "console" } }(), "request_id": request.id,
                    ])
                return response
            })
    }

    /// 404, as for any unknown path, and an audit line.
    static func refused(_ request: HTTPRequest, reason: String, context: Context) -> HTTPResponse {
        context.logger.warning(
            "admin request refused",
            ["method": request.method.rawValue, "path": String(request.head.path), "client": request.remoteAddress, "reason": reason, "request_id": request.id])
        return HTTPErrorBody.response(.notFound, message: "no route for \(request.head.path)")
    }

    static func answer(_ request: HTTPRequest, context: Context) -> HTTPResponse {
        let path = String(request.head.path)
        let query = FormBody.pairs(Array(request.head.query.utf8))
        func parameter(_ name: String) -> String? { query.last { $0.name == name }?.value }
        let now = currentUnixMilliseconds()
        // What needs no store connection is answered before one is opened: the console polls
        // the overview every 5 s.
        switch (request.method, path) {
        case (.post, "/admin/reload"): return context.reload().response
        case (.get, "/admin/overview"): return .json(.ok, context.overview())
        case (.get, "/admin/mappings"): return .json(.ok, context.mappings())
        case (.post, "/admin/map"): return Console.tryMapping(request, context: context)
        default: break
        }
        do {
            guard let store = try context.store.openAdministration() else {
                return HTTPErrorBody.response(.serviceUnavailable, message: "no delivery queue at \(context.store)")
            }
            let deliveryPath = path.hasPrefix("/admin/deliveries/") ? path.dropFirst("/admin/deliveries/".count).split(separator: "/", omittingEmptySubsequences: false) : []
            switch (request.method, path) {
            case (.get, "/admin/deliveries"):
                return try list(query: query, store: store, now: now)
            case (.delete, "/admin/deliveries"):
                guard let text = parameter("dead_older_than"), let age = ParsedOptions.duration(text) else {
                    return HTTPErrorBody.response(.badRequest, message: "give dead_older_than as a duration (30d, 12h, seconds)")
                }
                let count = try DeliveryAdmin(store: store).deleteDead(olderThan: age, now: now)
                return .json(.ok, "{\"result\":\"deleted\",\"count\":\(count)}")
            case (.get, "/admin/bindings"), (.delete, "/admin/bindings"):
                let kind = parameter("kind")
                let value = parameter("value")
                if request.method == .get {
                    let rows = try store.bindings(kind: kind, value: kind == nil ? nil : value ?? "", now: now).map { row in
                        JSONSerializer.objectText(
                            [("key", "\(row.kind)=\(row.value)"), ("uuid", row.uuid), ("room_id", row.roomID),
                             ("created", RFC3339.timestamp(milliseconds: row.createdAt)), ("expires", RFC3339.timestamp(milliseconds: row.expiresAt))]
                                .map { (key: $0.0, value: $0.1) })
                    }
                    return .json(.ok, "{\"bindings\":[" + rows.joined(separator: ",") + "]}")
                }
                guard let kind, let value else { return HTTPErrorBody.response(.badRequest, message: "give kind and value") }
                return try store.deleteBinding(kind: kind, value: value)
                    ? .json(.ok, "{\"result\":\"deleted\"}") : HTTPErrorBody.response(.notFound, message: "no binding \(kind)=\(value)")
            case (.post, "/admin/deliveries/replay-dead"):
                return try replay(id: nil, asStored: parameter("as_stored") == "1", store: store, context: context, now: now)
            default:
                // Only a delivery id: a path segment is never read as anything else.
                guard (1...2).contains(deliveryPath.count), isDeliveryID(String(deliveryPath[0])) else { break }
                let id = String(deliveryPath[0])
                switch (request.method, deliveryPath.count == 2 ? String(deliveryPath[1]) : "") {
                case (.get, ""):
                    guard let detail = try store.detail(id: id) else { return HTTPErrorBody.response(.notFound, message: "no delivery \(id)") }
                    return .json(.ok, DeliveryAdmin.json(detail))
                case (.delete, ""):
                    return try store.delete(id: id)
                        ? .json(.ok, "{\"result\":\"deleted\"}") : HTTPErrorBody.response(.notFound, message: "no delivery \(id)")
                case (.post, "retry"):
                    let result = try store.retry(id: id, now: now)
                    let (line, ok) = DeliveryAdmin.describe(result, id: id)
                    if ok { return .json(.ok, "{\"result\":\"scheduled\",\"message\":\"\(JSONText.escaped(line))\"}") }
                    return HTTPErrorBody.response(result == .notFound ? .notFound : .conflict, message: line)
                case (.post, "replay"):
                    return try replay(id: id, asStored: parameter("as_stored") == "1", store: store, context: context, now: now)
                default:
                    break
                }
            }
        } catch {
            return HTTPErrorBody.response(.serviceUnavailable, message: "\(error)")
        }
        return HTTPErrorBody.response(.notFound, message: "no route for \(path)")
    }

    /// `GET /admin/deliveries`: the filters of `deliveries list` as query parameters (state,
    /// route, room, since, until, limit — default 100 — and after), and the next page's cursor.
    static func list(query: [(name: String, value: String)], store: any DeliveryAdministration, now: Int) throws -> HTTPResponse {
        var arguments: [String] = []
        for (name, value) in query where ["state", "route", "room", "since", "until", "limit", "after"].contains(name) {
            arguments += ["--\(name)", value]
        }
        if !query.contains(where: { $0.name == "limit" }) { arguments += ["--limit", "100"] }
        let filter: DeliveryFilter
        do {
            filter = try DeliveryCommands.filter(ParsedOptions(arguments, options: DeliveryCommands.listOptions), now: now)
        } catch {
            return HTTPErrorBody.response(.badRequest, message: error.message.replacing("--", with: ""))
        }
        let page = try store.list(filter)
        let rows = page.rows.map { DeliveryCommands.line($0, json: true) }
        return .json(.ok, "{\"deliveries\":[" + rows.joined(separator: ",") + "],\"next\":" + (page.next.map { "\"\($0)\"" } ?? "null") + "}")
    }

    /// Replays with the routes the relay serves now (or as stored).
    static func replay(id: String?, asStored: Bool, store: any DeliveryAdministration, context: Context, now: Int) throws -> HTTPResponse {
        let bindings: any BindingLookup = try context.store.openLookups() ?? NoBindings()
        let report = try DeliveryAdmin(store: store).replay(id: id, routes: context.routes(), bindings: bindings, asStored: asStored, now: now)
        let lines = report.lines.map { "\"\(JSONText.escaped($0))\"" }.joined(separator: ",")
        return .json(
            report.isComplete ? .ok : .conflict,
            "{\"result\":\"\(report.isComplete ? "replayed" : "partly_replayed")\",\"details\":[\(lines)]}")
    }

    /// A delivery id as the relay makes them: 24 hex digits (16 before ids began with their
    /// time), then `-N` or `-rN` for the further calls of one webhook.
    static func isDeliveryID(_ id: String) -> Bool {
        let parts = id.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard [16, RequestID.length].contains(parts[0].utf8.count), parts[0].utf8.allSatisfy(RequestID.isLowerHexDigit) else { return false }
        guard parts.count == 2 else { return true }
        let suffix = parts[1].hasPrefix("r") ? parts[1].dropFirst() : parts[1][...]
        return !suffix.isEmpty && suffix.utf8.count <= 6 && suffix.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
