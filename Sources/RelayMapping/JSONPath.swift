import FoundationEssentials

/// A mistake in a path, with the 1-based column where it was found.
package struct JSONPathError: Error, Equatable, Sendable, CustomStringConvertible {
    package let message: String
    package let column: Int
    package let source: String

    package var description: String { "\(message) at column \(column) in \"\(source)\"" }
}

/// A compiled RFC 9535 JSONPath (the subset docs/mapping.md names): name and index selectors,
/// the wildcard, and filters with comparisons, `&&`, `||`, `!` and parentheses.
package struct JSONPath: Sendable, Equatable, CustomStringConvertible {
    package enum Segment: Sendable, Equatable {
        case name(String)
        case index(Int)
        case wildcard
        case filter(FilterExpression)
    }

    /// The path as written.
    package let source: String
    package let segments: [Segment]

    /// Parses and compiles a path; errors carry their column.
    package init(_ source: String) throws(JSONPathError) {
        var parser = PathParser(source)
        self.source = source
        segments = try parser.parseAbsolute()
        isSingular = Self.isSingular(segments)
        if case .name("body")? = segments.first { readsBody = true } else { readsBody = false }
    }

    /// Whether the path goes into the request's body (`$.body…`).
    let readsBody: Bool

    package var description: String { source }

    /// True when the path selects at most one node (names and indexes only).
    package let isSingular: Bool

    static func isSingular(_ segments: [Segment]) -> Bool {
        segments.allSatisfy {
            switch $0 {
            case .name, .index: true
            case .wildcard, .filter: false
            }
        }
    }

    /// The first segment's name, if it is a name (`body`, `headers`, `binding`, …).
    package var rootName: String? {
        if case .name(let name)? = segments.first { return name }
        return nil
    }

    /// The RFC 9535 normalized form of a singular path (`$['body']['items'][0]`); for
    /// other paths, the source text.
    package var normalized: String {
        guard isSingular else { return source }
        var text = "$"
        for segment in segments {
            switch segment {
            case .name(let name): text += "['" + name.replacing("\\", with: "\\\\").replacing("'", with: "\\'") + "']"
            case .index(let index): text += "[\(index)]"
            case .wildcard, .filter: break
            }
        }
        return text
    }

    /// Every node the path selects, in document order.
    package func select(in root: JSONValue) -> [JSONValue] {
        if isSingular { return Self.first(segments[...], from: root).map { [$0] } ?? [] }
        return Self.select(segments, in: root)
    }

    static func select(_ segments: [Segment], in root: JSONValue) -> [JSONValue] {
        // Walk the leading names and indexes without building lists.
        let prefix = segments.firstIndex { if case .name = $0 { false } else if case .index = $0 { false } else { true } } ?? segments.count
        guard let start = first(segments[..<prefix], from: root) else { return [] }
        if prefix == segments.count { return [start] }
        var nodes = [start]
        for segment in segments[prefix...] {
            var next: [JSONValue] = []
            for node in nodes { apply(segment, to: node, into: &next) }
            if next.isEmpty { return [] }
            nodes = next
        }
        return nodes
    }

    /// The first node the path selects, in document order, found without collecting the
    /// others (what a field reads unless a list step such as `join` follows).
    package func first(in root: JSONValue) -> JSONValue? {
        Self.first(segments[...], from: root)
    }

    /// The first node, with the request document's body tape found beforehand: a path into
    /// the body starts on the tape.
    func first(in document: JSONValue, body: JSONTapeNode?) -> JSONValue? {
        guard let body, readsBody else { return first(in: document) }
        return firstNode(inBody: body).map(JSONValue.tape)
    }

    /// For a path into the body (`readsBody`), its first node on the body's tape: from index to
    /// index, without a value made for the steps between.
    func firstNode(inBody body: JSONTapeNode) -> JSONTapeNode? {
        Self.first(segments[1...], on: body.tape, from: body.index).map { JSONTapeNode(tape: body.tape, index: $0) }
    }

    /// The first node `segments` select from `node`, depth first (the order `select` lists them in).
    static func first(_ segments: ArraySlice<Segment>, from node: JSONValue) -> JSONValue? {
        var node = node
        for offset in segments.indices {
            let segment = segments[offset]
            // On a tape, the rest goes from index to index: no node (and no reference to the
            // tape) is made for the steps between.
            if case .tape(let start) = node {
                return first(segments[offset...], on: start.tape, from: start.index).map { .tape(JSONTapeNode(tape: start.tape, index: $0)) }
            }
            switch segment {
            case .name, .index:
                guard let child = singular(segment, of: node) else { return nil }
                node = child
            case .wildcard, .filter:
                var candidates: [JSONValue] = []
                apply(segment, to: node, into: &candidates)
                let rest = segments[(offset + 1)...]
                for candidate in candidates {
                    if let found = first(rest, from: candidate) { return found }
                }
                return nil
            }
        }
        return node
    }

    /// The index of the first entry `segments` select from the entry at `index` of `tape`.
    static func first(_ segments: ArraySlice<Segment>, on tape: JSONTape, from index: Int) -> Int? {
        var index = index
        for offset in segments.indices {
            switch segments[offset] {
            case .name(let name):
                guard let next = tape.member(of: index, named: name) else { return nil }
                index = next
            case .index(let position):
                guard let next = tape.element(of: index, at: position) else { return nil }
                index = next
            case let segment:
                let entry = tape.entries[index]
                guard entry.kind == .array || entry.kind == .object else { return nil }
                let rest = segments[(offset + 1)...]
                var child = index + 1
                for _ in 0..<Int(entry.count) {
                    if entry.kind == .object { child += 1 }
                    if case .filter(let expression) = segment, !expression.holds(on: tape, at: child) {
                        // Not selected.
                    } else if let found = first(rest, on: tape, from: child) {
                        return found
                    }
                    child = tape.next(after: child)
                }
                return nil
            }
        }
        return index
    }

    static func singular(_ segment: Segment, of node: JSONValue) -> JSONValue? {
        switch segment {
        case .name(let name): return node[name]
        case .index(let index):
            if case .tape(let tapeNode) = node { return tapeNode.element(index).map(JSONValue.tape) }
            guard case .array(let items) = node else { return nil }
            let position = index < 0 ? items.count + index : index
            return items.indices.contains(position) ? items[position] : nil
        case .wildcard, .filter: return nil
        }
    }

    static func apply(_ segment: Segment, to node: JSONValue, into output: inout [JSONValue]) {
        switch segment {
        case .name, .index:
            if let child = singular(segment, of: node) { output.append(child) }
        case .wildcard:
            switch node {
            case .array(let items): output.append(contentsOf: items)
            case .object(let members): output.append(contentsOf: members.map(\.value))
            case .tape(let tapeNode): output.append(contentsOf: tapeNode.children.map(JSONValue.tape))
            default: break
            }
        case .filter(let expression):
            switch node {
            case .array(let items): output.append(contentsOf: items.filter { expression.holds(for: $0) })
            case .object(let members): output.append(contentsOf: members.map(\.value).filter { expression.holds(for: $0) })
            case .tape(let tapeNode):
                tapeNode.forEachChild { child in
                    if expression.holds(on: child.tape, at: child.index) { output.append(.tape(child)) }
                }
            default: break
            }
        }
    }
}

