import FoundationEssentials

/// The right-hand side of a `set` field (docs/mapping.md, "Value specs"), compiled.
package struct ValueSpec: Sendable {
    package indirect enum Source: Sendable {
        case constant(String)
        case path(JSONPath)
        case first([ValueSpec])
        /// Literal text and paths, alternating as written.
        case template([TemplatePart])
    }

    package enum TemplatePart: Sendable {
        case text(String)
        case path(JSONPath)
    }

    package var source: Source
    /// The steps the value goes through, in order (set with `setPipe`).
    package private(set) var pipe: [PipeStep] = []
    /// Whether a step reads the whole node list (`join`, `count`, …).
    private(set) var pipeReadsList = false
    /// Whether every step turns text into text (no list step, no `date`).
    private(set) var pipeReadsText = true
    package var defaultValue: String?
    package var isRequired = false

    /// Sets the pipe, and decides once what evaluating it needs.
    mutating func setPipe(_ steps: [PipeStep]) {
        pipe = steps
        pipeReadsList = steps.contains(where: \.takesList)
        pipeReadsText = steps.allSatisfy(\.readsText)
    }

    /// The paths the spec reads, for messages ("uuid: $.body.customer.id is empty").
    package var describedSource: String {
        switch source {
        case .constant(let text): "constant \"\(text)\""
        case .path(let path): path.source
        case .first(let specs): specs.map(\.describedSource).joined(separator: ", ")
        case .template(let parts):
            parts.compactMap {
                if case .path(let path) = $0 { return path.source }
                return nil
            }.joined(separator: ", ")
        }
    }

    /// Every path the spec reads.
    var paths: [JSONPath] {
        switch source {
        case .constant: []
        case .path(let path): [path]
        case .first(let specs): specs.flatMap(\.paths)
        case .template(let parts):
            parts.compactMap {
                if case .path(let path) = $0 { return path }
                return nil
            }
        }
    }

    /// The constant this spec always produces, when it has no paths and no pipe.
    var constantValue: String? {
        if case .constant(let text) = source, pipe.isEmpty { return text }
        return nil
    }

    /// Why `evaluate` gave nothing, for failure messages: the source was empty, or which
    /// step emptied it (`"tomorrow" is not a date`).
    package func whyEmpty(in document: JSONValue) -> String {
        let raw: Piped
        switch source {
        case .path(let path): raw = Piped(path, in: document, readsList: pipeReadsList)
        case .constant, .first, .template: return "\(describedSource) is empty"
        }
        guard let start = raw.scalar, !start.isEmpty else { return "\(describedSource) is empty" }
        var current = raw
        for step in pipe {
            let before = current.scalar
            current = current.applying(step)
            guard current.scalar == nil || current.scalar?.isEmpty == true else { continue }
            let shown = before.map { "\"\($0.text.prefix(40))\"" } ?? "the value"
            switch step {
            case .date: return "\(shown) from \(describedSource) is not a date"
            case .phoneKR: return "\(shown) from \(describedSource) is not a Korean phone number"
            case .lookup: return "\(shown) from \(describedSource) is not in the lookup table"
            default: return "\(describedSource) is empty after the pipe"
            }
        }
        return "\(describedSource) is empty"
    }

    /// Evaluates against a request document; nil when the result is empty.
    package func evaluate(in document: JSONValue) -> String? {
        evaluate(in: document, body: RequestDocument.bodyTape(of: document))
    }

    /// Evaluates with the document's body tape found beforehand (once for all the fields of a
    /// rule). Paths into the body and templates of them, through text steps (what most fields
    /// are), go from tape index to tape index and make one string: no value is built for the
    /// nodes they pass.
    func evaluate(in document: JSONValue, body: JSONTapeNode?) -> String? {
        // `evaluateValue` answers nil or a value that is not empty.
        guard let body, pipeReadsText else { return evaluateValue(in: document, body: body)?.text }
        var text: String
        switch source {
        case .path(let path) where path.readsBody:
            guard let node = path.firstNode(inBody: body) else { return nonBlankDefault }
            if pipe.isEmpty { return node.isEmpty ? nonBlankDefault : node.text }
            // Steps see every value but `null`, blank text included (as `Piped.applying` does).
            guard node.kind != .null else { return nonBlankDefault }
            text = node.text
        case .template(let parts):
            guard let written = Self.templateText(parts, in: document, body: body) else { return nonBlankDefault }
            text = written
        case .path, .constant, .first:
            return evaluateValue(in: document, body: body)?.text
        }
        for step in pipe {
            guard let next = Piped.applyingText(step, to: text) else { return nonBlankDefault }
            text = next
        }
        return JSONValue.isBlank(text) ? nonBlankDefault : text
    }

    /// A template's text, or nil when one of its paths is empty.
    private static func templateText(_ parts: [TemplatePart], in document: JSONValue, body: JSONTapeNode?) -> String? {
        var text = ""
        for part in parts {
            switch part {
            case .text(let literal): text += literal
            case .path(let path):
                guard let value = nonEmptyText(path, in: document, body: body) else { return nil }
                text += value
            }
        }
        return text
    }

    /// The text of the first node of `path` unless it is empty, read from the body's tape when
    /// the path is into the body.
    private static func nonEmptyText(_ path: JSONPath, in document: JSONValue, body: JSONTapeNode?) -> String? {
        if let body, path.readsBody {
            guard let node = path.firstNode(inBody: body), !node.isEmpty else { return nil }
            return node.text
        }
        guard let value = path.first(in: document), !value.isEmpty else { return nil }
        return value.text
    }

    /// The default, unless it is blank.
    private var nonBlankDefault: String? { defaultValue.flatMap { JSONValue.isBlank($0) ? nil : $0 } }

    /// The spec's value, or nil when it comes out empty (a blank default included).
    func evaluateValue(in document: JSONValue, body: JSONTapeNode? = nil) -> JSONValue? {
        let raw: Piped
        switch source {
        case .constant(let text): raw = .value(.string(text))
        case .path(let path): raw = Piped(path, in: document, body: body, readsList: pipeReadsList)
        case .first(let specs):
            raw = .value(specs.lazy.compactMap { $0.evaluateValue(in: document, body: body) }.first)
        case .template(let parts):
            raw = .value(Self.templateText(parts, in: document, body: body).map(JSONValue.string))
        }
        let piped = pipe.isEmpty ? raw : raw.applying(pipe)
        if let value = piped.scalar, !value.isEmpty { return value }
        return nonBlankDefault.map(JSONValue.string)
    }
}

