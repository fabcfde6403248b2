import Foundation
import RelayMapping

/// `happyrelay bindings list|delete` (interface.md), on the relay's database.
package enum BindingCommands {
    package static let listOptions: [CommandLineOption] = [
        CommandLineOption("--key", value: "KIND=VALUE", help: "only this key"),
        CommandLineOption("--json", help: "one JSON object per line"),
        .dataDirectory,
        .help,
    ]

    package static let deleteOptions: [CommandLineOption] = [
        .dataDirectory,
        .help,
    ]

    static func key(_ text: String) throws(SettingsError) -> (kind: String, value: String) {
        guard let equals = text.firstIndex(of: "="), equals > text.startIndex else {
            throw SettingsError("\"\(text)\" is not KIND=VALUE", isUsageError: true)
        }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    /// Lists unexpired bindings: key, uuid, room_id, created, expires.
    package static func list(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> MappingCommands.Result {
        let parsed = try ParsedOptions(arguments, options: listOptions, environment: environment)
        if let extra = parsed.positional.first { throw SettingsError("unexpected argument \(extra)", isUsageError: true) }
        let filter = try parsed.value("--key").map { text throws(SettingsError) in try key(text) }
        let database = try DeliveryCommands.open(parsed)
        var lines: [String] = []
        do {
            let query = try database.prepare(
                "SELECT kind, value, uuid, room_id, created_at, expires_at FROM bindings WHERE expires_at > ?1 AND (?2 IS NULL OR (kind = ?2 AND value = ?3)) ORDER BY kind, value")
            try query.bind([.integer(Int(Date().timeIntervalSince1970 * 1000)), filter.map { .text($0.kind) } ?? .null, filter.map { .text($0.value) } ?? .null])
            while try query.step() {
                let fields = [
                    ("key", "\(query.text(0) ?? "")=\(query.text(1) ?? "")"), ("uuid", query.text(2) ?? ""), ("room_id", query.text(3) ?? ""),
                    ("created", RFC3339.timestamp(milliseconds: query.integer(4))), ("expires", RFC3339.timestamp(milliseconds: query.integer(5))),
                ]
                if parsed.isOn("--json") {
                    lines.append(JSONSerializer.objectText(fields.map { (key: $0.0, value: $0.1) }))
                } else {
                    lines.append(fields.map(\.1).joined(separator: " "))
                }
            }
        } catch {
            throw SettingsError("cannot read the bindings: \(error)")
        }
        return MappingCommands.Result(lines: lines, exitCode: 0)
    }

    /// Deletes one binding.
    package static func delete(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> MappingCommands.Result {
        let parsed = try ParsedOptions(arguments, options: deleteOptions, environment: environment)
        guard parsed.positional.count == 1 else { throw SettingsError("give one KIND=VALUE", isUsageError: true) }
        let (kind, value) = try key(parsed.positional[0])
        let database = try DeliveryCommands.open(parsed)
        do {
            let delete = try database.prepare("DELETE FROM bindings WHERE kind = ? AND value = ?")
            try delete.run([.text(kind), .text(value)])
            let deleted = database.changes > 0
            return MappingCommands.Result(lines: [deleted ? "deleted \(kind)=\(value)" : "no binding \(kind)=\(value)"], exitCode: deleted ? 0 : 1)
        } catch {
            throw SettingsError("cannot delete the binding: \(error)")
        }
    }
}
