import FoundationEssentials
import RelayCore
import RelayStore

/// `happyrelay store copy`: moves a relay's queue from its SQLite data directory to the
/// PostgreSQL database that several relays share.
package enum StoreCommands {
    package static let copyOptions: [CommandLineOption] = [
        CommandLineOption("--from-data-dir", value: "DIR", help: "the data directory of the relay that ran on SQLite (required)"),
        CommandLineOption(
            "--to", environment: "HAPPYRELAY_DATABASE_URL", value: "URL",
            help: "the PostgreSQL database the relays share (postgres://user:password@host:port/db; required)"),
        .help,
    ]

    /// Copies, and says what it copied (run it again: nothing is copied twice).
    package static func copy(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: copyOptions, environment: environment)
        if let extra = parsed.positional.first { throw SettingsError("unexpected argument \(extra)", isUsageError: true) }
        guard let directory = parsed.value("--from-data-dir") else { throw SettingsError("--from-data-dir DIR is required", isUsageError: true) }
        guard let url = try parsed.databaseURL("--to") else { throw SettingsError("--to URL (or HAPPYRELAY_DATABASE_URL) is required", isUsageError: true) }
        let report: StoreCopy.Report
        do {
            report = try StoreCopy.copy(fromDataDirectory: directory, to: url, now: currentUnixMilliseconds())
        } catch {
            throw SettingsError("nothing was copied: \(error)")
        }
        var lines = [
            "copied from \(SQLiteSchema.path(in: directory)) to \(PostgresURL.redacted(url)):",
            "  deliveries: \(report.pending) pending, \(report.dead) dead (attempts: \(report.attempts))",
            "  dedupe keys: \(report.dedupeKeys)",
            "  bindings: \(report.bindings)",
        ]
        let present = report.deliveriesPresent + report.dedupeKeysPresent + report.bindingsPresent
        if present > 0 {
            lines.append(
                "already there, left as they were: deliveries \(report.deliveriesPresent), dedupe keys \(report.dedupeKeysPresent), bindings \(report.bindingsPresent)")
        }
        lines.append("Delivered records stay in the data directory. Stop the SQLite relay before the copy; start the relays with --database-url after it.")
        return CommandResult(lines: lines, exitCode: 0)
    }
}
