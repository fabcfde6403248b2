import FoundationEssentials
import RelayCore
import RelayHTTP
import RelayMapping
import RelayStore

/// What a command printed and how it exits. The commands are pure functions from arguments to
/// a result, so tests call them directly.
package struct CommandResult: Sendable, Equatable {
    package var lines: [String]
    package var exitCode: Int32

    package init(lines: [String], exitCode: Int32) {
        self.lines = lines
        self.exitCode = exitCode
    }
}

package enum MappingCommands {
    package static let checkOptions: [CommandLineOption] = [
        .mappings,
        .help,
    ]

    package static let mapOptions: [CommandLineOption] = [
        CommandLineOption("--route", value: "PATH", help: "the route whose mapping is applied (required)"),
        CommandLineOption("--header", value: "'Name: value'", help: "a request header (repeatable)"),
        CommandLineOption("--query", value: "k=v", help: "a query parameter (repeatable)"),
        .mappings,
        CommandLineOption("--data-dir", value: "DIR", help: "resolve bindings from this relay data directory (default: nothing is bound)"),
        CommandLineOption("--database-url", value: "URL", help: "resolve bindings from this relays' PostgreSQL database (postgres://…)"),
        CommandLineOption("--bind", value: "KIND=VALUE:UUID/ROOM", help: "a binding to resolve against, without a database (repeatable)"),
        CommandLineOption("--explain", help: "also print the rule chosen, each field with its source and value, and the fields left out"),
        .help,
    ]

    /// Validates mapping files (the folders and files named, else `--mappings`) and runs their
    /// examples; warns about unset secrets and paths no example reaches.
    package static func check(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: checkOptions, environment: environment)
        let paths = parsed.positional.isEmpty ? [parsed.value("--mappings") ?? "mappings"] : parsed.positional
        let loaded = MappingLoader.load(paths)
        var lines = loaded.diagnostics.map(\.description) + loaded.skipped
        var failed = !loaded.diagnostics.isEmpty
        for route in loaded.routes {
            let problems = route.runExamples()
            lines += problems.map(\.description)
            failed = failed || !problems.isEmpty
            if problems.isEmpty {
                lines.append(
                    "\(route.file): ok: \(route.path), \(route.rules.count) rule\(route.rules.count == 1 ? "" : "s"), "
                        + "\(route.examples.count) example\(route.examples.count == 1 ? "" : "s") passed")
            }
            lines += route.warnings(environment: environment, fileExists: { FileManager.default.fileExists(atPath: $0) }).map(\.description)
        }
        if loaded.routes.isEmpty && loaded.diagnostics.isEmpty { lines.append("\(paths.joined(separator: ", ")): no mapping files") }
        return CommandResult(lines: lines, exitCode: failed ? 1 : 0)
    }

    /// Maps one payload as the route would, without verifying or sending.
    package static func map(_ arguments: [String], environment: [String: String], standardInput: () -> [UInt8]) throws(SettingsError)
        -> CommandResult
    {
        let parsed = try ParsedOptions(arguments, options: mapOptions, environment: environment)
        guard let routePath = parsed.value("--route") else { throw SettingsError("--route is required", isUsageError: true) }
        guard parsed.positional.count == 1, let payload = parsed.positional.first else {
            throw SettingsError(
                parsed.positional.isEmpty ? "PAYLOAD is required (a file, or - for standard input)" : "only one PAYLOAD is allowed",
                isUsageError: true)
        }
        var headers: [(name: String, value: String)] = []
        for header in parsed.all("--header") {
            guard let field = Self.headerField(header) else {
                throw SettingsError("--header \"\(header)\" is not 'Name: value'", isUsageError: true)
            }
            headers.append(field)
        }
        let query = parsed.all("--query").flatMap { FormBody.pairs(Array($0.utf8)) }
        let directory = parsed.value("--mappings") ?? "mappings"
        let (routes, diagnostics) = MappingLoader.load(directory: directory)
        if !diagnostics.isEmpty {
            return CommandResult(lines: diagnostics.map(\.description), exitCode: 1)
        }
        guard let route = routes.first(where: { $0.path == routePath }) else {
            let known = routes.map(\.path)
            let hint = closestMatch(to: routePath, among: known).map { " (did you mean \($0)?)" } ?? ""
            return CommandResult(lines: ["no mapping file declares the route \(routePath)\(hint)"], exitCode: 1)
        }
        let bytes: [UInt8]
        if payload == "-" {
            bytes = standardInput()
        } else {
            guard let read = FileBytes.read(path: payload) else {
                return CommandResult(lines: ["cannot read \(payload)"], exitCode: 1)
            }
            bytes = read
        }
        var bindings: any BindingLookup = NoBindings()
        let seeded = parsed.all("--bind")
        if !seeded.isEmpty {
            var entries: [(kind: String, value: String, uuid: String, roomID: String)] = []
            for text in seeded {
                guard let entry = Self.parseBinding(text) else {
                    throw SettingsError("--bind \"\(text)\" is not KIND=VALUE:UUID/ROOM (e.g. order_number=1043:u-1/r-9)", isUsageError: true)
                }
                entries.append(entry)
            }
            bindings = SeededBindings(entries: entries)
        }
        if let location = try parsed.storeLocation(defaultDirectory: nil) {
            guard seeded.isEmpty else {
                let flag = if case .postgres = location { "--database-url" } else { "--data-dir" }
                throw SettingsError("--bind and \(flag) exclude each other", isUsageError: true)
            }
            do {
                guard let lookups = try location.openLookups() else { return CommandResult(lines: ["no relay database in \(location)"], exitCode: 1) }
                bindings = lookups
            } catch {
                return CommandResult(lines: [location.openingFailure(error)], exitCode: 1)
            }
        }
        return tryRoute(route, body: bytes, headers: headers, query: query, bindings: bindings, explain: parsed.isOn("--explain"))
    }

    /// What a route's mapping makes of a request, as `map` prints it (the token as `***`),
    /// with its exit code: 0 a call, 3 ignored, 1 invalid. Sends and stores nothing; the
    /// console's mapping tester shows the same.
    package static func tryRoute(
        _ route: MappingRoute, body bytes: [UInt8], headers: [(name: String, value: String)], query: [(name: String, value: String)],
        bindings: any BindingLookup, explain: Bool
    ) -> CommandResult {
        var headers = headers
        var query = query
        let contentType = headers.first { $0.name == "content-type" }?.value
        var body: JSONValue
        switch RequestBody.decode(bytes, contentType: contentType, acceptsForm: route.acceptsForm) {
        case .success(let value): body = value
        case .failure(let problem): return CommandResult(lines: [problem.message], exitCode: 1)
        }
        // An example request file ({headers, query, body}) is taken apart; flags win over its headers.
        if let example = Self.exampleRequest(body) {
            body = example.body
            headers += example.headers.filter { header in !headers.contains { $0.name == header.name } }
            query += example.query
        }
        let document = RequestDocument.make(
            body: body, headers: headers, query: query, route: route.path, receivedAt: RFC3339.timestamp(milliseconds: currentUnixMilliseconds()),
            requestID: "map")
        let outcome = route.apply(to: document, bindings: bindings)
        let explanation = explain ? route.explain(outcome, in: document, bindings: bindings) : []
        switch outcome {
        case .calls(let calls, let binds):
            return CommandResult(
                lines: explanation + binds.map(describe) + calls.map { String(decoding: $0.body(token: "***"), as: UTF8.self) }, exitCode: 0)
        case .bound(let binds):
            return CommandResult(lines: explanation + binds.map(describe), exitCode: 0)
        case .ignored(let reason):
            return CommandResult(lines: explanation + ["ignored: \(reason)"], exitCode: 3)
        case .failed(let failure):
            return CommandResult(lines: explanation + ["invalid: \(failure)"], exitCode: 1)
        }
    }

    /// `Name: value` as a header field (the name lower-cased), or nil.
    static func headerField(_ line: some StringProtocol) -> (name: String, value: String)? {
        guard let colon = line.firstIndex(of: ":"), colon > line.startIndex else { return nil }
        return (line[..<colon].trimmingWhitespace().lowercased(), line[line.index(after: colon)...].trimmingWhitespace())
    }

    /// `{headers, query, body}` as example files hold a request, or nil for a plain payload.
    static func exampleRequest(_ value: JSONValue) -> (headers: [(name: String, value: String)], query: [(name: String, value: String)], body: JSONValue)? {
        guard case .object(let members) = value.resolved, let body = members.first(where: { $0.key == "body" })?.value,
            members.allSatisfy({ ["headers", "query", "body"].contains($0.key) })
        else { return nil }
        func pairs(_ key: String) -> [(name: String, value: String)] {
            guard case .object(let list)? = members.first(where: { $0.key == key })?.value.resolved else { return [] }
            return list.map { (key == "headers" ? $0.key.lowercased() : $0.key, $0.value.text) }
        }
        return (pairs("headers"), pairs("query"), body.resolved)
    }

    /// `order_number=1043:u-1/r-9`.
    static func parseBinding(_ text: String) -> (kind: String, value: String, uuid: String, roomID: String)? {
        guard let equals = text.firstIndex(of: "="), let colon = text.lastIndex(of: ":"), equals < colon,
            let slash = text[colon...].firstIndex(of: "/")
        else { return nil }
        let kind = String(text[..<equals])
        let value = String(text[text.index(after: equals)..<colon])
        let uuid = String(text[text.index(after: colon)..<slash])
        let room = String(text[text.index(after: slash)...])
        guard !kind.isEmpty, !value.isEmpty, !uuid.isEmpty, !room.isEmpty else { return nil }
        return (kind, value, uuid, room)
    }

    static func describe(_ write: BindingWrite) -> String {
        "would bind \(write.kind)=\(write.value) to uuid \(write.uuid), room_id \(write.roomID) (map stores nothing)"
    }
}
