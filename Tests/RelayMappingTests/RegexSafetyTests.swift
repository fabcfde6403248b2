import Testing

@testable import RelayMapping

/// Patterns that can backtrack exponentially are refused at load, with the pointer; the
/// ordinary ones stay allowed.
@Suite struct RegexSafetyTests {
    @Test(arguments: [
        "(a+)+b", "(a*)*", "(a|aa)+", "(x+x+)+y", "((ab)*c)+", "(\\d+-)*", "(a|b){2,}", "(a{1,3}){1,9}", "(.*a){12}x?|(?:b+)+", "(a)\\1", "(?<n>a)\\k<n>",
    ])
    func dangerousPatternsAreRefused(_ pattern: String) {
        #expect(RegexSafety.problem(in: pattern) != nil, "\(pattern)")
    }

    @Test(arguments: [
        "\\.\\d+$", "^[0-9]{3}-[0-9]{4}$", "(ab)+", "(\\d{3}-)+", "(a+)?", "(?:order|ORD)-\\d+", "[(a+)+]", "\\(a+\\)+", "a+b*c{2,}", "(abc){3}",
        "(?i)^shipped|fulfilled$",
    ])
    func ordinaryPatternsAreAllowed(_ pattern: String) {
        #expect(RegexSafety.problem(in: pattern) == nil, "\(pattern)")
    }

    @Test func theCompilerReportsItWithThePointer() {
        let problems = diagnostics(routeText(set: #""order_number": { "path": "$.body.n", "pipe": [{ "regex_replace": { "pattern": "(a+)+b", "to": "" } }] }"#))
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("shop.json: /rules/0/set/order_number/pipe/0/regex_replace/pattern: regular expression \"(a+)+b\" repeats a group") == true, "\(problems)")
        let condition = diagnostics(routeText(set: #""order_number": "1""#, when: #"{ "path": "$.body.n", "matches": "(x|y)*z" }"#))
        #expect(condition.contains { $0.contains("/rules/0/when/matches: regular expression \"(x|y)*z\" repeats a group") }, "\(condition)")
    }
}
