import FoundationEssentials

/// A binding found by `resolve` (docs/mapping.md, "Bindings").
package struct Binding: Sendable, Equatable {
    package var uuid: String
    package var roomID: String
    /// `kind=value` of the key that found it.
    package var key: String
    /// RFC 3339.
    package var createdAt: String

    package init(uuid: String, roomID: String, key: String, createdAt: String) {
        self.uuid = uuid
        self.roomID = roomID
        self.key = key
        self.createdAt = createdAt
    }
}

/// A binding to store: a key that will point to (uuid, room_id) until it expires.
package struct BindingWrite: Sendable, Equatable {
    package var kind: String
    package var value: String
    package var uuid: String
    package var roomID: String
    package var ttl: Duration
    /// The rule allows moving a key that is bound to another chat (`"replace": true`).
    package var mayReplace: Bool

    package init(kind: String, value: String, uuid: String, roomID: String, ttl: Duration, mayReplace: Bool = false) {
        self.kind = kind
        self.value = value
        self.uuid = uuid
        self.roomID = roomID
        self.ttl = ttl
        self.mayReplace = mayReplace
    }
}

/// Where `resolve` looks bindings up. The mapping engine does no I/O itself.
package protocol BindingLookup: Sendable {
    func binding(kind: String, value: String) -> Binding?
}

/// No bindings at all (`map` without `--data-dir`).
package struct NoBindings: BindingLookup {
    package init() {}
    package func binding(kind: String, value: String) -> Binding? { nil }
}

/// What a route makes of one request.
package enum MappingOutcome: Sendable, Equatable {
    /// Calls to send (one, or several in `mode: all`), plus bindings to store first.
    case calls([MappedCall], binds: [BindingWrite])
    /// Only bindings to store; no call (`200 {"result":"bound"}`).
    case bound([BindingWrite])
    /// No rule matched.
    case ignored(reason: String)
    /// A rule matched but its call is invalid.
    case failed(MappingFailure)
}

/// The request document that paths read (docs/mapping.md, "The request document").
package enum RequestDocument {
    /// Builds `{body, headers, query, meta}`. Header names are lower-cased; repeated ones joined
    /// with `, `. `headerNames` (a route's `readHeaderNames`) keeps only the headers its paths
    /// can read; nil keeps them all.
    package static func make(
        body: JSONValue, headers: [(name: String, value: String)], query: [(name: String, value: String)],
        route: String, receivedAt: String, requestID: String, headerNames: Set<String>? = nil
    ) -> JSONValue {
        let headerMembers = headerNames?.isEmpty == true ? [] : members(of: headers, keeping: headerNames)
        return .object([
            ("body", body),
            ("headers", .object(headerMembers)),
            ("query", .object(query.map { ($0.name, .string($0.value)) })),
            (
                "meta",
                .object([("route", .string(route)), ("received_at", .string(receivedAt)), ("request_id", .string(requestID))])
            ),
        ])
    }

    /// The headers as members, names lower-cased and repeated ones joined with `, `; only those
    /// named in `kept` when it is given.
    private static func members(of headers: [(name: String, value: String)], keeping kept: Set<String>?) -> [(key: String, value: JSONValue)] {
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(headers.count)
        for (name, value) in headers {
            let lowered = name.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) ? name.lowercased() : name
            if let kept, !kept.contains(lowered) { continue }
            if let existing = members.firstIndex(where: { $0.key == lowered }), case .string(let previous) = members[existing].value {
                members[existing].value = .string(previous + ", " + value)
            } else {
                members.append((lowered, .string(value)))
            }
        }
        return members
    }

    /// The body's tape when the body was parsed into one (JSON bodies), else nil.
    static func bodyTape(of document: JSONValue) -> JSONTapeNode? {
        if case .tape(let node)? = document["body"] { return node }
        return nil
    }

    /// The document with `$.binding` added.
    static func adding(_ binding: Binding, to document: JSONValue) -> JSONValue {
        guard case .object(var members) = document else { return document }
        members.append(
            (
                "binding",
                .object([
                    ("uuid", .string(binding.uuid)), ("room_id", .string(binding.roomID)), ("key", .string(binding.key)),
                    ("created_at", .string(binding.createdAt)),
                ])
            ))
        return .object(members)
    }
}