/// A filter's logical expression (RFC 9535 §2.3.5).
package indirect enum FilterExpression: Sendable, Equatable {
    /// A side of a comparison: a relative singular path (`@.name`) or a literal.
    package enum Operand: Sendable, Equatable {
        case path([JSONPath.Segment])
        case literal(JSONValue)
    }

    package enum Comparator: String, Sendable, Equatable {
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    }

    case or([FilterExpression])
    case and([FilterExpression])
    case not(FilterExpression)
    case exists([JSONPath.Segment])
    case compare(Operand, Comparator, Operand)
    /// `@.path == 'text'` or `!=` (either way round): the usual filter
    /// (`@.name == 'happytalk_uuid'`), decided on a tape's bytes.
    case stringEquality(path: [JSONPath.Segment], text: String, negated: Bool)

    func holds(for current: JSONValue) -> Bool {
        switch self {
        case .or(let terms): return terms.contains { $0.holds(for: current) }
        case .and(let terms): return terms.allSatisfy { $0.holds(for: current) }
        case .not(let term): return !term.holds(for: current)
        case .exists(let segments):
            return JSONPath.first(segments[...], from: current) != nil
        case .stringEquality(let segments, let text, let negated):
            return Self.equal(JSONPath.first(segments[...], from: current), .string(text)) != negated
        case .compare(let left, let comparator, let right):
            let a = Self.resolve(left, current)
            let b = Self.resolve(right, current)
            switch comparator {
            case .equal: return Self.equal(a, b)
            case .notEqual: return !Self.equal(a, b)
            case .less: return Self.less(a, b)
            case .lessOrEqual: return Self.less(a, b) || Self.equal(a, b)
            case .greater: return Self.less(b, a)
            case .greaterOrEqual: return Self.less(b, a) || Self.equal(a, b)
            }
        }
    }

    /// `holds(for:)` for the entry at `index` of `tape`: comparisons of a path with a string,
    /// the usual filter (`@.name == 'happytalk_uuid'`), are decided on the tape's bytes.
    func holds(on tape: JSONTape, at index: Int) -> Bool {
        switch self {
        case .or(let terms): return terms.contains { $0.holds(on: tape, at: index) }
        case .and(let terms): return terms.allSatisfy { $0.holds(on: tape, at: index) }
        case .not(let term): return !term.holds(on: tape, at: index)
        case .exists(let segments): return JSONPath.first(segments[...], on: tape, from: index) != nil
        case .stringEquality(let segments, var text, let negated):
            let equal =
                JSONPath.first(segments[...], on: tape, from: index).map { found in
                    tape.entries[found].kind == .string && text.withUTF8 { tape.stringEquals(at: found, $0) }
                } ?? false
            return equal != negated
        case .compare:
            return holds(for: .tape(JSONTapeNode(tape: tape, index: index)))
        }
    }

    private static func resolve(_ operand: Operand, _ current: JSONValue) -> JSONValue? {
        switch operand {
        case .literal(let value): return value
        // Compared paths are singular (the parser checks): at most one node.
        case .path(let segments): return JSONPath.first(segments[...], from: current)
        }
    }

    // RFC 9535 §2.3.5.2.2: an empty node list equals only another empty node list.
    private static func equal(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case (let a?, let b?): a == b
        default: false
        }
    }

    private static func less(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        switch (a?.resolved, b?.resolved) {
        case (.number(let x)?, .number(let y)?): JSONNumber.compare(x, y) == -1
        case (.string(let x)?, .string(let y)?): x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
        default: false
        }
    }
}

