import Foundation
import RelayMapping

/// `happyrelay deliveries list|replay` (interface.md): they open the queue's database
/// directly, which SQLite's locking makes safe beside a running relay (it picks replayed
/// deliveries up within a second).
package enum DeliveryCommands {
    package static let listOptions: [CommandLineOption] = [
        CommandLineOption("--state", value: "pending|dead|delivered", help: "only deliveries in this state"),
        CommandLineOption("--json", help: "one JSON object per line"),
        .dataDirectory,
        .help,
    ]

    package static let replayOptions: [CommandLineOption] = [
        CommandLineOption("--all-dead", help: "replay every dead delivery"),
        .dataDirectory,
        .mappings,
        .help,
    ]

    /// The database file in `--data-dir`.
    static func path(_ parsed: ParsedOptions) -> String {
        ((parsed.value("--data-dir") ?? "data") as NSString).appendingPathComponent(DeliveryQueue.fileName)
    }

    static func open(_ parsed: ParsedOptions) throws(SettingsError) -> SQLiteDatabase {
        let path = path(parsed)
        guard FileManager.default.fileExists(atPath: path) else { throw SettingsError("no delivery queue in \(parsed.value("--data-dir") ?? "data")") }
        do {
            let database = try SQLiteDatabase(path: path)
            try DeliveryQueue.migrate(database)
            return database
        } catch {
            throw SettingsError("cannot open \(path): \(error)")
        }
    }

    /// Lists deliveries: id, state, route, attempts, last reason.
    package static func list(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> MappingCommands.Result {
        let parsed = try ParsedOptions(arguments, options: listOptions, environment: environment)
        if let extra = parsed.positional.first { throw SettingsError("unexpected argument \(extra)", isUsageError: true) }
        let state = parsed.value("--state")
        if let state, !["pending", "dead", "delivered"].contains(state) {
            throw SettingsError("--state: \"\(state)\" is not pending, dead or delivered")
        }
        let database = try open(parsed)
        var lines: [String] = []
        do {
            let query = try database.prepare(
                "SELECT id, state, route, attempts, IFNULL(last_reason, ''), accepted_at FROM deliveries WHERE (?1 IS NULL OR state = ?1) ORDER BY seq")
            try query.bind([state.map(SQLiteValue.text) ?? .null])
            while try query.step() {
                let (id, rowState, route, attempts, reason) = (query.text(0) ?? "", query.text(1) ?? "", query.text(2) ?? "", query.integer(3), query.text(4) ?? "")
                if parsed.isOn("--json") {
                    lines.append(
                        JSONSerializer.objectText(
                            [("id", id), ("state", rowState), ("route", route), ("attempts", String(attempts)), ("last_reason", reason),
                             ("accepted_at", RFC3339.timestamp(milliseconds: query.integer(5)))].map { (key: $0.0, value: $0.1) }))
                } else {
                    lines.append("\(id) \(rowState) \(route) \(attempts) \(reason)")
                }
            }
        } catch {
            throw SettingsError("cannot read the queue: \(error)")
        }
        return MappingCommands.Result(lines: lines, exitCode: 0)
    }

    /// Puts dead deliveries back in the queue, re-mapped with the current mapping files.
    package static func replay(_ arguments: [String], environment: [String: String], now: Int = Int(Date().timeIntervalSince1970 * 1000))
        throws(SettingsError) -> MappingCommands.Result
    {
        let parsed = try ParsedOptions(arguments, options: replayOptions, environment: environment)
        let all = parsed.isOn("--all-dead")
        guard all != (parsed.positional.count == 1), parsed.positional.count <= 1 else {
            throw SettingsError("give one delivery ID or --all-dead", isUsageError: true)
        }
        let database = try open(parsed)
        // Rules that resolve read the bindings as the relay does: the request is re-mapped in full.
        let bindings: SQLiteBindings
        do {
            bindings = try SQLiteBindings(path: path(parsed), connections: 1)
        } catch {
            throw SettingsError("cannot read the bindings: \(error)")
        }
        let mappings = parsed.value("--mappings") ?? "mappings"
        let (routes, diagnostics) = MappingLoader.load(directory: mappings)
        guard diagnostics.isEmpty else {
            return MappingCommands.Result(lines: diagnostics.map(\.description) + ["fix the mappings before replaying"], exitCode: 1)
        }
        var lines: [String] = []
        var failed = false
        do {
            let select = try database.prepare(
                "SELECT id, route, credential, request FROM deliveries WHERE state = 'dead' AND (?1 IS NULL OR id = ?1) ORDER BY seq")
            try select.bind([all ? .null : .text(parsed.positional[0])])
            var rows: [(id: String, route: String, credential: String, request: String)] = []
            while try select.step() { rows.append((select.text(0) ?? "", select.text(1) ?? "", select.text(2) ?? "", select.text(3) ?? "{}")) }
            if rows.isEmpty && !all { return MappingCommands.Result(lines: ["\(parsed.positional[0]): no dead delivery with this id"], exitCode: 1) }
            try database.execute("BEGIN IMMEDIATE")
            let requeue = try database.prepare(
                "UPDATE deliveries SET state = 'pending', room_id = ?, call = ?, attempts = 0, accepted_at = ?, next_attempt_at = ?, last_reason = 'replayed' WHERE id = ?")
            let keepDead = try database.prepare("UPDATE deliveries SET last_reason = ? WHERE id = ?")
            let insert = try database.prepare(
                "INSERT INTO deliveries (id, route, credential, room_id, call, request, state, attempts, accepted_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)")
            for row in rows {
                guard let route = routes.first(where: { $0.path == row.route }) else {
                    try keepDead.run([.text("replay: no mapping file declares \(row.route)"), .text(row.id)])
                    lines.append("\(row.id): still dead: no mapping file declares \(row.route)")
                    failed = true
                    continue
                }
                switch remap(row.request, route: route, id: row.id, bindings: bindings) {
                case .success(let calls):
                    for (index, call) in calls.enumerated() {
                        let object = Relay.fieldsObject(call)
                        if index == 0 {
                            try requeue.run([.text(call["room_id"] ?? ""), .text(object), .integer(now), .integer(now), .text(row.id)])
                        } else {
                            try insert.run([.text("\(row.id)-r\(index)"), .text(row.route), .text(row.credential), .text(call["room_id"] ?? ""), .text(object), .text(row.request), .integer(now), .integer(now)])
                        }
                    }
                    lines.append("\(row.id): replayed")
                case .failure(let reason):
                    try keepDead.run([.text("replay: \(reason)"), .text(row.id)])
                    lines.append("\(row.id): still dead: \(reason)")
                    failed = true
                }
            }
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw SettingsError("cannot replay: \(error)")
        }
        if lines.isEmpty { lines.append("no dead deliveries") }
        return MappingCommands.Result(lines: lines, exitCode: failed ? 1 : 0)
    }

    struct ReplayProblem: Error, CustomStringConvertible {
        let description: String
    }

    /// Re-runs the current mapping on a stored request.
    static func remap(_ record: String, route: MappingRoute, id: String, bindings: any BindingLookup) -> Result<[MappedCall], ReplayProblem> {
        guard let stored = try? JSONParser().parse(record), let bodyText = stored["body"]?.stringValue else {
            return .failure(ReplayProblem(description: "the stored request is unreadable"))
        }
        func pairs(_ key: String) -> [(name: String, value: String)] {
            guard case .object(let members)? = stored[key] else { return [] }
            return members.map { ($0.key, $0.value.text) }
        }
        let headers = pairs("headers")
        let contentType = headers.first { $0.name == "content-type" }?.value
        let body: JSONValue
        switch RequestBody.decode(Array(bodyText.utf8), contentType: contentType, acceptsForm: route.acceptsForm) {
        case .success(let value): body = value
        case .failure(let problem): return .failure(ReplayProblem(description: problem.message))
        }
        let document = RequestDocument.make(
            body: body, headers: headers, query: pairs("query"), route: route.path, receivedAt: RequestBody.timestamp(Date()), requestID: id)
        switch route.apply(to: document, bindings: bindings) {
        case .calls(let calls, _): return .success(calls)
        case .ignored(let reason): return .failure(ReplayProblem(description: "ignored (\(reason))"))
        case .failed(let failure): return .failure(ReplayProblem(description: "mapping failed: \(failure)"))
        case .bound: return .failure(ReplayProblem(description: "the rule only binds"))
        }
    }
}