extension MappingRoute {
    /// Applies the rules to a request document.
    package func apply(to document: JSONValue, bindings: any BindingLookup = NoBindings()) -> MappingOutcome {
        var calls: [MappedCall] = []
        var writes: [BindingWrite] = []
        var ignoredReason: String?
        var sawUnboundResolve = false
        for rule in rules {
            if let condition = rule.condition, !condition.holds(in: document) { continue }
            var ruleDocument = document
            if !rule.resolve.isEmpty {
                guard let binding = Self.resolve(rule.resolve, in: document, bindings: bindings) else {
                    // Later rules may still find the ids in the payload; if none does, the
                    // rule's own reason (its ids would have come from the binding) is the answer.
                    sawUnboundResolve = true
                    if let needs = rule.ignoreWithout { ignoredReason = ignoredReason ?? needs.reason }
                    continue
                }
                ruleDocument = RequestDocument.adding(binding, to: document)
            }
            if let needs = rule.ignoreWithout, needs.fields.contains(where: { name in
                rule.fields.first { $0.name == name }?.value.evaluate(in: ruleDocument) == nil
            }) {
                // The rule applies, but to an event it has nothing to say about: no call, no failure.
                ignoredReason = ignoredReason ?? needs.reason
                if mode == .first { break }
                continue
            }
            if let bind = rule.bind {
                switch Self.bindings(bind, rule: rule.name, in: ruleDocument) {
                case .success(let made): writes += made
                case .failure(let failure): return .failed(failure)
                }
            }
            if rule.makesCall {
                switch Self.call(rule, in: ruleDocument) {
                case .success(let call): calls.append(call)
                case .failure(let failure): return .failed(failure)
                }
            }
            if mode == .first { break }
        }
        if !calls.isEmpty { return .calls(calls, binds: writes) }
        if !writes.isEmpty { return .bound(writes) }
        return .ignored(reason: ignoredReason ?? (sawUnboundResolve ? "no binding" : "no rule matched"))
    }

    static func resolve(
        _ keys: [(kind: String, value: ValueSpec)], in document: JSONValue, bindings: any BindingLookup
    ) -> Binding? {
        for (kind, spec) in keys {
            guard let raw = spec.evaluate(in: document), let value = BindingKey.normalized(kind: kind, value: raw) else { continue }
            if let binding = bindings.binding(kind: kind, value: value) { return binding }
        }
        return nil
    }

    static func bindings(_ bind: BindSpec, rule: String, in document: JSONValue) -> Result<[BindingWrite], MappingFailure> {
        guard let uuid = bind.uuid.evaluate(in: document) else {
            return .failure(MappingFailure(rule: rule, field: "bind.uuid", reason: bind.uuid.whyEmpty(in: document)))
        }
        guard let roomID = bind.roomID.evaluate(in: document) else {
            return .failure(MappingFailure(rule: rule, field: "bind.room_id", reason: bind.roomID.whyEmpty(in: document)))
        }
        return .success(
            bind.keys.compactMap { kind, spec in
                spec.evaluate(in: document).flatMap { BindingKey.normalized(kind: kind, value: $0) }.map {
                    BindingWrite(kind: kind, value: $0, uuid: uuid, roomID: roomID, ttl: bind.ttl, mayReplace: bind.mayReplace)
                }
            })
    }

