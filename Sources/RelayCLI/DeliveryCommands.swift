import FoundationEssentials
import RelayCore
import RelayMapping
import RelayStore

/// `happyrelay deliveries list|show|retry|delete|replay`: they open the relay's database
/// directly, which SQLite's locking makes safe beside a running relay (it notices the changes
/// within a second).
package enum DeliveryCommands {
    /// The name under which the serving relay records its mappings folder for replay.
    package static let recordedMappings = "mappings_folder"

    package static let listOptions: [CommandLineOption] = [
        CommandLineOption("--state", value: "pending|dead|delivered", help: "only deliveries in this state"),
        CommandLineOption("--route", value: "PATH", help: "only deliveries of this route"),
        CommandLineOption("--room", value: "ROOM_ID", help: "only deliveries for this chat room"),
        CommandLineOption("--since", value: "TIME", help: "accepted at or after TIME (RFC 3339, or a duration ago: 2h, 7d)"),
        CommandLineOption("--until", value: "TIME", help: "accepted before TIME (RFC 3339, or a duration ago)"),
        CommandLineOption("--limit", value: "N", help: "at most N deliveries; the next page's --after is printed to standard error (default: all)"),
        CommandLineOption("--after", value: "CURSOR", help: "the page after this cursor (from a previous --limit)"),
        CommandLineOption("--json", help: "one JSON object per line"),
        .dataDirectory,
        .databaseURL,
        .help,
    ]

    package static let showOptions: [CommandLineOption] = [
        CommandLineOption("--json", help: "one JSON object"),
        .dataDirectory,
        .databaseURL,
        .help,
    ]

    package static let deleteOptions: [CommandLineOption] = [
        CommandLineOption(
            "--dead-older-than", value: "DURATION",
            help: "delete every dead delivery that died longer ago than this (30d, 12h), 200 per transaction so that a running relay is not held up"),
        .dataDirectory,
        .databaseURL,
        .help,
    ]

    package static let retryOptions: [CommandLineOption] = [.dataDirectory, .databaseURL, .help]

    package static let replayOptions: [CommandLineOption] = [
        CommandLineOption(
            "--all-dead", help: "replay every dead delivery, oldest first, 200 per transaction; one stopped part-way says where, and a second run takes the rest"),
        CommandLineOption("--as-stored", help: "send the call each died with again, without re-mapping (for deliveries HappyTalk refused)"),
        .dataDirectory,
        .databaseURL,
        CommandLineOption(
            "--mappings", environment: "HAPPYRELAY_MAPPINGS", value: "DIR",
            help: "folder of mapping files (default: the one the relay serving this data directory recorded, else mappings)"),
        .help,
    ]

    /// Where the options say the store is (`ParsedOptions.storeLocation`; default `data`).
    static func location(_ parsed: ParsedOptions) throws(SettingsError) -> StoreLocation {
        try parsed.storeLocation(defaultDirectory: "data")!
    }

    /// The store's admin operations, or a message saying why it cannot be opened.
    static func open(_ parsed: ParsedOptions) throws(SettingsError) -> any DeliveryAdministration {
        let location = try location(parsed)
        do {
            guard let admin = try location.openAdministration() else {
                throw SettingsError("no delivery queue in \(location)")
            }
            return admin
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError(location.openingFailure(error))
        }
    }

    /// Runs a store operation, turning its failure into a message.
    static func reading<T>(_ what: String, _ body: () throws -> T) throws(SettingsError) -> T {
        do {
            return try body()
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError("cannot \(what): \(error)")
        }
    }

    /// The one positional argument, a delivery id.
    static func deliveryID(_ parsed: ParsedOptions) throws(SettingsError) -> String {
        guard parsed.positional.count == 1 else { throw SettingsError("give one delivery ID", isUsageError: true) }
        return parsed.positional[0]
    }

    /// A line of a list: id, state, route, attempts, last reason.
    static func line(_ row: DeliverySummary, json: Bool) -> String {
        json
            ? JSONSerializer.objectText(
                [("id", row.id), ("state", row.state.rawValue), ("route", row.route), ("attempts", String(row.attempts)),
                 ("last_reason", row.lastReason), ("accepted_at", RFC3339.timestamp(milliseconds: row.acceptedAt))].map { (key: $0.0, value: $0.1) })
            : "\(row.id) \(row.state.rawValue) \(row.route) \(row.attempts) \(row.lastReason)"
    }

    /// The filter of `list` options (shared with the admin API's query parameters).
    static func filter(_ parsed: ParsedOptions, now: Int) throws(SettingsError) -> DeliveryFilter {
        var filter = DeliveryFilter()
        if let text = parsed.value("--state") {
            guard let known = DeliveryState(rawValue: text) else { throw SettingsError("--state: \"\(text)\" is not pending, dead or delivered") }
            filter.state = known
        }
        filter.route = parsed.value("--route")
        filter.roomID = parsed.value("--room")
        filter.since = try parsed.time("--since", now: now)
        filter.until = try parsed.time("--until", now: now)
        if parsed.value("--limit") != nil { filter.limit = try parsed.integer("--limit", default: 100, range: 1...1_000_000) }
        if let text = parsed.value("--after") {
            guard let cursor = Int(text), cursor >= 0 else { throw SettingsError("--after: \"\(text)\" is not a cursor printed by --limit") }
            filter.after = cursor
        }
        return filter
    }

    /// Lists deliveries: id, state, route, attempts, last reason.
    package static func list(_ arguments: [String], environment: [String: String], standardError: (String) -> Void = { _ in }) throws(SettingsError)
        -> CommandResult
    {
        let parsed = try ParsedOptions(arguments, options: listOptions, environment: environment)
        if let extra = parsed.positional.first { throw SettingsError("unexpected argument \(extra)", isUsageError: true) }
        let filter = try filter(parsed, now: currentUnixMilliseconds())
        let store = try open(parsed)
        let page = try reading("read the queue") { try store.list(filter) }
        if let next = page.next { standardError("more deliveries follow: --after \(next)") }
        return CommandResult(lines: page.rows.map { line($0, json: parsed.isOn("--json")) }, exitCode: 0)
    }

    /// Shows one delivery: its request, its call, every attempt.
    package static func show(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: showOptions, environment: environment)
        let id = try deliveryID(parsed)
        let store = try open(parsed)
        guard let detail = try reading("read the queue", { try store.detail(id: id) }) else {
            return CommandResult(lines: ["\(id): no delivery with this id"], exitCode: 1)
        }
        return CommandResult(lines: parsed.isOn("--json") ? [DeliveryAdmin.json(detail)] : DeliveryAdmin.lines(detail), exitCode: 0)
    }

    /// Deletes one delivery, or the dead ones older than a duration.
    package static func delete(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: deleteOptions, environment: environment)
        let olderThan = try parsed.value("--dead-older-than").map { _ throws(SettingsError) in try parsed.seconds("--dead-older-than", default: .zero) }
        guard (olderThan != nil) != (parsed.positional.count == 1), parsed.positional.count <= 1 else {
            throw SettingsError("give one delivery ID or --dead-older-than DURATION", isUsageError: true)
        }
        let store = try open(parsed)
        if let olderThan {
            let count = try reading("delete") { try DeliveryAdmin(store: store).deleteDead(olderThan: olderThan, now: currentUnixMilliseconds()) }
            return CommandResult(lines: ["deleted \(count) dead \(count == 1 ? "delivery" : "deliveries")"], exitCode: 0)
        }
        let id = parsed.positional[0]
        let deleted = try reading("delete") { try store.delete(id: id) }
        return CommandResult(lines: [deleted ? "\(id): deleted" : "\(id): no delivery with this id"], exitCode: deleted ? 0 : 1)
    }

    /// Makes a pending delivery due now.
    package static func retry(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: retryOptions, environment: environment)
        let id = try deliveryID(parsed)
        let store = try open(parsed)
        let result = try reading("retry") { try store.retry(id: id, now: currentUnixMilliseconds()) }
        let (line, ok) = DeliveryAdmin.describe(result, id: id)
        return CommandResult(lines: [line], exitCode: ok ? 0 : 1)
    }

    /// Puts dead deliveries back in the queue, re-mapped with the mapping files (those the
    /// relay serving the data directory recorded, unless `--mappings` is given), or as stored.
    package static func replay(_ arguments: [String], environment: [String: String], now: Int = currentUnixMilliseconds())
        throws(SettingsError) -> CommandResult
    {
        let parsed = try ParsedOptions(arguments, options: replayOptions, environment: environment)
        let all = parsed.isOn("--all-dead")
        guard all != (parsed.positional.count == 1), parsed.positional.count <= 1 else {
            throw SettingsError("give one delivery ID or --all-dead", isUsageError: true)
        }
        let store = try open(parsed)
        let id = all ? nil : parsed.positional[0]
        if parsed.isOn("--as-stored") {
            let report = try reading("replay") { try DeliveryAdmin(store: store).replay(id: id, routes: [], bindings: NoBindings(), asStored: true, now: now) }
            return CommandResult(lines: report.lines, exitCode: report.isComplete ? 0 : 1)
        }
        // Rules that resolve read the bindings as the relay does: the request is re-mapped in full.
        let bindings: any BindingLookup
        do {
            bindings = try location(parsed).openLookups() ?? NoBindings()
        } catch {
            throw SettingsError("cannot read the bindings: \(error)")
        }
        var notes: [String] = []
        let mappings: String
        if let given = parsed.value("--mappings") {
            mappings = given
        } else if let recorded = try? store.recorded(recordedMappings) {
            mappings = recorded
            notes.append("re-mapping with \(recorded) (the relay serving this data directory loaded it)")
        } else {
            mappings = "mappings"
        }
        let (routes, diagnostics) = MappingLoader.load(directory: mappings)
        guard diagnostics.isEmpty else {
            return CommandResult(lines: notes + diagnostics.map(\.description) + ["fix the mappings before replaying"], exitCode: 1)
        }
        let report = try reading("replay") { try DeliveryAdmin(store: store).replay(id: id, routes: routes, bindings: bindings, now: now) }
        return CommandResult(lines: notes + report.lines, exitCode: report.isComplete ? 0 : 1)
    }
}
