import Foundation
import Testing

@testable import RelayMapping

@Suite struct JSONParserTests {
    let parser = JSONParser()

    @Test func bigIntegersKeepTheirDigits() throws {
        let value = try parser.parse(#"{"id": 820982911946154508, "f": -1.50e+10, "z": 0}"#)
        #expect(value["id"] == .number("820982911946154508"))
        #expect(value["f"] == .number("-1.50e+10"))
        #expect(JSONSerializer.string(value) == #"{"id":820982911946154508,"f":-1.50e+10,"z":0}"#)
    }

    @Test func escapesAndSurrogatePairs() throws {
        let value = try parser.parse(#"["\"\\\/\b\f\n\r\t", "\u00e9\uD83D\uDE00", "한글"]"#)
        #expect(value == .array([.string("\"\\/\u{08}\u{0C}\n\r\t"), .string("é😀"), .string("한글")]))
    }

    @Test func serializerEscapesMinimallyAndRoundTrips() throws {
        let text = "{\"a\":\"line\\nbreak \\u0001 \\\"q\\\" 한글 😀\",\"b\":[true,false,null,{}],\"c\":[]}"
        let value = try parser.parse(text)
        #expect(JSONSerializer.string(value) == text)
    }

    /// The serializer looks eight bytes at a time for what needs escaping: every character
    /// that does is escaped wherever it falls in a word, and nothing else is touched.
    @Test func theSerializerEscapesWhereverTheCharacterFalls() throws {
        for offset in 0..<20 {
            let before = String(repeating: "a", count: offset)
            for (inner, escaped) in [("\"", "\\\""), ("\\", "\\\\"), ("\n", "\\n"), ("\u{01}", "\\u0001"), ("\u{1F}", "\\u001f"), ("한", "한"), ("~", "~")] {
                let text = before + inner + "bcdefghijk" + inner
                var output: [UInt8] = []
                JSONSerializer.writeString(text, to: &output)
                #expect(String(decoding: output, as: UTF8.self) == "\"" + before + escaped + "bcdefghijk" + escaped + "\"", "\(offset) \(escaped)")
                #expect(try parser.parse(output) == .string(text))
            }
        }
    }

    /// A call's body and stored form are written into storage sized for the worst case: every
    /// field made only of control characters (six bytes each), quotes, backslashes, Korean
    /// text or nothing reads back as it went in, token first, in the fields' order.
    @Test func aCallsBodyHoldsWhateverItsFieldsHold() throws {
        let controls = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar(UInt8($0)) }))
        let values = [controls, String(repeating: "\u{01}", count: 40), "\"\\\"", "홍길동 \"님\"", "", "plain", String(repeating: "\\", count: 9)]
        let call = MappedCall(rule: "r", fields: values.enumerated().map { CallField(name: "parameter\($0.offset + 1)", value: $0.element) })
        for (bytes, token) in [(call.body(token: "t\"k\u{00}"), Optional("t\"k\u{00}")), (call.storedForm(), nil)] {
            guard case .object(let members) = try parser.parse(bytes) else {
                Issue.record("not an object: \(String(decoding: bytes, as: UTF8.self))")
                continue
            }
            let expected = (token.map { [(key: "token", value: JSONValue.string($0))] } ?? [])
                + call.fields.map { (key: $0.name, value: JSONValue.string($0.value)) }
            #expect(members.map(\.key) == expected.map(\.key))
            #expect(members.map(\.value) == expected.map(\.value))
            // The same text the general writer makes.
            #expect(String(decoding: bytes, as: UTF8.self) == JSONSerializer.string(.object(expected)))
        }
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        let text: String
        let message: String
        let line: Int
        let column: Int
        var testDescription: String { text }
    }

    static let bad: [BadCase] = [
        BadCase(text: "{\"a\":1,}", message: "expected a member name in quotes", line: 1, column: 8),
        BadCase(text: "[1,\n  2,\n  x]", message: "unexpected character 'x'", line: 3, column: 3),
        BadCase(text: "01", message: "leading zero in a number", line: 1, column: 2),
        BadCase(text: "1.", message: "expected a digit after '.'", line: 1, column: 3),
        BadCase(text: "\"\\uD83D\"", message: "unpaired surrogate \\uD83D", line: 1, column: 8),
        BadCase(text: "\"\\uDE00\"", message: "unpaired surrogate \\uDE00", line: 1, column: 8),
        BadCase(text: "\"a\u{01}\"", message: "control character in a string (escape it)", line: 1, column: 3),
        BadCase(text: "\"\\x\"", message: "invalid escape '\\x'", line: 1, column: 2),
        BadCase(text: "[1] 2", message: "unexpected data after the JSON value", line: 1, column: 5),
        BadCase(text: "tru", message: "invalid literal", line: 1, column: 1),
        BadCase(text: "\"open", message: "unterminated string", line: 1, column: 1),
        BadCase(text: "", message: "unexpected end of input", line: 1, column: 1),
        BadCase(text: "{\"a\" 1}", message: "expected ':' after a member name", line: 1, column: 6),
    ]

    @Test(arguments: bad)
    func malformedJSONReportsLineAndColumn(_ testCase: BadCase) {
        #expect(throws: JSONParseError(message: testCase.message, line: testCase.line, column: testCase.column)) {
            _ = try parser.parse(testCase.text)
        }
    }

    @Test func invalidUTF8IsRejected() {
        #expect(throws: JSONParseError.self) { _ = try parser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { _ = try parser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }  // encoded surrogate
    }

    @Test func depthAndSizeLimits() throws {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONParseError.self) { _ = try parser.parse(deep) }
        let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try parser.parse(fine)
        #expect(throws: JSONParseError.self) { _ = try JSONParser(maxBytes: 4).parse("12345") }
    }

    @Test func emptinessFollowsTheSpec() {
        #expect(JSONValue.null.isEmpty)
        #expect(JSONValue.string(" \u{3000}\u{00A0}").isEmpty)
        #expect(JSONValue.array([]).isEmpty)
        #expect(JSONValue.object([]).isEmpty)
        #expect(!JSONValue.bool(false).isEmpty)
        #expect(!JSONValue.number("0").isEmpty)
    }

    /// Blankness is decided from lead bytes where they settle it: for every scalar of the
    /// Basic Multilingual Plane (and the first of each higher plane), alone and between ASCII
    /// spaces, the tree's and the tape's answer is Unicode's White_Space property.
    @Test func blanknessAgreesWithUnicodeForEveryScalar() throws {
        let scalars = (0x80...0xFFFF).compactMap(Unicode.Scalar.init) + (1...16).compactMap { Unicode.Scalar($0 << 16) }
        for scalar in scalars {
            let expected = scalar.properties.isWhitespace
            for text in [String(scalar), " \(scalar)\u{3000}", "\u{00A0}\(scalar)"] {
                #expect(JSONValue.string(text).isEmpty == expected, "U+\(String(scalar.value, radix: 16)) in \(text.debugDescription)")
                let document = JSONSerializer.string(.string(text))
                let tape = try JSONParser().tape(Array(document.utf8))
                #expect(tape.root.isEmpty == expected, "U+\(String(scalar.value, radix: 16)) on the tape")
            }
        }
    }

    @Test func numberComparison() {
        #expect(JSONNumber.compare("820982911946154508", "820982911946154509") == -1)
        #expect(JSONNumber.compare("99999999999999999999", "100000000000000000000") == -1)
        #expect(JSONNumber.compare("-99999999999999999999", "-1") == -1)
        #expect(JSONNumber.compare("1.0", "1") == 0)
        #expect(JSONValue.number("1.0") == .number("1"))
    }
}

