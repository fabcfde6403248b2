import FoundationEssentials
import RelayCore
import RelayMapping
import RelayStore

/// One command-line option, optionally mirrored by an environment variable.
package struct CommandLineOption: Sendable {
    package let flag: String
    package let environment: String?
    /// The placeholder in help text; nil for a switch that takes no value.
    package let valueName: String?
    package let help: String

    package init(_ flag: String, environment: String? = nil, value valueName: String? = nil, help: String) {
        self.flag = flag
        self.environment = environment
        self.valueName = valueName
        self.help = help
    }
}

extension CommandLineOption {
    /// `--mappings DIR`, shared by the commands that read mapping files.
    package static let mappings = CommandLineOption(
        "--mappings", environment: "HAPPYRELAY_MAPPINGS", value: "DIR", help: "folder of mapping files (default mappings)")
    /// `--data-dir DIR`, shared by the commands that open the relay's database.
    package static let dataDirectory = CommandLineOption(
        "--data-dir", environment: "HAPPYRELAY_DATA_DIR", value: "DIR", help: "the relay's data directory (default data)")
    /// `--database-url URL`, shared by the commands that open the relay's database.
    package static let databaseURL = CommandLineOption(
        "--database-url", environment: "HAPPYRELAY_DATABASE_URL", value: "URL",
        help: "a PostgreSQL database several relays share (postgres://user:password@host:port/db; needs libpq, libpq5 on Debian); wins over --data-dir; unset: SQLite in --data-dir")
    /// `--help`.
    package static let help = CommandLineOption("--help", help: "show this help")
}

