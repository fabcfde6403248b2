import Foundation

/// A strict reader of the Prometheus text exposition format 0.0.4, for tests: every sample
/// must belong to a family declared by `# TYPE` before it, names and labels must be well
/// formed, and histograms must have cumulative buckets ending in `+Inf` equal to `_count`.
struct PrometheusText {
    struct Problem: Error, CustomStringConvertible {
        let line: Int
        let message: String
        var description: String { "line \(line): \(message)" }
    }

    /// Series (`name{label="value",...}` as written) → value.
    private(set) var samples: [String: Double] = [:]
    private(set) var types: [String: String] = [:]

    init(_ text: String) throws {
        guard text.hasSuffix("\n") else { throw Problem(line: 0, message: "the exposition does not end with a line feed") }
        var buckets: [String: [(le: Double, count: Double)]] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = index + 1
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw Problem(line: number, message: "bad TYPE line \(line)")
                }
                guard types[String(parts[2])] == nil else { throw Problem(line: number, message: "second TYPE for \(parts[2])") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " ") else { throw Problem(line: number, message: "no value in \(line)") }
            let series = String(line[..<space])
            let valueText = line[line.index(after: space)...]
            guard let value = Double(valueText) ?? (valueText == "+Inf" ? .infinity : nil) else {
                throw Problem(line: number, message: "bad value in \(line)")
            }
            let (name, labels) = try Self.split(series, line: number)
            let family = types[name] != nil ? name : ["_bucket", "_sum", "_count"].compactMap { suffix in
                name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
            }.first { types[$0] == "histogram" }
            guard let family, types[family] != nil else { throw Problem(line: number, message: "\(name) has no TYPE before it") }
            if types[family] == "counter" && value < 0 { throw Problem(line: number, message: "negative counter \(line)") }
            guard samples[series] == nil else { throw Problem(line: number, message: "duplicate series \(series)") }
            samples[series] = value
            if name.hasSuffix("_bucket") {
                guard let le = labels.last, le.name == "le", let bound = le.value == "+Inf" ? .infinity : Double(le.value) else {
                    throw Problem(line: number, message: "bucket without a final le label: \(line)")
                }
                let key = family + Self.render(labels.dropLast())
                buckets[key, default: []].append((bound, value))
            }
        }
        for (key, series) in buckets {
            guard series.last?.le == .infinity else { throw Problem(line: 0, message: "\(key) has no +Inf bucket") }
            for (earlier, later) in zip(series, series.dropFirst()) where earlier.le >= later.le || earlier.count > later.count {
                throw Problem(line: 0, message: "\(key) buckets are not ascending and cumulative")
            }
            let labels = key.firstIndex(of: "{").map { String(key[$0...]) } ?? ""
            let name = key.firstIndex(of: "{").map { String(key[..<$0]) } ?? key
            guard samples[name + "_count" + labels] == series.last?.count else { throw Problem(line: 0, message: "\(key) +Inf bucket is not _count") }
        }
    }

    /// The value of a series, 0 when absent (counters not yet bumped may be absent).
    subscript(_ name: String, _ labels: KeyValuePairs<String, String> = [:]) -> Double {
        samples[name + Self.render(labels.map { (name: $0.key, value: $0.value) })] ?? 0
    }

    func has(_ name: String, _ labels: KeyValuePairs<String, String> = [:]) -> Bool {
        samples[name + Self.render(labels.map { (name: $0.key, value: $0.value) })] != nil
    }

    private static func render<Labels: Collection<(name: String, value: String)>>(_ labels: Labels) -> String {
        labels.isEmpty ? "" : "{" + labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }

    private static func split(_ series: String, line: Int) throws -> (String, [(name: String, value: String)]) {
        let nameEnd = series.firstIndex(of: "{") ?? series.endIndex
        let name = String(series[..<nameEnd])
        guard name.range(of: "^[a-zA-Z_:][a-zA-Z0-9_:]*$", options: .regularExpression) != nil else {
            throw Problem(line: line, message: "bad metric name \(name)")
        }
        guard nameEnd < series.endIndex else { return (name, []) }
        guard series.hasSuffix("}") else { throw Problem(line: line, message: "unclosed labels in \(series)") }
        var labels: [(name: String, value: String)] = []
        var rest = Substring(series[series.index(after: nameEnd)...].dropLast())
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "=") else { throw Problem(line: line, message: "bad labels in \(series)") }
            let label = String(rest[..<equals])
            guard label.range(of: "^[a-zA-Z_][a-zA-Z0-9_]*$", options: .regularExpression) != nil else {
                throw Problem(line: line, message: "bad label name \(label)")
            }
            rest = rest[rest.index(after: equals)...]
            guard rest.first == "\"" else { throw Problem(line: line, message: "unquoted label value in \(series)") }
            rest = rest.dropFirst()
            var value = ""
            var closed = false
            while let character = rest.first {
                rest = rest.dropFirst()
                if character == "\\" {
                    guard let escaped = rest.first, ["\\", "\"", "n"].contains(escaped) else {
                        throw Problem(line: line, message: "bad escape in \(series)")
                    }
                    value.append(escaped == "n" ? "\n" : escaped)
                    rest = rest.dropFirst()
                } else if character == "\"" {
                    closed = true
                    break
                } else {
                    value.append(character)
                }
            }
            guard closed else { throw Problem(line: line, message: "unterminated label value in \(series)") }
            labels.append((label, value))
            if rest.first == "," { rest = rest.dropFirst() }
        }
        return (name, labels)
    }
}