/// A `when` condition, compiled.
package indirect enum Condition: Sendable {
    package enum Operator: Sendable {
        case equals(JSONValue)
        case isIn([JSONValue])
        case exists(Bool)
        case empty(Bool)
        case matches(CompiledRegex)
        case contains(String)
        case startsWith(String)
        case greater(String), greaterOrEqual(String), less(String), lessOrEqual(String)
    }

    case all([Condition])
    case any([Condition])
    case not(Condition)
    case test(path: JSONPath, pipe: [PipeStep], operator: Operator)

    /// Every operator name, for suggestions.
    package static let operatorNames = [
        "equals", "in", "exists", "empty", "matches", "contains", "starts_with", "gt", "gte", "lt", "lte",
    ]

    /// Every path the condition reads.
    var paths: [JSONPath] {
        switch self {
        case .all(let terms), .any(let terms): terms.flatMap(\.paths)
        case .not(let term): term.paths
        case .test(let path, _, _): [path]
        }
    }

    package func holds(in document: JSONValue) -> Bool {
        switch self {
        case .all(let terms): return terms.allSatisfy { $0.holds(in: document) }
        case .any(let terms): return terms.contains { $0.holds(in: document) }
        case .not(let term): return !term.holds(in: document)
        case .test(let path, let pipe, let op):
            let value = Piped(path, in: document, readsList: pipe.contains(where: \.takesList)).applying(pipe).scalar
            switch op {
            case .exists(let expected): return (value != nil) == expected
            case .empty(let expected): return (value?.isEmpty ?? true) == expected
            case .equals(let literal): return value == literal
            case .isIn(let literals): return value.map { literals.contains($0) } ?? false
            case .matches(let regex): return value.map { !isContainer($0) && regex.matchesWhole($0.text) } ?? false
            case .contains(let text): return value.map { !isContainer($0) && $0.text.contains(text) } ?? false
            case .startsWith(let text): return value.map { !isContainer($0) && $0.text.hasPrefix(text) } ?? false
            case .greater(let bound): return compare(value, bound) == 1
            case .greaterOrEqual(let bound): return [0, 1].contains(compare(value, bound))
            case .less(let bound): return compare(value, bound) == -1
            case .lessOrEqual(let bound): return [0, -1].contains(compare(value, bound))
            }
        }
    }

    private func isContainer(_ value: JSONValue) -> Bool {
        switch value.resolved {
        case .array, .object, .null: true
        default: false
        }
    }

    /// Numeric comparison; numbers and numeric strings (platforms send amounts as "15000.00").
    private func compare(_ value: JSONValue?, _ bound: String) -> Int? {
        switch value?.resolved {
        case .number(let text)?: return JSONNumber.compare(text, bound)
        case .string(let text)?:
            let trimmed = text.trimmingWhitespace()
            guard case .number(let digits)? = try? JSONParser().parse(trimmed) else { return nil }
            return JSONNumber.compare(digits, bound)
        default: return nil
        }
    }
}

