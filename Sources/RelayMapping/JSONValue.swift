/// A JSON value as parsed from a payload. Numbers keep their exact source text, so an id
/// like `820982911946154508` reaches the output digit for digit.
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text exactly as it appeared in the source.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in source order; lookups take the last member of a repeated name.
    case object([(key: String, value: JSONValue)])
    /// A value of a parsed document, read from its tape when asked (see `JSONTape`).
    case tape(JSONTapeNode)

    /// The value with a tape node read one level deep (its children stay on the tape), for
    /// code that looks at the kind of a value; other values as they are.
    package var resolved: JSONValue {
        if case .tape(let node) = self { return node.shallow }
        return self
    }

    package static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.tape(let node), .string(let text)), (.string(let text), .tape(let node)): return node.stringEquals(text)
        case (.tape(let node), _): return node.value == rhs
        case (_, .tape(let node)): return lhs == node.value
        default: break
        }
        return switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b || JSONNumber.compare(a, b) == 0
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count
                && a.allSatisfy { member in b.contains { $0.key == member.key && $0.value == member.value } }
        default: false
        }
    }

    /// The member of an object with that name (the last one if repeated), else nil.
    package subscript(key: String) -> JSONValue? {
        if case .tape(let node) = self { return node.member(key).map(JSONValue.tape) }
        guard case .object(let members) = self else { return nil }
        var index = members.count
        while index > 0 {
            index -= 1
            if members[index].key == key { return members[index].value }
        }
        return nil
    }

    /// Whether the value is `null` (read without building anything from a tape).
    package var isNull: Bool {
        switch self {
        case .null: true
        case .tape(let node): node.kind == .null
        default: false
        }
    }

    /// The string of a `.string`, else nil.
    package var stringValue: String? {
        switch self {
        case .string(let text): text
        case .tape(let node) where node.kind == .string: node.stringValue
        default: nil
        }
    }

    /// Missing-equivalent for the mapping language: `null`, a blank string, `[]` or `{}`.
    /// `false` and `0` are values, not empty.
    package var isEmpty: Bool {
        switch self {
        case .null: true
        case .string(let text): Self.isBlank(text)
        case .array(let items): items.isEmpty
        case .object(let members): members.isEmpty
        case .bool, .number: false
        case .tape(let node): node.isEmpty
        }
    }

    /// Whether a non-ASCII UTF-8 lead byte can start a whitespace scalar: every one of them
    /// (U+0085, U+00A0, U+1680, U+2000…U+205F, U+3000) starts with C2, E1, E2 or E3.
    @inline(__always) static func mayBeWhitespace(lead byte: UInt8) -> Bool {
        byte == 0xC2 || byte == 0xE1 || byte == 0xE2 || byte == 0xE3
    }

    /// Whether text is empty or only (Unicode) whitespace, decided from its bytes where they
    /// settle it.
    static func isBlank(_ text: String) -> Bool {
        for byte in text.utf8 {
            if byte >= 0x80 {
                guard mayBeWhitespace(lead: byte) else { return false }
                return text.unicodeScalars.allSatisfy { $0.properties.isWhitespace }
            }
            if !(byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)) { return false }
        }
        return true
    }

    /// The value as field text: strings as they are, numbers as their source digits,
    /// booleans as `true`/`false`, `null` as empty, arrays and objects as compact JSON.
    package var text: String {
        switch self {
        case .null: ""
        case .bool(let value): value ? "true" : "false"
        case .number(let digits): digits
        case .string(let text): text
        case .array, .object: JSONSerializer.string(self)
        case .tape(let node): node.text
        }
    }

    /// A short name of the value's type, for messages.
    package var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        case .tape(let node): node.shallow.typeName
        }
    }
}

/// Comparison of JSON number texts without going through a lossy `Double` where it matters.
package enum JSONNumber {
    /// -1, 0 or 1 as `a` is less than, equal to or greater than `b`; nil if either is not a number.
    package static func compare(_ a: String, _ b: String) -> Int? {
        if let x = Int64(a), let y = Int64(b) { return x < y ? -1 : (x == y ? 0 : 1) }
        if isInteger(a) && isInteger(b) {
            // Big integers: compare sign, then length, then digits.
            let negativeA = a.hasPrefix("-")
            let negativeB = b.hasPrefix("-")
            if negativeA != negativeB { return negativeA ? -1 : 1 }
            let digitsA = a.drop { $0 == "-" }
            let digitsB = b.drop { $0 == "-" }
            var order = digitsA.count != digitsB.count ? (digitsA.count < digitsB.count ? -1 : 1)
                : (digitsA == digitsB ? 0 : (digitsA < digitsB ? -1 : 1))
            if negativeA { order = -order }
            return order
        }
        guard let x = Double(a), let y = Double(b) else { return nil }
        return x < y ? -1 : (x == y ? 0 : 1)
    }

    static func isInteger(_ text: String) -> Bool {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        return !digits.isEmpty && digits.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