/// The values given for a set of options: flags first, then the environment (the flag wins).
package struct ParsedOptions: Sendable {
    private var values: [String: [String]] = [:]
    private var sources: [String: String] = [:]
    /// Arguments that are not options, in order.
    package private(set) var positional: [String] = []

    /// Parses `arguments` against `options`; `--flag value`, `--flag=value` and switches.
    package init(
        _ arguments: [String], options: [CommandLineOption], environment: [String: String] = [:]
    ) throws(SettingsError) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                if argument == "-" || !argument.hasPrefix("-") {
                    positional.append(argument)
                    continue
                }
                throw SettingsError("unknown option \(argument)", isUsageError: true)
            }
            var name = argument
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            guard let option = options.first(where: { $0.flag == name }) else {
                let suggestion = closestMatch(to: name, among: options.map(\.flag)).map { " (did you mean \($0)?)" } ?? ""
                throw SettingsError("unknown option \(name)\(suggestion)", isUsageError: true)
            }
            if option.valueName == nil {
                guard inlineValue == nil else { throw SettingsError("\(name) takes no value", isUsageError: true) }
                values[name, default: []].append("1")
            } else if let inlineValue {
                values[name, default: []].append(inlineValue)
            } else {
                guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                    throw SettingsError("\(name) needs a value (\(option.valueName!))", isUsageError: true)
                }
                values[name, default: []].append(arguments[index])
                index += 1
            }
            sources[name] = name
        }
        for option in options where values[option.flag] == nil {
            if let variable = option.environment, let value = environment[variable], !value.isEmpty {
                values[option.flag] = [value]
                sources[option.flag] = variable
            }
        }
    }

    /// The last value given for a flag (or its environment variable).
    package func value(_ flag: String) -> String? { values[flag]?.last }

    /// Every value given for a repeatable flag.
    package func all(_ flag: String) -> [String] { values[flag] ?? [] }

    /// Whether a switch is on (given as a flag, or its variable set to 1/true/yes/on).
    package func isOn(_ flag: String) -> Bool {
        guard let value = values[flag]?.last else { return false }
        return ["1", "true", "yes", "on"].contains(value.lowercased())
    }

    /// A switch whose variable must say yes or no: 1/true/yes/on or 0/false/no/off.
    package func strictSwitch(_ flag: String) throws(SettingsError) -> Bool {
        guard let value = values[flag]?.last else { return false }
        if isOn(flag) { return true }
        guard ["0", "false", "no", "off"].contains(value.lowercased()) else {
            throw SettingsError("\(source(flag)): \"\(value)\" is not 1, true, yes, on, 0, false, no or off")
        }
        return false
    }

    /// Where a value came from, for messages: the flag or the environment variable.
    package func source(_ flag: String) -> String { sources[flag] ?? flag }

    /// The flag or variable that gave a value; nil when the default applies.
    package func origin(_ flag: String) -> String? { sources[flag] }

    /// A positive integer value, or the default.
    package func integer(_ flag: String, default fallback: Int, range: ClosedRange<Int>) throws(SettingsError) -> Int {
        guard let text = value(flag) else { return fallback }
        guard let number = Int(text), range.contains(number) else {
            throw SettingsError("\(source(flag)): \"\(text)\" is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// A duration: seconds (decimals allowed), or a number with `s`, `m`, `h` or `d`; or the default.
    package func seconds(_ flag: String, default fallback: Duration) throws(SettingsError) -> Duration {
        guard let text = value(flag) else { return fallback }
        guard let duration = Self.duration(text) else {
            throw SettingsError("\(source(flag)): \"\(text)\" is not a positive duration (seconds, or a number with s, m, h or d: 30d)")
        }
        return duration
    }

    /// `90`, `1.5`, `90s`, `15m`, `12h`, `30d` (up to a year); nil for anything else.
    package static func duration(_ text: String) -> Duration? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var digits = Substring(text)
        var unit = 1.0
        if let last = text.last, let factor = units[last] {
            digits = text.dropLast()
            unit = factor
        }
        guard let number = Double(digits), number.isFinite, number > 0, number * unit <= 86_400 * 366 else { return nil }
        return .milliseconds(Int64((number * unit * 1000).rounded()))
    }

    /// The PostgreSQL connection URI of `--database-url`, or nil when unset. An invalid one is
    /// refused without echoing it (it may hold a password).
    package func databaseURL(_ flag: String = "--database-url") throws(SettingsError) -> String? {
        guard let text = value(flag), !text.isEmpty else { return nil }
        guard PostgresURL.isValid(text) else {
            throw SettingsError("\(source(flag)): not a postgres:// or postgresql:// connection URI (postgres://user:password@host:5432/database)")
        }
        return text
    }

    /// Where `--data-dir` and `--database-url` put the relay's store, the same for every
    /// command: the database when a URL is given (from the flag or `HAPPYRELAY_DATABASE_URL`),
    /// so that operators' commands read the store the relays serve; both flags typed together
    /// are refused. Nil when neither is given and there is no `defaultDirectory`.
    package func storeLocation(defaultDirectory: String?) throws(SettingsError) -> StoreLocation? {
        guard let url = try databaseURL() else { return (value("--data-dir") ?? defaultDirectory).map { .sqlite(directory: $0) } }
        guard origin("--data-dir") != "--data-dir" || origin("--database-url") != "--database-url" else {
            throw SettingsError("--data-dir and --database-url exclude each other", isUsageError: true)
        }
        return .postgres(url: url)
    }

    /// A point in time: an RFC 3339 timestamp, or a duration before `now` (`2h`: two hours
    /// ago); nil when the flag is absent.
    package func time(_ flag: String, now: Int) throws(SettingsError) -> Int? {
        guard let text = value(flag)?.trimmingWhitespace() else { return nil }
        if let ago = Self.duration(text) { return now - ago.wholeMilliseconds }
        guard let date = (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text)) else {
            throw SettingsError("\(source(flag)): \"\(text)\" is not an RFC 3339 time (2026-12-01T09:00:00Z) or a duration ago (2h, 7d)")
        }
        return Int((date.timeIntervalSince1970 * 1000).rounded())
    }
}

/// Help text for a list of options, aligned.
package func helpText(for options: [CommandLineOption]) -> String {
    let labels = options.map { option in option.flag + (option.valueName.map { " \($0)" } ?? "") }
    let width = (labels.map(\.count).max() ?? 0) + 2
    return zip(labels, options).map { label, option in
        var line = "  " + label + String(repeating: " ", count: width - label.count) + option.help
        if let variable = option.environment { line += " [env: \(variable)]" }
        return line
    }.joined(separator: "\n")
}
