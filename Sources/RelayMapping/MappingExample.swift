import FoundationEssentials

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

/// Bindings given by hand: an example's `bindings`, or `map --bind`.
package struct SeededBindings: BindingLookup {
    let entries: [(kind: String, value: String, uuid: String, roomID: String)]

    /// Keys are normalised as the relay normalises them when it stores a binding.
    package init(entries: [(kind: String, value: String, uuid: String, roomID: String)]) {
        self.entries = entries.map { ($0.kind, BindingKey.normalized(kind: $0.kind, value: $0.value) ?? $0.value, $0.uuid, $0.roomID) }
    }

    package func binding(kind: String, value: String) -> Binding? {
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

    /// What `check` warns about without failing: secrets that are not set here, and paths into
    /// the request that none of the file's examples reaches (often a typo).
    package func warnings(environment: [String: String], fileExists: (String) -> Bool) -> [MappingDiagnostic] {
        var found: [MappingDiagnostic] = []
        for (index, reference) in verify.secrets.enumerated() {
            let pointer = verify.secrets.count == 1 ? "/verify/secret" : "/verify/secrets/\(index)"
            switch reference {
            case .environment(let name) where environment[name] == nil && environment[name + "_FILE"] == nil:
                found.append(
                    MappingDiagnostic(
                        file: file, pointer: pointer,
                        message: "warning: \(name) (or \(name)_FILE) is not set here: serve with a token refuses to start without it (a dry run serves the route unverified)"))
            case .file(let path) where !fileExists(path):
                found.append(MappingDiagnostic(file: file, pointer: pointer, message: "warning: secret file \(path) does not exist here"))
            default:
                break
            }
        }
        guard !examples.isEmpty else { return found }
        let documents = examples.map {
            RequestDocument.make(body: $0.body, headers: $0.headers, query: $0.query, route: path, receivedAt: "2026-01-01T00:00:00Z", requestID: "example")
        }
        var reported: Set<String> = []
        for rule in rules {
            for requestPath in rule.paths where ["$.body", "$.headers", "$.query"].contains(where: { requestPath.source.hasPrefix($0) }) {
                guard !reported.contains(requestPath.source) else { continue }
                if documents.contains(where: { !requestPath.select(in: $0).isEmpty }) { continue }
                reported.insert(requestPath.source)
                found.append(
                    MappingDiagnostic(
                        file: file, pointer: "/rules",
                        message: "warning: no example reaches \(requestPath.source) (rule \"\(rule.name)\"): a typo, or add an example that has it"))
            }
        }
        return found
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

extension MappingRoute {
    /// `map --explain`: the rule each call came from (or why none did), the binding it found,
    /// and every field of that rule with its source and value, or why it was left out.
    package func explain(_ outcome: MappingOutcome, in document: JSONValue, bindings: any BindingLookup) -> [String] {
        let names: [String]
        switch outcome {
        case .calls(let calls, _): names = calls.map(\.rule)
        case .failed(let failure): names = [failure.rule]
        case .bound, .ignored: names = []
        }
        var lines: [String] = []
        if names.isEmpty, case .ignored(let reason) = outcome {
            let matching = rules.filter { $0.condition?.holds(in: document) ?? true }.map { "\"\($0.name)\"" }
            lines.append("no call (\(reason)); rules whose when holds: \(matching.isEmpty ? "none" : matching.joined(separator: ", "))")
        }
        for name in names {
            guard let rule = rules.first(where: { $0.name == name }) else { continue }
            lines.append("rule \"\(rule.name)\"")
            var ruleDocument = document
            if !rule.resolve.isEmpty, let binding = Self.resolve(rule.resolve, in: document, bindings: bindings) {
                lines.append("  binding \(binding.key) → uuid \(binding.uuid), room_id \(binding.roomID)")
                ruleDocument = RequestDocument.adding(binding, to: document)
            }
            for (field, spec) in rule.fields {
                if let value = spec.evaluate(in: ruleDocument) {
                    lines.append("  \(field) = \"\(value)\" ← \(spec.describedSource)")
                } else {
                    lines.append("  \(field) left out: \(spec.whyEmpty(in: ruleDocument))")
                }
            }
        }
        return lines
    }
}