/// A rule's `bind`: keys that will point to a (uuid, room_id) pair.
package struct BindSpec: Sendable {
    package var keys: [(kind: String, value: ValueSpec)]
    package var uuid: ValueSpec
    package var roomID: ValueSpec
    package var ttl: Duration
    /// Whether a key already bound to another chat may be moved to this one (`"replace": true`);
    /// otherwise such a bind is refused unless another of its keys vouches for it.
    package var mayReplace: Bool
}

/// One rule: when it holds, what call it makes, what it binds and resolves.
package struct MappingRule: Sendable {
    package var name: String
    package var condition: Condition?
    /// The fields of the call, in the order written.
    package let fields: [(name: String, value: ValueSpec)]
    /// What HappyTalk checks in each field, in the order of `fields`.
    let checks: [UpstreamContract.Check]
    package var bind: BindSpec?
    /// Tried in order; each entry is one key (kind and value).
    package var resolve: [(kind: String, value: ValueSpec)]
    /// Fields that must come out, else the event is ignored with `reason` (`ignore_without`).
    package var ignoreWithout: (fields: [String], reason: String)?

    package init(
        name: String, condition: Condition?, fields: [(name: String, value: ValueSpec)], bind: BindSpec?,
        resolve: [(kind: String, value: ValueSpec)], ignoreWithout: (fields: [String], reason: String)? = nil
    ) {
        self.name = name
        self.condition = condition
        self.fields = fields
        checks = fields.map { UpstreamContract.Check(field: $0.name) }
        self.bind = bind
        self.resolve = resolve
        self.ignoreWithout = ignoreWithout
    }

    /// Every path the rule reads.
    var paths: [JSONPath] {
        (condition?.paths ?? []) + fields.flatMap(\.value.paths) + resolve.flatMap(\.value.paths)
            + (bind.map { $0.keys.flatMap(\.value.paths) + $0.uuid.paths + $0.roomID.paths } ?? [])
    }

    /// Whether the rule makes a call (it has `set`).
    package var makesCall: Bool { !fields.isEmpty }
}