/// The tape reads what the tree holds, and refuses what the tree parser refuses, with the
/// same message and position.
@Suite struct JSONTapeTests {
    let order = #"""
        {"id": 820982911946154508, "big": {"deep": [1, 2, {"x": "\u00e9"}]}, "note_attributes": [{"name": "a", "value": "1", "extra": [true]}, {"name": "happytalk_uuid", "value": "u-1"}],
         "items": [{"sku": "A", "n": 1}, {"sku": "B", "n": 2}], "obj": {"k1": "v1", "k2": "v2"}, "esc\"aped": "yes", "dup": 1, "dup": 2, "blank": " \u3000", "e": [], "o": {}}
        """#

    func tape(_ text: String) throws -> JSONValue { .tape(try JSONParser().tape(Array(text.utf8)).root) }

    @Test func pathsReadTheSameFromTheTapeAsFromTheTree() throws {
        let tree = try JSONParser().parse(order)
        let tape = try tape(order)
        let paths = [
            "$.id", "$.note_attributes[?@.name == 'happytalk_uuid'].value", "$.items[-1].sku", "$.items[0].n", "$.obj.*", "$['esc\"aped']",
            "$.big", "$.big.deep[2].x", "$.dup", "$.items[*].sku", "$.items[?@.n > 1].sku", "$.nothing", "$.items[5]", "$.blank", "$.e", "$.o",
            // Filters decided on the tape's bytes: each comparison, either side, negated, combined.
            "$.items[?@.sku != 'A'].n", "$.items[?'B' == @.sku].n", "$.items[?'B' != @.sku].n", "$.items[?!(@.sku == 'A')].n",
            "$.items[?@.sku == 'A' || @.sku == 'B'].n", "$.items[?@.sku != 'A' && @.n == 2].sku", "$.note_attributes[?@.extra].name",
            "$.note_attributes[?@.name != 'a'].value", "$.items[?@.missing != 'x'].sku", "$.items[?@.n == '1'].sku",
        ]
        for path in paths {
            let compiled = try JSONPath(path)
            let fromTape = compiled.select(in: tape)
            let fromTree = compiled.select(in: tree)
            #expect(fromTape == fromTree, "\(path)")
            #expect(fromTape.map(\.text) == fromTree.map(\.text), "\(path)")
            #expect(fromTape.map(\.isEmpty) == fromTree.map(\.isEmpty), "\(path)")
            // The first node, found alone, is the list's first.
            #expect(compiled.first(in: tape) == fromTree.first, "\(path)")
            #expect(compiled.first(in: tree) == fromTree.first, "\(path)")
        }
        #expect(try JSONPath("$.items[?@.sku != 'A'].n").select(in: tape).map(\.text) == ["2"])
        #expect(tape.resolved == tree)
        #expect(JSONSerializer.string(tape) == JSONSerializer.string(tree))
        #expect(tape["dup"]?.text == "2")
        #expect(tape["esc\"aped"]?.stringValue == "yes")
    }

    @Test(arguments: JSONParserTests.bad)
    func theTapeRefusesWhatTheTreeRefuses(_ testCase: JSONParserTests.BadCase) {
        #expect(throws: JSONParseError(message: testCase.message, line: testCase.line, column: testCase.column)) {
            _ = try JSONParser().tape(Array(testCase.text.utf8))
        }
    }

    @Test func invalidUTF8IsReportedAtTheOffendingByteByBoth() {
        // An escape first, then a bad byte, then a control character: the bad byte is the error.
        let bytes: [UInt8] = [0x5B, 0x22, 0x5C, 0x6E, 0x61, 0xC3, 0x28, 0x01, 0x22, 0x5D]
        let expected = JSONParseError(message: "invalid UTF-8 in a string", line: 1, column: 6)
        #expect(throws: expected) { _ = try JSONParser().parse(bytes) }
        #expect(throws: expected) { _ = try JSONParser().tape(bytes) }
    }


    /// Strings are scanned eight bytes at a time: a quote, an escape, a control character or a
    /// non-ASCII byte is found at every offset of the window, and read as the tree reads it.
    @Test func everySpecialByteIsFoundWhereverItFallsInAWord() throws {
        for offset in 0..<20 {
            let before = String(repeating: "a", count: offset)
            let after = String(repeating: "b", count: 11)
            for (inner, decoded) in [("\\n", "\n"), ("é", "é"), ("한", "한"), ("\\\"", "\""), ("\\u0041", "A")] {
                let text = "[\"\(before)\(inner)\(after)\",1]"
                #expect(try JSONParser().tape(Array(text.utf8)).root.element(0)?.stringValue == before + decoded + after, "\(text)")
                #expect(try JSONParser().tape(Array(text.utf8)).root.value == JSONParser().parse(text))
            }
            // Bytes that are not UTF-8 are found as well, and named where they are.
            let invalid = Array("[\"\(before)".utf8) + [0xC3, 0x28] + Array("\(after)\"]".utf8)
            let notUTF8 = JSONParseError(message: "invalid UTF-8 in a string", line: 1, column: 3 + offset)
            #expect(throws: notUTF8) { _ = try JSONParser().tape(invalid) }
            #expect(throws: notUTF8) { _ = try JSONParser().parse(invalid) }
            let control = Array("[\"\(before)".utf8) + [0x01] + Array("\(after)\"]".utf8)
            let expected = JSONParseError(message: "control character in a string (escape it)", line: 1, column: 3 + offset)
            #expect(throws: expected) { _ = try JSONParser().tape(control) }
            #expect(throws: expected) { _ = try JSONParser().parse(control) }
            // A quote ends the string there: what follows is not JSON.
            #expect(throws: JSONParseError.self) { _ = try JSONParser().tape(Array("[\"\(before)\"\(after)\"]".utf8)) }
            #expect(try JSONParser().tape(Array("[\"\(before)\"]".utf8)).root.element(0)?.stringValue == before)
        }
    }
    /// Member names are compared eight bytes at a time, then byte by byte: names that differ
    /// only in their last byte, or only past the first word, are told apart.
    @Test func memberNamesAreComparedToTheirLastByte() throws {
        let names = ["a", "ab", "abcdefg", "abcdefgh", "abcdefgi", "abcdefghX", "abcdefghY", "abcdefghijklmnoP", "abcdefghijklmnoQ", "ABCDEFGH", "é", "e"]
        var members: [(key: String, value: JSONValue)] = []
        for (offset, name) in names.enumerated() { members.append((name, .number(String(offset)))) }
        let tape = try JSONParser().tape(Array(JSONSerializer.string(.object(members)).utf8)).root
        for (offset, name) in names.enumerated() {
            #expect(tape.member(name)?.numberText == String(offset), "\(name)")
        }
        for missing in ["", "abcdef", "abcdefghZ", "abcdefghijklmnoR", "abcdefghijklmnoPQ", "b"] {
            #expect(tape.member(missing)?.index == nil, "\(missing)")
        }
    }

    /// Digits are skipped eight at a time: a number of every length, at every offset of the
    /// window, ends at whatever byte follows it; bytes next to the digits in the code table
    /// ('/', ':') and bytes above 0x80 end it too. The tree reads numbers with the same scan,
    /// so agreeing with it is not enough: the expected texts and refusals are spelled out.
    @Test func numbersEndWhereverTheirLastDigitFalls() throws {
        for offset in 0..<9 {
            let padding = String(repeating: " ", count: offset)
            for length in 1...20 {
                let digits = "1" + String(repeating: "7", count: length - 1)
                for follower in ["]", ",2]", ".5]", "e3]", "E-3]", "/]", ":]", "0]", "é]", "x]", "]"] {
                    // Trailing spaces keep every follower inside a word that is tested whole.
                    let bytes = Array("[\(padding)\(digits)\(follower)        ".utf8)
                    let tree = Result { try JSONParser().parse(bytes) }
                    let tape = Result { try JSONParser().tape(bytes).root.value }
                    switch (tree, tape) {
                    case (.success(let a), .success(let b)): #expect(a == b, "\(String(decoding: bytes, as: UTF8.self))")
                    case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)", "\(String(decoding: bytes, as: UTF8.self))")
                    default: Issue.record("tree \(tree) and tape \(tape) differ on \(String(decoding: bytes, as: UTF8.self))")
                    }
                }
                #expect(try JSONParser().tape(Array("[\(padding)\(digits),1]        ".utf8)).root.element(0)?.numberText == digits)
                #expect(try JSONParser().tape(Array("[\(padding)\(digits).25]        ".utf8)).root.element(0)?.numberText == digits + ".25")
                // The tree reads numbers with the same scan: what it must refuse is said here.
                #expect(throws: JSONParseError.self) { _ = try JSONParser().tape(Array("[\(padding)\(digits):]        ".utf8)) }
                #expect(throws: JSONParseError.self) { _ = try JSONParser().tape(Array("[\(padding)\(digits)/]        ".utf8)) }
            }
        }
        // Every byte value right after the digits: only 0-9 continue the number.
        for byte in UInt8(0)...UInt8(255) {
            let bytes = Array("[12345678901".utf8) + [byte] + Array("]        ".utf8)
            let isDigit = byte >= 0x30 && byte <= 0x39
            let tape = try? JSONParser().tape(bytes)
            if isDigit {
                #expect(tape?.root.element(0)?.numberText == "12345678901" + String(UnicodeScalar(byte)))
            } else if let tape {
                #expect(tape.root.element(0)?.numberText == "12345678901", "byte \(byte)")
            }
        }
    }

    @Test func invalidUTF8AndLimitsAreRefused() throws {
        #expect(throws: JSONParseError.self) { _ = try JSONParser().tape([123, 34, 97, 34, 58, 34, 0xED, 0xA0, 0x80, 34, 125]) }
        #expect(throws: JSONParseError.self) { _ = try JSONParser().tape(Array("{\"a\":\"\\uD800\"}".utf8)) }
        #expect(throws: JSONParseError.self) { _ = try JSONParser().tape(Array((String(repeating: "[", count: 65) + String(repeating: "]", count: 65)).utf8)) }
        _ = try JSONParser().tape(Array((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8))
        #expect(throws: JSONParseError.self) { _ = try JSONParser(maxBytes: 4).tape(Array("12345".utf8)) }
    }

    @Test func shippedExamplesMapTheSameFromTheTape() throws {
        let folder = repositoryRoot.appendingPathComponent("mappings").path
        for route in MappingLoader.load(directory: folder).routes {
            for example in route.examples {
                let body = try tape(JSONSerializer.string(example.body))
                let make = { (body: JSONValue) in
                    RequestDocument.make(body: body, headers: example.headers, query: example.query, route: route.path, receivedAt: "t", requestID: "r")
                }
                #expect(route.apply(to: make(body)) == route.apply(to: make(example.body)), "\(route.file) \(example.name)")
            }
        }
    }
}