    static func call(_ rule: MappingRule, in document: JSONValue) -> Result<MappedCall, MappingFailure> {
        var fields: [CallField] = []
        fields.reserveCapacity(rule.fields.count)
        let body = RequestDocument.bodyTape(of: document)
        for (index, (name, spec)) in rule.fields.enumerated() {
            guard let value = spec.evaluate(in: document, body: body) else {
                if spec.isRequired || UpstreamContract.requiredFields.contains(name) {
                    return .failure(MappingFailure(rule: rule.name, field: name, reason: spec.whyEmpty(in: document)))
                }
                continue
            }
            if let problem = UpstreamContract.problem(rule.checks[index], value: value) {
                return .failure(
                    MappingFailure(rule: rule.name, field: name, reason: "\(problem) (from \(spec.describedSource))"))
            }
            fields.append(CallField(name: name, value: value))
        }
        return .success(MappedCall(rule: rule.name, fields: fields))
    }
}

/// Binding keys in one canonical form per kind, applied where keys are written and where
/// they are looked up, so `#1043` bound by the chatbot finds the shop's `1043`.
package enum BindingKey {
    /// The canonical text of a key, or nil when nothing of it is left.
    package static func normalized(kind: String, value: String) -> String? {
        let text: String
        switch kind {
        case "order_number": text = Piped.lettersAndDigits(value)
        case "phone": text = KoreanPhone.normalize(value) ?? Piped.digits(value)
        default: text = value.trimmingWhitespace()
        }
        return text.isEmpty ? nil : text
    }
}

/// The `set_user_info` contract (docs/happytalk.md) as checks.
package enum UpstreamContract {
    /// Every field the API knows besides `token`, in the vendor's order.
    package static let fields: [String] =
        [
            "uuid", "room_id", "users_id", "username", "phone", "email", "sex", "birthday", "birth_type", "category_id",
            "division_id", "order_number", "parcel_number",
        ] + (1...10).map { "parameter\($0)" } + ["scenario_next", "product_number", "user_parameter"]

    static let fieldSet = Set(fields)
    package static let requiredFields: Set<String> = ["uuid", "room_id"]

    /// What the API checks in one field's value, decided once per field when a rule is compiled.
    package enum Check: Sendable {
        case none, birthday, birthType, scenarioNext, phone, userParameter, parameter

        package init(field: String) {
            switch field {
            case "birthday": self = .birthday
            case "birth_type": self = .birthType
            case "scenario_next": self = .scenarioNext
            case "phone": self = .phone
            case "user_parameter": self = .userParameter
            case _ where field.hasPrefix("parameter"): self = .parameter
            default: self = .none
            }
        }
    }

    /// Why a value breaks the contract, or nil when it is fine.
    package static func problem(field: String, value: String) -> String? {
        problem(Check(field: field), value: value)
    }

    /// Why a value breaks the contract of a field that checks `check`, or nil when it is fine.
    package static func problem(_ check: Check, value: String) -> String? {
        switch check {
        case .none:
            return nil
        case .birthday:
            return isRealDate(value) ? nil : "\"\(value)\" is not a real date in Y-m-d form"
        case .birthType:
            return value == "0" || value == "1" ? nil : "\"\(value)\" must be 0 (solar) or 1 (lunar)"
        case .scenarioNext:
            return value == "Y" || value == "N" ? nil : "\"\(value)\" must be Y or N"
        case .phone:
            return value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) ? nil : "must be digits only (use the phone_kr step)"
        case .userParameter:
            // At most one character per byte: most values are settled without counting.
            return value.utf8.count <= 200 || value.count <= 200 ? nil : "is \(value.count) characters; HappyTalk keeps at most 200 (use truncate)"
        case .parameter:
            return value.utf8.count <= 20 || value.count <= 20 ? nil : "is \(value.count) characters; HappyTalk keeps at most 20 (use truncate)"
        }
    }

    static func isRealDate(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            let year = Int(text.prefix(4)), let month = Int(text.dropFirst(5).prefix(2)), let day = Int(text.suffix(2)),
            [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ DateStep.isDigit(bytes[$0]) })
        else { return false }
        return DateStep.valid(DateStep.Fields(year: year, month: month, day: day)) != nil
    }
}
