import FoundationEssentials
import RelayCore
import RelayMapping
import RelayStore

/// `happyrelay bindings list|delete`, on the relay's database.
package enum BindingCommands {
    package static let listOptions: [CommandLineOption] = [
        CommandLineOption("--key", value: "KIND=VALUE", help: "only this key"),
        CommandLineOption("--json", help: "one JSON object per line"),
        .dataDirectory,
        .databaseURL,
        .help,
    ]

    package static let deleteOptions: [CommandLineOption] = [
        .dataDirectory,
        .databaseURL,
        .help,
    ]

    static func key(_ text: String) throws(SettingsError) -> (kind: String, value: String) {
        guard let equals = text.firstIndex(of: "="), equals > text.startIndex else {
            throw SettingsError("\"\(text)\" is not KIND=VALUE", isUsageError: true)
        }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    /// Lists unexpired bindings: key, uuid, room_id, created, expires.
    package static func list(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: listOptions, environment: environment)
        if let extra = parsed.positional.first { throw SettingsError("unexpected argument \(extra)", isUsageError: true) }
        let filter = try parsed.value("--key").map { text throws(SettingsError) in try key(text) }
        let rows: [BindingRecord]
        do {
            rows = try DeliveryCommands.open(parsed).bindings(
                kind: filter?.kind, value: filter?.value, now: currentUnixMilliseconds())
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError("cannot read the bindings: \(error)")
        }
        let lines = rows.map { row in
            let fields = [
                ("key", "\(row.kind)=\(row.value)"), ("uuid", row.uuid), ("room_id", row.roomID),
                ("created", RFC3339.timestamp(milliseconds: row.createdAt)), ("expires", RFC3339.timestamp(milliseconds: row.expiresAt)),
            ]
            return parsed.isOn("--json") ? JSONSerializer.objectText(fields.map { (key: $0.0, value: $0.1) }) : fields.map(\.1).joined(separator: " ")
        }
        return CommandResult(lines: lines, exitCode: 0)
    }

    /// Deletes one binding.
    package static func delete(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> CommandResult {
        let parsed = try ParsedOptions(arguments, options: deleteOptions, environment: environment)
        guard parsed.positional.count == 1 else { throw SettingsError("give one KIND=VALUE", isUsageError: true) }
        let (kind, value) = try key(parsed.positional[0])
        do {
            let deleted = try DeliveryCommands.open(parsed).deleteBinding(kind: kind, value: value)
            return CommandResult(lines: [deleted ? "deleted \(kind)=\(value)" : "no binding \(kind)=\(value)"], exitCode: deleted ? 0 : 1)
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError("cannot delete the binding: \(error)")
        }
    }
}
