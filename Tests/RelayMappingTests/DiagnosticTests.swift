import Testing

@testable import RelayMapping

/// Each kind of mistake gives its exact message at the right pointer.
@Suite struct DiagnosticTests {
    struct Mistake: Sendable, CustomTestStringConvertible {
        let name: String
        let file: String
        let expected: String
        var testDescription: String { name }
    }

    static let mistakes: [Mistake] = [
        Mistake(name: "misspelt field", file: routeText(set: "\"order_no\": \"$.body.x\""),
                expected: #"shop.json: /rules/0/set/order_no: "order_no" is not a set_user_info field (did you mean "order_number"?)"#),
        Mistake(name: "token in set", file: routeText(set: "\"token\": \"abc\""),
                expected: #"shop.json: /rules/0/set/token: "token" cannot be set: the relay injects it from its credential at send time"#),
        Mistake(name: "misspelt step", file: routeText(set: "\"phone\": { \"path\": \"$.body.p\", \"pipe\": [\"phonekr\"] }"),
                expected: #"shop.json: /rules/0/set/phone/pipe/0: unknown step "phonekr" (did you mean "phone_kr"?)"#),
        Mistake(name: "step missing its argument", file: routeText(set: "\"phone\": { \"path\": \"$.body.p\", \"pipe\": [\"truncate\"] }"),
                expected: #"shop.json: /rules/0/set/phone/pipe/0: step "truncate" needs an argument: { "truncate": … }"#),
        Mistake(name: "bad path", file: routeText(set: "\"parameter1\": \"$.body.x\"", when: #"{ "path": "$.body.items[0", "exists": true }"#),
                expected: #"shop.json: /rules/0/when/path: expected ']' at column 15 in "$.body.items[0""#),
        Mistake(name: "misspelt operator", file: routeText(set: "\"parameter1\": \"x\"", when: #"{ "path": "$.body.x", "equal": 1 }"#),
                expected: #"shop.json: /rules/0/when/equal: unknown key "equal" in a condition (did you mean "equals"?)"#),
        Mistake(name: "constant that breaks the contract", file: routeText(set: "\"birth_type\": \"2\""),
                expected: #"shop.json: /rules/0/set/birth_type: birth_type: "2" must be 0 (solar) or 1 (lunar)"#),
        Mistake(name: "unknown top-level key", file: #"{ "route": "/t", "verify": { "scheme": "none" }, "rules": [], "delivry": "sync" }"#,
                expected: #"shop.json: /delivry: unknown key "delivry" in a mapping file (did you mean "delivery"?)"#),
        Mistake(name: "literal secret", file: #"{ "route": "/t", "verify": { "scheme": "shopify", "secret": "hunter2" }, "rules": [ { "set": { "uuid": "u", "room_id": "r" } } ] }"#,
                expected: #"shop.json: /verify/secret: secrets are references, never literals: write { "env": "NAME" } or { "file": "/run/secrets/name" }"#),
        Mistake(name: "misspelt scheme", file: #"{ "route": "/t", "verify": { "scheme": "stripes", "secret": { "env": "S" } }, "rules": [ { "set": { "uuid": "u", "room_id": "r" } } ] }"#,
                expected: #"shop.json: /verify/scheme: unknown scheme "stripes" (did you mean "stripe"?); the schemes are shopify, woocommerce, github, stripe, standard-webhooks, hmac, bearer, header, query, none"#),
        Mistake(name: "missing verify", file: #"{ "route": "/t", "rules": [ { "set": { "uuid": "u", "room_id": "r" } } ] }"#,
                expected: #"shop.json: /: a mapping file needs "verify""#),
        Mistake(name: "binding without resolve", file: routeText(set: "\"parameter1\": \"$.binding.uuid\""),
                expected: #"shop.json: /rules/0/set/parameter1: $.binding is only available in a rule with "resolve" (in its set and bind)"#),
        Mistake(name: "upper-case header", file: routeText(set: "\"parameter1\": \"$.headers['X-Topic']\""),
                expected: #"shop.json: /rules/0/set/parameter1: header names are lower-case in paths: write $.headers['x-topic']"#),
        Mistake(name: "unknown document root", file: routeText(set: "\"parameter1\": \"$.bdy.x\""),
                expected: #"shop.json: /rules/0/set/parameter1: "bdy" is not part of the request document (body, headers, query, meta, binding) (did you mean "body"?)"#),
        Mistake(name: "missing room_id", file: #"{ "route": "/t", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u" } } ] }"#,
                expected: #"shop.json: /rules/0/set: "set" needs "room_id" (HappyTalk requires uuid and room_id)"#),
        Mistake(name: "invalid regex", file: routeText(set: "\"parameter1\": \"x\"", when: #"{ "path": "$.body.x", "matches": "([a-z" }"#),
                expected: #"shop.json: /rules/0/when/matches: invalid regular expression "([a-z": expected ']'"#),
        Mistake(name: "unsupported regex", file: routeText(set: "\"parameter1\": \"x\"", when: #"{ "path": "$.body.x", "matches": "(?<=#)\\d+" }"#),
                expected: #"shop.json: /rules/0/when/matches: invalid regular expression "(?<=#)\d+": lookbehind is not currently supported"#),
        Mistake(name: "replacement naming a missing group", file: routeText(set: #""parameter1": { "path": "$.body.x", "pipe": [{ "regex_replace": { "pattern": "(\\d+)", "to": "$2" } }] }"#),
                expected: #"shop.json: /rules/0/set/parameter1/pipe/0/regex_replace/to: "$2" refers to group 2, but the pattern has 1 group"#),
        Mistake(name: "unknown time zone", file: routeText(set: "\"birthday\": { \"path\": \"$.body.b\", \"pipe\": [{ \"date\": { \"format\": \"Y-m-d\", \"tz\": \"Asia/Seul\" } }] }"),
                expected: #"shop.json: /rules/0/set/birthday/pipe/0/date: unknown time zone "Asia/Seul" (use an IANA name such as "Asia/Seoul" or "UTC")"#),
        Mistake(name: "unclosed template", file: routeText(set: "\"username\": { \"template\": \"{{ $.body.a \" }"),
                expected: #"shop.json: /rules/0/set/username/template: unclosed "{{" in the template"#),
        Mistake(name: "bad duration", file: routeText(set: "\"parameter1\": \"x\"", extra: #""dedupe": { "key": "$.body.id", "window": "a day" },"#),
                expected: #"shop.json: /dedupe/window: "window" must be a duration such as "5s", "10m", "24h" or "30d""#),
        Mistake(name: "bad CIDR", file: routeText(set: "\"parameter1\": \"x\"", extra: #""allow_ips": ["10.0.0.0/33"],"#),
                expected: #"shop.json: /allow_ips/0: "10.0.0.0/33" is not an IPv4/IPv6 address or CIDR block (e.g. 203.0.113.0/24)"#),
        Mistake(name: "hmac without header", file: #"{ "route": "/t", "verify": { "scheme": "hmac", "secret": { "env": "S" } }, "rules": [ { "set": { "uuid": "u", "room_id": "r" } } ] }"#,
                expected: #"shop.json: /verify: the hmac scheme needs "header""#),
        Mistake(name: "timeout on async route", file: routeText(set: "\"parameter1\": \"x\"", extra: #""timeout": "5s","#),
                expected: #"shop.json: /timeout: "timeout" applies to sync delivery only (add "delivery": "sync")"#),
        Mistake(name: "invalid JSON", file: "{ \"route\": \"/t\",\n  \"rules\": [ }",
                expected: "shop.json: /: invalid JSON: unexpected character '}' at line 2, column 14"),
        Mistake(name: "date format written with other tokens", file: routeText(set: "\"parameter2\": { \"path\": \"$.body.at\", \"pipe\": [{ \"date\": \"YYYY-MM-DD HH:mm\" }] }"),
                expected: #"shop.json: /rules/0/set/parameter2/pipe/0/date: "YY" prints the Y value twice: each token is written once (the tokens are Y (year, 2026), m (month, 01), d (day, 01), H (hour, 00-23), i (minute, 00), s (second, 00); e.g. "Y-m-d H:i")"#),
        Mistake(name: "date format with a letter that is no token", file: routeText(set: "\"parameter2\": { \"path\": \"$.body.at\", \"pipe\": [{ \"date\": \"Y-m-d h:i\" }] }"),
                expected: #"shop.json: /rules/0/set/parameter2/pipe/0/date: "h" is not a date token (the tokens are Y (year, 2026), m (month, 01), d (day, 01), H (hour, 00-23), i (minute, 00), s (second, 00); e.g. "Y-m-d H:i"); other letters are not allowed, as they would be printed as they are"#),
        Mistake(name: "lookup default longer than the field keeps", file: routeText(set: "\"parameter1\": { \"path\": \"$.body.s\", \"pipe\": [{ \"lookup\": { \"table\": { \"paid\": \"결제완료\" }, \"default\": \"this status is not one we know about\" } }] }"),
                expected: #"shop.json: /rules/0/set/parameter1: parameter1: "this status is not one we know about" is 36 characters; HappyTalk keeps at most 20 (use truncate)"#),
        Mistake(name: "value default longer than the field keeps", file: routeText(set: "\"parameter1\": { \"path\": \"$.body.s\", \"default\": \"no status was sent with it\" }"),
                expected: #"shop.json: /rules/0/set/parameter1: parameter1: "no status was sent with it" is 26 characters; HappyTalk keeps at most 20 (use truncate)"#),
        Mistake(name: "ignore_case keys that differ only in case", file: routeText(set: #""parameter1": { "path": "$.body.x", "pipe": [{ "lookup": { "table": { "M": "male", "m": "man" }, "ignore_case": true } }] }"#),
                expected: #"shop.json: /rules/0/set/parameter1/pipe/0/lookup/table/m: with "ignore_case", "m" is the same key as another in the table"#),
        // Found by the mapping fuzzer: the object form without "fields" crashed the compiler.
        Mistake(name: "ignore_without without its fields", file: routeText(set: "\"parameter1\": \"x\"", ruleExtra: #""ignore_without": { "field[": ["uuid"], "reason": "r" },"#),
                expected: #"shop.json: /rules/0/ignore_without/field[: unknown key "field[" in "ignore_without" (did you mean "fields"?)"#),
        Mistake(name: "ignore_without names a field the rule does not set", file: routeText(set: "\"parameter1\": \"x\"", ruleExtra: #""ignore_without": ["uid"],"#),
                expected: #"shop.json: /rules/0/ignore_without/0: "uid" is not set by this rule (did you mean "uuid"?)"#),
        Mistake(name: "example expecting a misspelt field", file: routeText(set: "\"parameter1\": \"x\"", extra: #""examples": [ { "request": { "body": {} }, "expect": { "call": { "paramter1": "x" } } } ],"#),
                expected: #"shop.json: /examples/0/expect/call/paramter1: "paramter1" is not a set_user_info field (did you mean "parameter1"?)"#),
    ]

    @Test(arguments: mistakes)
    func mistakeGivesItsExactMessage(_ mistake: Mistake) {
        let found = diagnostics(mistake.file)
        #expect(found.contains(mistake.expected), "got:\n\(found.joined(separator: "\n"))")
    }

    @Test func everyProblemInAFileIsReported() {
        let found = diagnostics(routeText(set: "\"order_no\": 1, \"token\": \"t\", \"phone\": { \"path\": \"$.body.p\", \"pipe\": [\"phonekr\", { \"truncat\": 2 }] }", extra: #""mode": "every","#))
        #expect(found.count == 5, "\(found)")
    }

    @Test func aFailingExampleIsReported() throws {
        let route = try #require(compileRoute(routeText(set: "\"parameter1\": \"$.body.v\"", extra: #""examples": [ { "name": "wrong", "request": { "body": { "v": "a" } }, "expect": { "call": { "uuid": "u", "room_id": "r", "parameter1": "b" } } } ],"#)))
        #expect(route.runExamples().map(\.description) == [#"test.json: /examples/0: example "wrong": expected parameter1 "b", got "a""#])
    }

    @Test func unlistedFieldsMustBeAbsentUnlessPartial() throws {
        let strict = try #require(compileRoute(routeText(set: "\"parameter1\": \"x\"", extra: #""examples": [ { "request": { "body": {} }, "expect": { "call": { "uuid": "u", "room_id": "r" } } } ],"#)))
        #expect(strict.runExamples().first?.message.contains("the call also sets parameter1") == true)
        let partial = try #require(compileRoute(routeText(set: "\"parameter1\": \"x\"", extra: #""examples": [ { "request": { "body": {} }, "expect": { "partial": true, "call": { "uuid": "u" } } } ],"#)))
        #expect(partial.runExamples().isEmpty)
    }
}
