/// One compiled pipe step (docs/mapping.md, "Pipe steps").
package enum PipeStep: Sendable, Equatable {
    case trim, lowercase, uppercase, nfkc, digits, phoneKR
    /// Letters and digits of a parcel tracking number, upper-cased (`1z 999-aa1` → `1Z999AA1`).
    case tracking
    /// An order number as one canonical text (`#1043` → `1043`, `20241105-0001234` → `202411050001234`).
    case orderNumber
    case date(DateStep)
    /// With `ignoreCase`, the table's keys are lower-cased.
    case lookup(table: [String: String], defaultValue: String?, ignoreCase: Bool)
    case truncate(Int)
    case replace(from: String, to: String)
    case regexReplace(CompiledRegex, template: CompiledRegex.Template)
    case prefix(String)
    case suffix(String)
    case join(String)
    case first, last, count

    /// Every step name, for suggestions.
    package static let names = [
        "trim", "lowercase", "uppercase", "nfkc", "digits", "phone_kr", "tracking", "order_number", "date", "lookup", "truncate", "replace",
        "regex_replace", "prefix", "suffix", "join", "first", "last", "count",
    ]

    /// Whether the step consumes the whole node list.
    var takesList: Bool {
        switch self {
        case .join, .first, .last, .count: true
        default: false
        }
    }

    /// Whether the step reads its value as text and gives text (`date` reads numbers as epochs).
    var readsText: Bool {
        switch self {
        case .join, .first, .last, .count, .date: false
        default: true
        }
    }
}

/// A value flowing through a pipe: a node list (from a path, before any scalar step) or
/// one value (nil when missing).
enum Piped {
    case nodes([JSONValue])
    case value(JSONValue?)

    /// What `path` gives a pipe: its whole node list when a step reads the list (`join`,
    /// `count`, …), otherwise its first node alone, found without listing the others.
    @inline(__always) init(_ path: JSONPath, in document: JSONValue, body: JSONTapeNode? = nil, readsList: Bool) {
        self = readsList ? .nodes(path.select(in: document)) : .value(path.first(in: document, body: body))
    }

    /// The scalar view: the first node of a list.
    var scalar: JSONValue? {
        switch self {
        case .nodes(let nodes): nodes.first
        case .value(let value): value
        }
    }

    /// The list view for `join`, `first`, `last`, `count`: the nodes, or the items of a single
    /// array (so `$.body.tags` and `$.body.tags[*]` count the same).
    var list: [JSONValue] {
        let nodes: [JSONValue]
        switch self {
        case .nodes(let selected): nodes = selected
        case .value(let value): nodes = value.map { [$0] } ?? []
        }
        if nodes.count == 1, case .array(let items) = nodes[0].resolved { return items }
        return nodes
    }

    func applying(_ steps: [PipeStep]) -> Piped {
        var current = self
        for step in steps { current = current.applying(step) }
        return current
    }

    func applying(_ step: PipeStep) -> Piped {
        switch step {
        case .join(let separator):
            let parts = list.filter { !$0.isEmpty }.map(\.text)
            return .value(parts.isEmpty ? nil : .string(parts.joined(separator: separator)))
        case .first: return .value(list.first)
        case .last: return .value(list.last)
        case .count: return .value(.number(String(list.count)))
        default: break
        }
        guard let value = scalar, !value.isNull else { return .value(nil) }
        if case .date(let date) = step {
            return .value(date.apply(value).map(JSONValue.string))
        }
        return .value(Self.applyingText(step, to: value.text).map(JSONValue.string))
    }

    /// A step that reads text (`PipeStep.readsText`) applied to `text`; nil when it gives nothing.
    static func applyingText(_ step: PipeStep, to text: String) -> String? {
        let result: String?
        switch step {
        case .trim: result = text.trimmingWhitespace()
        case .lowercase: result = text.lowercased()
        case .uppercase: result = text.uppercased()
        case .nfkc: result = NFKC.normalize(text)
        case .digits: result = Self.digits(text)
        case .phoneKR: result = KoreanPhone.normalize(text)
        case .tracking, .orderNumber: result = Self.lettersAndDigits(text)
        case .lookup(let table, let defaultValue, let ignoreCase):
            // An ignore_case table's keys are lower-case (MappingCompiler.lookupStep).
            result = table[text] ?? (ignoreCase ? table[text.lowercased()] : nil) ?? defaultValue
        case .truncate(let limit): result = String(text.prefix(limit))
        case .replace(let from, let to): result = from.isEmpty ? text : text.replacing(from, with: to)
        case .regexReplace(let regex, let template): result = regex.replacing(in: text, with: template)
        case .prefix(let prefix): result = text.isEmpty ? text : prefix + text
        case .suffix(let suffix): result = text.isEmpty ? text : text + suffix
        // Not text steps: `applying` takes them before it comes here, and a field's pipe comes
        // here only when all its steps read text.
        case .date, .join, .first, .last, .count: result = text
        }
        return result
    }

    /// The ASCII digits of a text.
    static func digits(_ text: String) -> String {
        let utf8 = text.utf8
        if utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) { return text }
        // One buffer, written in place (no heap at all for up to 15 digits).
        return String(unsafeUninitializedCapacity: utf8.count) { buffer in
            var count = 0
            for byte in utf8 where byte >= 48 && byte <= 57 {
                buffer[count] = byte
                count += 1
            }
            return count
        }
    }

    /// ASCII letters (upper-cased) and digits only: what a carrier's tracking number or a
    /// shop's order number is made of once spaces, dashes, `#` and the like are gone.
    static func lettersAndDigits(_ text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"): bytes.append(byte)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): bytes.append(byte - 32)
            default: continue
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
