/// Which regular expressions a mapping may use. The engine backtracks, so a pattern such as
/// `(a+)+b` takes time exponential in the length of the text it fails on, on the thread
/// that serves webhooks. Patterns are refused at load when they can do that:
///
/// - a repeated group (`(…)*`, `(…)+`, `(…){2,}`, `(…){1,5}`) that itself contains a
///   repetition (`*`, `+`, `{n,}`, `{n,m}`) or an alternation (`|`);
/// - a back-reference (`\1`, `\k<name>`).
///
/// Everything else stays available: classes, anchors, single repetitions, optional groups
/// (`(…)?`), alternation outside a repetition.
package enum RegexSafety {
    /// Why the pattern is refused, or nil when it is allowed.
    package static func problem(in pattern: String) -> String? {
        let characters = Array(pattern.unicodeScalars)
        /// For each open group: whether it holds a repetition or an alternation so far.
        var groups: [Bool] = []
        var index = 0
        // What the last complete atom was: a group and whether it was risky, or something else.
        var lastGroupWasRisky: Bool?
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "\\":
                guard index + 1 < characters.count else { return nil }
                let next = characters[index + 1]
                if ("1"..."9").contains(next) || next == "k" {
                    return "uses a back-reference, which can take exponential time; match without one"
                }
                index += 2
                lastGroupWasRisky = nil
                continue
            case "[":
                index = endOfClass(characters, from: index)
                lastGroupWasRisky = nil
                continue
            case "(":
                groups.append(false)
                lastGroupWasRisky = nil
            case ")":
                let risky = groups.popLast() ?? false
                // A group's risk carries into the group around it.
                if risky, !groups.isEmpty { groups[groups.count - 1] = true }
                lastGroupWasRisky = risky
                index += 1
                continue
            case "|":
                if !groups.isEmpty { groups[groups.count - 1] = true }
                lastGroupWasRisky = nil
            case "*", "+", "{":
                var repeats = character != "{"
                if character == "{" {
                    // {n} repeats a fixed number of times; {n,} and {n,m} with m > 1 repeat freely.
                    let end = characters[index...].firstIndex(of: "}") ?? characters.count - 1
                    let body = String(String.UnicodeScalarView(characters[(index + 1)..<end]))
                    let parts = body.split(separator: ",", omittingEmptySubsequences: false)
                    repeats = parts.count == 2 && (parts[1].isEmpty || (Int(parts[1]) ?? 0) > 1)
                    index = end
                }
                if repeats {
                    if lastGroupWasRisky == true {
                        return "repeats a group that itself repeats or alternates (as in (a+)+ or (a|b)*), which can take exponential time; repeat the inner part only, or use a character class"
                    }
                    if !groups.isEmpty { groups[groups.count - 1] = true }
                }
                lastGroupWasRisky = nil
            default:
                lastGroupWasRisky = nil
            }
            index += 1
        }
        return nil
    }

    /// The index just past a character class starting at `start` (`[`).
    private static func endOfClass(_ characters: [Unicode.Scalar], from start: Int) -> Int {
        var index = start + 1
        if index < characters.count && characters[index] == "^" { index += 1 }
        // A "]" first in the class is a literal.
        if index < characters.count && characters[index] == "]" { index += 1 }
        while index < characters.count {
            if characters[index] == "\\" {
                index += 2
                continue
            }
            if characters[index] == "]" { return index + 1 }
            index += 1
        }
        return index
    }
}
