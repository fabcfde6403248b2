import Foundation
import RelayCore
import RelayMapping
import RelayStore

/// `happyrelay deliveries list|replay`: they open the relay's database directly, which
/// SQLite's locking makes safe beside a running relay (it picks replayed deliveries up
/// within a second).
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

    /// The data directory's store, or a message saying why it cannot be opened.
    static func open(_ parsed: ParsedOptions) throws(SettingsError) -> SQLiteAdmin {
        let directory = parsed.value("--data-dir") ?? "data"
        do {
            guard let admin = try SQLiteAdmin(directory: directory) else { throw SettingsError("no delivery queue in \(directory)") }
            return admin
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError("cannot open \(SQLiteSchema.path(in: directory)): \(error)")
        }
    }

    /// Lists deliveries: id, state, route, attempts, last reason.
    package static func list(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: listOptions, environment: environment)
        if let extra = parsed.positional.first { throw SettingsError("unexpected argument \(extra)", isUsageError: true) }
        var state: DeliveryState?
        if let text = parsed.value("--state") {
            guard let known = DeliveryState(rawValue: text) else { throw SettingsError("--state: \"\(text)\" is not pending, dead or delivered") }
            state = known
        }
        let rows: [DeliverySummary]
        do {
            rows = try open(parsed).list(state: state)
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError("cannot read the queue: \(error)")
        }
        let lines = rows.map { row in
            parsed.isOn("--json")
                ? JSONSerializer.objectText(
                    [("id", row.id), ("state", row.state.rawValue), ("route", row.route), ("attempts", String(row.attempts)),
                     ("last_reason", row.lastReason), ("accepted_at", RFC3339.timestamp(milliseconds: row.acceptedAt))].map { (key: $0.0, value: $0.1) })
                : "\(row.id) \(row.state.rawValue) \(row.route) \(row.attempts) \(row.lastReason)"
        }
        return CommandResult(lines: lines, exitCode: 0)
    }

    /// Puts dead deliveries back in the queue, re-mapped with the current mapping files.
    package static func replay(_ arguments: [String], environment: [String: String], now: Int = Int(Date().timeIntervalSince1970 * 1000))
        throws(SettingsError) -> CommandResult
    {
        let parsed = try ParsedOptions(arguments, options: replayOptions, environment: environment)
        let all = parsed.isOn("--all-dead")
        guard all != (parsed.positional.count == 1), parsed.positional.count <= 1 else {
            throw SettingsError("give one delivery ID or --all-dead", isUsageError: true)
        }
        let store = try open(parsed)
        // Rules that resolve read the bindings as the relay does: the request is re-mapped in full.
        let bindings: SQLiteLookups
        do {
            bindings = try SQLiteLookups(path: SQLiteSchema.path(in: parsed.value("--data-dir") ?? "data"), connections: 1)
        } catch {
            throw SettingsError("cannot read the bindings: \(error)")
        }
        let mappings = parsed.value("--mappings") ?? "mappings"
        let (routes, diagnostics) = MappingLoader.load(directory: mappings)
        guard diagnostics.isEmpty else {
            return CommandResult(lines: diagnostics.map(\.description) + ["fix the mappings before replaying"], exitCode: 1)
        }
        do {
            let report = try DeliveryAdmin(store: store).replay(id: all ? nil : parsed.positional[0], routes: routes, bindings: bindings, now: now)
            return CommandResult(lines: report.lines, exitCode: report.isComplete ? 0 : 1)
        } catch {
            throw SettingsError("cannot replay: \(error)")
        }
    }
}
