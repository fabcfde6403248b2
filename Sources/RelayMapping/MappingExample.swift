import Foundation

/// An example inside a mapping file: a request and what the route must make of it.
package struct MappingExample: Sendable {
    package enum Expectation: Sendable {
        /// One call whose listed fields match exactly; unlisted fields must be absent unless `partial`.
        case call([(name: String, value: String)], partial: Bool)
        /// Several calls (`mode: all`), in order.
        case calls([[(name: String, value: String)]], partial: Bool)
        /// No call; with a reason, exactly that reason.
        case ignored(reason: String?)
        /// Only bindings are stored.
        case bound
        /// The named field fails.
        case fails(String)
    }

    package var name: String
    /// Where in the file it is (`/examples/0`).
    package var pointer: String
    package var headers: [(name: String, value: String)]
    package var query: [(name: String, value: String)]
    package var body: JSONValue
    package var expectation: Expectation
    package var seededBindings: [(kind: String, value: String, uuid: String, roomID: String)]
}

/// Bindings seeded by an example.
struct SeededBindings: BindingLookup {
    let entries: [(kind: String, value: String, uuid: String, roomID: String)]

    /// Keys are normalised as the relay normalises them when it stores a binding.
    init(entries: [(kind: String, value: String, uuid: String, roomID: String)]) {
        self.entries = entries.map { ($0.kind, BindingKey.normalized(kind: $0.kind, value: $0.value) ?? $0.value, $0.uuid, $0.roomID) }
    }

    func binding(kind: String, value: String) -> Binding? {
        entries.last { $0.kind == kind && $0.value == value }.map {
            Binding(uuid: $0.uuid, roomID: $0.roomID, key: "\(kind)=\(value)", createdAt: "2026-01-01T00:00:00Z")
        }
    }
}

extension MappingRoute {
    /// Runs the file's examples; returns a diagnostic for each that does not hold.
    package func runExamples() -> [MappingDiagnostic] {
        var problems: [MappingDiagnostic] = []
        for example in examples {
            let document = RequestDocument.make(
                body: example.body, headers: example.headers, query: example.query, route: path,
                receivedAt: "2026-01-01T00:00:00Z", requestID: "example")
            let outcome = apply(to: document, bindings: SeededBindings(entries: example.seededBindings))
            if let problem = Self.check(outcome, against: example.expectation) {
                problems.append(
                    MappingDiagnostic(file: file, pointer: example.pointer, message: "example \"\(example.name)\": \(problem)"))
            }
        }
        return problems
    }

    static func describe(_ outcome: MappingOutcome) -> String {
        switch outcome {
        case .calls(let calls, _):
            calls.map { String(decoding: $0.body(token: "***"), as: UTF8.self) }.joined(separator: " and ")
        case .bound: "only bindings"
        case .ignored(let reason): "ignored (\(reason))"
        case .failed(let failure): "a mapping failure: \(failure)"
        }
    }

    static func check(_ outcome: MappingOutcome, against expectation: MappingExample.Expectation) -> String? {
        switch expectation {
        case .ignored(let expected):
            if case .ignored(let reason) = outcome, expected == nil || expected == reason { return nil }
            return "expected ignored\(expected.map { " (\($0))" } ?? ""), got \(describe(outcome))"
        case .bound:
            if case .bound = outcome { return nil }
            return "expected only bindings, got \(describe(outcome))"
        case .fails(let field):
            if case .failed(let failure) = outcome {
                return failure.field == field ? nil : "expected \(field) to fail, but \(failure)"
            }
            return "expected \(field) to fail, got \(describe(outcome))"
        case .call(let expected, let partial):
            guard case .calls(let calls, _) = outcome else { return "expected a call, got \(describe(outcome))" }
            guard calls.count == 1 else { return "expected one call, got \(calls.count): \(describe(outcome))" }
            return compare(calls[0], expected, partial: partial)
        case .calls(let expected, let partial):
            guard case .calls(let calls, _) = outcome else { return "expected calls, got \(describe(outcome))" }
            guard calls.count == expected.count else {
                return "expected \(expected.count) calls, got \(calls.count): \(describe(outcome))"
            }
            for (index, (call, fields)) in zip(calls, expected).enumerated() {
                if let problem = compare(call, fields, partial: partial) { return "call \(index): \(problem)" }
            }
            return nil
        }
    }

    static func compare(_ call: MappedCall, _ expected: [(name: String, value: String)], partial: Bool) -> String? {
        for (name, value) in expected {
            guard let actual = call[name] else { return "expected \(name) \"\(value)\", but the call has no \(name)" }
            if actual != value { return "expected \(name) \"\(value)\", got \"\(actual)\"" }
        }
        if !partial {
            let extra = call.fields.map(\.name).filter { name in !expected.contains { $0.name == name } }
            if !extra.isEmpty {
                return "the call also sets \(extra.joined(separator: ", ")) (list them, or add \"partial\": true)"
            }
        }
        return nil
    }
}
