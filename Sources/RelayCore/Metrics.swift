import Synchronization

/// A count that only goes up, bumped from any thread without a lock.
package final class MetricCounter: Sendable {
    private let count = Atomic<Int>(0)

    package init() {}

    package func increment(by amount: Int = 1) { count.add(amount, ordering: .relaxed) }

    package var value: Int { count.load(ordering: .relaxed) }
}

/// Durations counted into buckets (a Prometheus histogram), observed without a lock.
package final class MetricHistogram: Sendable {
    /// Upper bounds in seconds, ascending; a last bucket (+Inf) takes the rest.
    package let bounds: [Double]
    private let buckets: [MetricCounter]
    private let nanoseconds = Atomic<Int>(0)

    package init(bounds: [Double]) {
        self.bounds = bounds
        buckets = (0...bounds.count).map { _ in MetricCounter() }
    }

    package func observe(_ duration: Duration) {
        let components = duration.components
        let total = Int(components.seconds) * 1_000_000_000 + Int(components.attoseconds / 1_000_000_000)
        let seconds = Double(total) / 1e9
        var index = 0
        while index < bounds.count && seconds > bounds[index] { index += 1 }
        buckets[index].increment()
        nanoseconds.add(max(total, 0), ordering: .relaxed)
    }

    /// Cumulative counts per bound (the last is +Inf, the total count) and the sum in seconds.
    package var snapshot: (cumulative: [Int], sum: Double) {
        var running = 0
        let cumulative = buckets.map { bucket in
            running += bucket.value
            return running
        }
        return (cumulative, Double(nanoseconds.load(ordering: .relaxed)) / 1e9)
    }
}

/// Counts told apart by label values known only at run time (a HappyTalk code, a field name).
/// A series is found under a lock; a per-request path resolves its series once (`series`) and
/// bumps that counter without one.
package final class LabeledCounters: Sendable {
    private let counters = Mutex<[[String]: MetricCounter]>([:])

    package init() {}

    /// The counter of one series, made on first use. It is reported once it counts something.
    package func series(_ labels: [String]) -> MetricCounter {
        counters.withLock { counters in
            if let counter = counters[labels] { return counter }
            let counter = MetricCounter()
            counters[labels] = counter
            return counter
        }
    }

    package func increment(_ labels: [String], by amount: Int = 1) {
        series(labels).increment(by: amount)
    }

    /// Every series that has counted something, in a stable order.
    package var snapshot: [(labels: [String], value: Int)] {
        counters.withLock { counters in counters.map { (labels: $0.key, value: $0.value.value) } }
            .filter { $0.value > 0 }
            .sorted { $0.labels.lexicographicallyPrecedes($1.labels) }
    }
}

/// Text in the Prometheus exposition format, version 0.0.4.
package struct MetricsExposition {
    /// The `Content-Type` of an exposition.
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    package private(set) var text = ""

    package init() {}

    /// Starts a metric family: its `# HELP` and `# TYPE` lines.
    package mutating func family(_ name: String, _ type: String, help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    /// One sample line.
    package mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (index, (label, labelValue)) in labels.enumerated() {
                if index > 0 { text += "," }
                text += label + "=\"" + Self.escaped(labelValue) + "\""
            }
            text += "}"
        }
        text += " " + Self.format(value) + "\n"
    }

    package mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Int) {
        sample(name, labels, Double(value))
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram series.
    package mutating func histogram(_ name: String, _ labels: [(String, String)], _ histogram: MetricHistogram) {
        let (cumulative, sum) = histogram.snapshot
        for (index, count) in cumulative.enumerated() {
            let bound = index < histogram.bounds.count ? Self.format(histogram.bounds[index]) : "+Inf"
            sample(name + "_bucket", labels + [("le", bound)], count)
        }
        sample(name + "_sum", labels, sum)
        sample(name + "_count", labels, cumulative.last ?? 0)
    }

    /// A label value with `\`, `"` and line feeds escaped as the format requires.
    static func escaped(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var output = ""
        for character in value {
            switch character {
            case "\\": output += "\\\\"
            case "\"": output += "\\\""
            case "\n": output += "\\n"
            default: output.append(character)
            }
        }
        return output
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return String(value)
    }
}
