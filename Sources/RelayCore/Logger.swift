import RelayHTTP
import RelayMapping
import RelayStore

#if canImport(Glibc)
import Glibc
#endif

/// A small structured logger: one line per event, as text or JSON, to standard error.
/// Callers pass metadata as key/value pairs; secrets are never handed to it (they are
/// redacted where they are read, in `Credentials` and the verification schemes).
package struct Logger: Sendable {
    /// Severity, in increasing order.
    package enum Level: Int, Sendable, Comparable, CaseIterable {
        case trace, debug, info, warning, error

        package static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        package var name: String {
            switch self {
            case .trace: "trace"
            case .debug: "debug"
            case .info: "info"
            case .warning: "warning"
            case .error: "error"
            }
        }

        package init?(name: String) {
            guard let level = Level.allCases.first(where: { $0.name == name }) else { return nil }
            self = level
        }
    }

    /// Line format.
    package enum Format: String, Sendable {
        case text, json
    }

    /// Where lines go; standard error unless a test captures them.
    package struct Sink: Sendable {
        let write: @Sendable (String) -> Void

        package init(_ write: @escaping @Sendable (String) -> Void) { self.write = write }

        package static let standardError = Sink { line in
            line.utf8CString.withUnsafeBufferPointer { buffer in
                _ = Glibc.write(2, buffer.baseAddress, buffer.count - 1)
            }
        }
    }

    package var level: Level
    package var format: Format
    package var sink: Sink

    package init(level: Level = .info, format: Format = .text, sink: Sink = .standardError) {
        self.level = level
        self.format = format
        self.sink = sink
    }

    /// Writes one line when `level` is enabled.
    package func log(_ level: Level, _ message: String, _ metadata: KeyValuePairs<String, any LogValue> = [:]) {
        guard level >= self.level else { return }
        let timestamp = Self.timestamp()
        var line: String
        switch format {
        case .text:
            line = "\(timestamp) \(level.name.uppercased()) \(message)"
            for (key, item) in metadata {
                let value = item.logText
                // Quoted (and escaped) when a value could be read as more than one field or line.
                let needsQuotes = value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline || $0 == "\t" })
                line += " \(key)=" + (needsQuotes ? "\"\(JSONText.escaped(value))\"" : value)
            }
        case .json:
            line = "{\"ts\":\"\(timestamp)\",\"level\":\"\(level.name)\",\"msg\":\"\(JSONText.escaped(message))\""
            for (key, value) in metadata {
                line += ",\"\(JSONText.escaped(key))\":"
                value.appendJSON(to: &line)
            }
            line += "}"
        }
        sink.write(line + "\n")
    }

    package func info(_ message: String, _ metadata: KeyValuePairs<String, any LogValue> = [:]) { log(.info, message, metadata) }
    package func warning(_ message: String, _ metadata: KeyValuePairs<String, any LogValue> = [:]) {
        log(.warning, message, metadata)
    }
    package func error(_ message: String, _ metadata: KeyValuePairs<String, any LogValue> = [:]) { log(.error, message, metadata) }
    package func debug(_ message: String, _ metadata: KeyValuePairs<String, any LogValue> = [:]) { log(.debug, message, metadata) }

    private static func timestamp() -> String {
        RFC3339.timestamp(milliseconds: currentUnixMilliseconds())
    }
}

/// A value in a log line. JSON lines keep its type (numbers as numbers, booleans as
/// booleans); text lines show it plainly.
package protocol LogValue: Sendable {
    /// The value as text lines show it.
    var logText: String { get }
    /// Appends the value as a JSON value.
    func appendJSON(to line: inout String)
}

extension String: LogValue {
    package var logText: String { self }
    package func appendJSON(to line: inout String) { line += "\"\(JSONText.escaped(self))\"" }
}

extension Int: LogValue {
    package var logText: String { String(self) }
    package func appendJSON(to line: inout String) { line += String(self) }
}

extension Bool: LogValue {
    package var logText: String { self ? "true" : "false" }
    package func appendJSON(to line: inout String) { line += logText }
}

extension Double: LogValue {
    /// Finite values as JSON numbers (JSON has no NaN or infinity: those are strings).
    package var logText: String { String(self) }
    package func appendJSON(to line: inout String) { line += isFinite ? String(self) : "\"\(self)\"" }
}
