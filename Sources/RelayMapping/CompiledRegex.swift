/// A regular expression compiled at load by Swift's regex engine, matching Unicode scalars
/// (not grapheme clusters, so `.` matches one scalar and a combining mark stands alone).
/// Unchecked `Sendable`: `Regex<AnyRegexOutput>` is not marked so (its output type holds
/// values of any type), but a regex is immutable, and the program it lowers to on first use
/// (stored atomically by the engine) is lowered here, at load, before any loop shares it. A
/// class, so that a pipe step holds one reference (a larger payload made every switch over
/// `PipeStep` ask the runtime which case it holds).
package final class CompiledRegex: @unchecked Sendable, Equatable {
    package let pattern: String
    private let regex: Regex<AnyRegexOutput>
    /// An ASCII byte every match starts with (`\.\d+$` starts with `.`): a text without it
    /// has no match, and the engine is not run on it.
    private let firstByte: UInt8?

    /// Compiles `pattern`; throws the engine's message when it is invalid.
    package init(_ pattern: String) throws {
        self.pattern = pattern
        regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
        _ = "".firstMatch(of: regex)
        firstByte = Self.firstByte(of: pattern)
    }

    /// The pattern's capture groups: their count and the index of each name (`(?<name>…)`).
    /// The engine tells them only through a match: the pattern with an empty alternative
    /// matches the empty text and reports every group (unset).
    private func groups() -> (count: Int, names: [String: Int]) {
        guard let output = try? "".wholeMatch(of: Regex("(?:" + pattern + ")|"))?.output else { return (0, [:]) }
        var names: [String: Int] = [:]
        for (index, group) in output.enumerated() where index > 0 {
            if let name = group.name { names[name] = index }
        }
        return (output.count - 1, names)
    }

    /// The byte a pattern's matches all start with: its first atom is one ASCII character
    /// written literally or escaped (after an optional `^`), not made optional by a
    /// quantifier, and nothing in the pattern alternates or sets flags (`(?i)` would let
    /// `a` match `A`).
    static func firstByte(of pattern: String) -> UInt8? {
        var bytes = Array(pattern.utf8)[...]
        guard !bytes.contains(UInt8(ascii: "|")), !pattern.contains("(?") else { return nil }
        if bytes.first == UInt8(ascii: "^") { bytes = bytes.dropFirst() }
        guard let first = bytes.first, first < 0x80 else { return nil }
        let literal: UInt8
        if first == UInt8(ascii: "\\") {
            // An escaped punctuation character is itself; an escaped letter or digit is a class.
            guard bytes.count >= 2, case let escaped = bytes[bytes.startIndex + 1], escaped < 0x80,
                !(escaped >= 0x30 && escaped <= 0x39), !(escaped | 0x20 >= 0x61 && escaped | 0x20 <= 0x7A)
            else { return nil }
            literal = escaped
            bytes = bytes.dropFirst(2)
        } else {
            guard first >= 0x30 && first <= 0x39 || first | 0x20 >= 0x61 && first | 0x20 <= 0x7A || "#-_~:/@%&=,'\"<>!`".utf8.contains(first)
            else { return nil }
            literal = first
            bytes = bytes.dropFirst()
        }
        if let next = bytes.first, "?*{".utf8.contains(next) { return nil }
        return literal
    }

    package static func == (lhs: CompiledRegex, rhs: CompiledRegex) -> Bool { lhs.pattern == rhs.pattern }

    /// Whether the pattern matches the whole text.
    package func matchesWhole(_ text: String) -> Bool {
        if let firstByte, text.utf8.first != firstByte { return false }
        return text.wholeMatch(of: regex) != nil
    }

    /// Replaces every match with `template`.
    package func replacing(in text: String, with template: Template) -> String {
        if let firstByte, !text.utf8.contains(firstByte) { return text }
        var result = ""
        var copied = text.startIndex
        for match in text.matches(of: regex) {
            result += text[copied..<match.range.lowerBound]
            for part in template.parts {
                switch part {
                case .text(let literal): result += literal
                case .group(let index): result += match.output[index].substring ?? ""
                }
            }
            copied = match.range.upperBound
        }
        result += text[copied...]
        return result
    }

    /// A replacement compiled against its pattern's groups: `$0` is the match, `$1`… a group
    /// (the longest number the pattern has groups for), `${name}` a named group, `\` takes
    /// the next character as it is, and a `$` before anything else is a `$`.
    package struct Template: Sendable, Equatable {
        enum Part: Equatable {
            case text(String)
            case group(Int)
        }
        let parts: [Part]
    }

    /// `text` as a replacement for this pattern, or why it cannot be one.
    package func template(_ text: String) -> Result<Template, TemplateError> {
        let (groupCount, groupNames) = groups()
        var parts: [Template.Part] = []
        var literal = ""
        let scalars = Array(text.unicodeScalars)
        var index = 0
        func flush() {
            if !literal.isEmpty { parts.append(.text(literal)) }
            literal = ""
        }
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\\", index + 1 < scalars.count {
                literal.unicodeScalars.append(scalars[index + 1])
                index += 2
                continue
            }
            guard scalar == "$", index + 1 < scalars.count else {
                literal.unicodeScalars.append(scalar)
                index += 1
                continue
            }
            let next = scalars[index + 1]
            if next.isASCII, let digit = Int(String(next)) {
                guard digit <= groupCount else {
                    return .failure(TemplateError("\"$\(digit)\" refers to group \(digit), but the pattern has \(groupCount) group\(groupCount == 1 ? "" : "s")"))
                }
                var number = digit
                index += 2
                while index < scalars.count, let more = Int(String(scalars[index])), scalars[index].isASCII, number * 10 + more <= groupCount {
                    number = number * 10 + more
                    index += 1
                }
                flush()
                parts.append(.group(number))
                continue
            }
            if next == "{", let close = scalars[(index + 2)...].firstIndex(of: "}") {
                let name = String(String.UnicodeScalarView(scalars[(index + 2)..<close]))
                guard let group = groupNames[name] else {
                    return .failure(TemplateError("\"${\(name)}\" refers to a group the pattern does not name"))
                }
                flush()
                parts.append(.group(group))
                index = close + 1
                continue
            }
            literal.unicodeScalars.append(scalar)
            index += 1
        }
        flush()
        return .success(Template(parts: parts))
    }

    /// Why a replacement does not fit its pattern.
    package struct TemplateError: Error, Equatable {
        package let message: String
        init(_ message: String) { self.message = message }
    }
}