private struct PathParser {
    let source: String
    let scalars: [Unicode.Scalar]
    var index = 0
    /// Nesting of `(`, `!` and filters; bounded so that hostile paths cannot exhaust the stack.
    var depth = 0
    static let maxDepth = 32

    mutating func nest() throws(JSONPathError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw error("nested more than \(Self.maxDepth) levels deep") }
    }

    init(_ source: String) {
        self.source = source
        scalars = Array(source.unicodeScalars)
    }

    func error(_ message: String, at position: Int? = nil) -> JSONPathError {
        JSONPathError(message: message, column: (position ?? index) + 1, source: source)
    }

    var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    mutating func skipBlank() {
        while let scalar = current, scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" { index += 1 }
    }

    mutating func parseAbsolute() throws(JSONPathError) -> [JSONPath.Segment] {
        guard current == "$" else { throw error("a path starts with '$'") }
        index += 1
        let segments = try parseSegments()
        if let scalar = current { throw error("unexpected '\(scalar)'") }
        return segments
    }

    mutating func parseSegments() throws(JSONPathError) -> [JSONPath.Segment] {
        var segments: [JSONPath.Segment] = []
        while let scalar = current {
            if scalar == "." {
                index += 1
                if current == "." { throw error("descendant segments ('..') are not supported") }
                if current == "*" {
                    index += 1
                    segments.append(.wildcard)
                    continue
                }
                segments.append(.name(try parseDotName()))
            } else if scalar == "[" {
                index += 1
                skipBlank()
                segments.append(try parseSelector())
                skipBlank()
                guard current == "]" else {
                    if current == "," { throw error("selector lists are not supported") }
                    throw error("expected ']'")
                }
                index += 1
            } else {
                break
            }
        }
        return segments
    }

    mutating func parseDotName() throws(JSONPathError) -> String {
        let start = index
        guard let first = current, Self.isNameFirst(first) else {
            throw error(current == nil ? "expected a name after '.'" : "expected a name after '.'")
        }
        index += 1
        while let scalar = current, Self.isNameFirst(scalar) || ("0"..."9").contains(scalar) { index += 1 }
        if current == "-" {
            var end = index
            while end < scalars.count, scalars[end] != ".", scalars[end] != "[" { end += 1 }
            let name = String(String.UnicodeScalarView(scalars[start..<end]))
            throw error("'-' is not allowed in a dot name: write ['\(name)']")
        }
        return String(String.UnicodeScalarView(scalars[start..<index]))
    }

    static func isNameFirst(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_" || scalar.value >= 0x80
    }

    mutating func parseSelector() throws(JSONPathError) -> JSONPath.Segment {
        guard let scalar = current else { throw error("expected a selector") }
        switch scalar {
        case "'", "\"": return .name(try parseQuoted())
        case "*":
            index += 1
            return .wildcard
        case "?":
            index += 1
            skipBlank()
            try nest()
            defer { depth -= 1 }
            return .filter(try parseOr())
        case "-", "0"..."9":
            return .index(try parseInteger())
        case ":":
            throw error("slices are not supported")
        default:
            throw error("expected a name in quotes, an index, '*' or a filter")
        }
    }

    mutating func parseInteger() throws(JSONPathError) -> Int {
        let start = index
        if current == "-" { index += 1 }
        guard let first = current, ("0"..."9").contains(first) else { throw error("expected an index") }
        while let scalar = current, ("0"..."9").contains(scalar) { index += 1 }
        let text = String(String.UnicodeScalarView(scalars[start..<index]))
        if current == ":" { throw error("slices are not supported") }
        guard let value = Int(text), text == "0" || !(text.hasPrefix("0") || text.hasPrefix("-0")) else {
            throw error("invalid index \(text)", at: start)
        }
        return value
    }

    mutating func parseQuoted() throws(JSONPathError) -> String {
        let quote = current!
        let start = index
        index += 1
        var text = String.UnicodeScalarView()
        while true {
            guard let scalar = current else { throw error("unterminated string", at: start) }
            index += 1
            if scalar == quote { return String(text) }
            if scalar == "\\" {
                guard let escaped = current else { throw error("unterminated string", at: start) }
                index += 1
                switch escaped {
                case "\\", "/", "'", "\"": text.append(escaped)
                case "b": text.append("\u{08}")
                case "f": text.append("\u{0C}")
                case "n": text.append("\n")
                case "r": text.append("\r")
                case "t": text.append("\t")
                case "u":
                    guard index + 4 <= scalars.count,
                        let value = UInt32(String(String.UnicodeScalarView(scalars[index..<(index + 4)])), radix: 16),
                        let decoded = Unicode.Scalar(value)
                    else { throw error("invalid \\u escape") }
                    index += 4
                    text.append(decoded)
                default: throw error("invalid escape '\\\(escaped)'", at: index - 2)
                }
            } else {
                text.append(scalar)
            }
        }
    }

    mutating func parseOr() throws(JSONPathError) -> FilterExpression {
        var terms = [try parseAnd()]
        while true {
            skipBlank()
            guard matches("||") else { break }
            skipBlank()
            terms.append(try parseAnd())
        }
        return terms.count == 1 ? terms[0] : .or(terms)
    }

    mutating func parseAnd() throws(JSONPathError) -> FilterExpression {
        var terms = [try parseUnary()]
        while true {
            skipBlank()
            guard matches("&&") else { break }
            skipBlank()
            terms.append(try parseUnary())
        }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    mutating func matches(_ token: String) -> Bool {
        let tokenScalars = Array(token.unicodeScalars)
        guard index + tokenScalars.count <= scalars.count, Array(scalars[index..<(index + tokenScalars.count)]) == tokenScalars
        else { return false }
        index += tokenScalars.count
        return true
    }

    mutating func parseUnary() throws(JSONPathError) -> FilterExpression {
        try nest()
        defer { depth -= 1 }
        skipBlank()
        if current == "!" && (index + 1 >= scalars.count || scalars[index + 1] != "=") {
            index += 1
            return .not(try parseUnary())
        }
        if current == "(" {
            index += 1
            let inner = try parseOr()
            skipBlank()
            guard current == ")" else { throw error("expected ')'") }
            index += 1
            return inner
        }
        let start = index
        let left = try parseOperand()
        skipBlank()
        guard let comparator = parseComparator() else {
            guard case .path(let segments) = left else { throw error("a literal alone is not a condition", at: start) }
            return .exists(segments)
        }
        skipBlank()
        let rightStart = index
        let right = try parseOperand()
        for (operand, position) in [(left, start), (right, rightStart)] {
            if case .path(let segments) = operand,
                !segments.allSatisfy({ if case .name = $0 { true } else if case .index = $0 { true } else { false } })
            {
                throw error("a compared path must select a single value (names and indexes only)", at: position)
            }
        }
        switch (left, comparator, right) {
        case (.path(let segments), .equal, .literal(.string(let text))), (.literal(.string(let text)), .equal, .path(let segments)):
            return .stringEquality(path: segments, text: text, negated: false)
        case (.path(let segments), .notEqual, .literal(.string(let text))), (.literal(.string(let text)), .notEqual, .path(let segments)):
            return .stringEquality(path: segments, text: text, negated: true)
        default:
            return .compare(left, comparator, right)
        }
    }

    mutating func parseComparator() -> FilterExpression.Comparator? {
        for comparator in ["==", "!=", "<=", ">=", "<", ">"] where matches(comparator) {
            return FilterExpression.Comparator(rawValue: comparator)
        }
        return nil
    }

    mutating func parseOperand() throws(JSONPathError) -> FilterExpression.Operand {
        guard let scalar = current else { throw error("expected a path or a literal") }
        switch scalar {
        case "@":
            index += 1
            return .path(try parseSegments())
        case "$":
            throw error("absolute paths inside filters are not supported; use '@'")
        case "'", "\"":
            return .literal(.string(try parseQuoted()))
        case "-", "0"..."9":
            let start = index
            if current == "-" { index += 1 }
            while let next = current, ("0"..."9").contains(next) || next == "." || next == "e" || next == "E" || next == "+"
                || (next == "-" && index > start && (scalars[index - 1] == "e" || scalars[index - 1] == "E"))
            {
                index += 1
            }
            let text = String(String.UnicodeScalarView(scalars[start..<index]))
            guard case .number(let digits)? = try? JSONParser().parse(text) else {
                throw error("invalid number \(text)", at: start)
            }
            return .literal(.number(digits))
        default:
            for (word, value) in [("true", JSONValue.bool(true)), ("false", .bool(false)), ("null", .null)] where matches(word) {
                return .literal(value)
            }
            throw error("expected a path or a literal")
        }
    }
}