/// How an inbound webhook is authenticated (docs/mapping.md, "Verification schemes").
package struct VerifySpec: Sendable {
    package enum Scheme: String, Sendable, CaseIterable {
        case shopify, woocommerce, github, stripe
        case standardWebhooks = "standard-webhooks"
        case hmac, bearer, header, query, none
    }

    package enum Algorithm: String, Sendable {
        case sha256, sha1, sha512
    }

    package enum Encoding: String, Sendable {
        case hex, base64, base64url
    }

    package var scheme: Scheme
    package var secrets: [SecretReference] = []
    /// `hmac`: the signature header; `header`: the header holding the secret.
    package var header: String?
    package var algorithm = Algorithm.sha256
    package var encoding = Encoding.hex
    package var prefix = ""
    /// `query`: the parameter holding the secret.
    package var parameter: String?
    /// `stripe`, `standard-webhooks`: accepted clock skew.
    package var tolerance: Duration = .seconds(300)
    package var allowIPs: [IPRange] = []
}

/// Where a secret comes from: never a literal.
package enum SecretReference: Sendable, Equatable, CustomStringConvertible {
    case environment(String)
    case file(String)

    package var description: String {
        switch self {
        case .environment(let name): "environment variable \(name)"
        case .file(let path): "file \(path)"
        }
    }
}

/// A compiled mapping file: one inbound route.
package struct MappingRoute: Sendable {
    package enum Delivery: String, Sendable {
        case async, sync
    }

    package enum Mode: String, Sendable {
        case first, all
    }

    /// The file it came from, as given to the loader.
    package var file: String
    package var path: String
    package var description: String?
    package var verify: VerifySpec
    package var acceptsForm: Bool
    package var delivery: Delivery
    package var timeout: Duration
    package var dedupe: (key: ValueSpec, window: Duration)?
    package var credential: String?
    package var mode: Mode
    package var rules: [MappingRule]
    package var examples: [MappingExample]

    /// Whether a rule looks bindings up (`resolve`): the route reads the relay's database.
    package var resolvesBindings: Bool { rules.contains { !$0.resolve.isEmpty } }

    /// Every path the route reads: its rules' and its dedupe key's.
    var allPaths: [JSONPath] { rules.flatMap(\.paths) + (dedupe?.key.paths ?? []) }

    /// Whether a path of the route reads this (lower-case) header, by name or wholesale.
    package func readsHeader(_ name: String) -> Bool {
        guard let names = readHeaderNames else { return true }
        return names.contains(name)
    }

    /// The headers the route's paths read by name; nil when a path reads them wholesale.
    /// Computed once, when the file is compiled.
    package var readHeaderNames: Set<String>? = []

    func makeReadHeaderNames() -> Set<String>? {
        var names = Set<String>()
        for path in allPaths {
            switch path.segments.first {
            case .name("headers"):
                guard path.segments.count > 1, case .name(let header) = path.segments[1] else { return nil }
                names.insert(header)
            case .name:
                continue
            // `$` itself, or a first step that can select `headers` among the document's members.
            case nil, .index, .wildcard, .filter:
                return nil
            }
        }
        return names
    }

}

/// One field of a call: a `set_user_info` field name and its value.
package struct CallField: Sendable, Equatable {
    package var name: String
    package var value: String

    package init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A call produced by a rule, without the token.
package struct MappedCall: Sendable, Equatable {
    package var rule: String
    /// The fields, in the order the rule wrote them. (A struct, not a tuple: arrays of tuples
    /// are destroyed element by element through the runtime's generic tuple code.)
    package var fields: [CallField]

    package init(rule: String, fields: [CallField]) {
        self.rule = rule
        self.fields = fields
    }

    package subscript(field: String) -> String? { fields.first { $0.name == field }?.value }

    /// The call as a JSON object without the token: what the queue stores.
    package func storedForm() -> [UInt8] {
        JSONSerializer.flatObject(fields)
    }

    /// The `set_user_info` body with `token` first (pass `"***"` to show it masked).
    package func body(token: String) -> [UInt8] {
        JSONSerializer.flatObject(leading: CallField(name: "token", value: token), fields)
    }
}

/// A mapping failure: which field, where its value came from, and why.
package struct MappingFailure: Error, Sendable, Equatable, CustomStringConvertible {
    package var rule: String
    package var field: String
    package var reason: String

    package var description: String { "\(field): \(reason)" }
}
