import Testing

@testable import RelayMapping

@Suite struct JSONPathTests {
    let document = try! JSONParser().parse(
        #"""
        {"body": {"a": {"b": "c"}, "key.with.dots": 1, "items": [{"n": 1, "name": "x", "v": "first"}, {"n": 2, "name": "y", "v": "second"}, {"n": 3, "name": "x", "v": "third"}],
                  "note_attributes": [{"name": "happytalk_uuid", "value": "u-1"}, {"name": "happytalk_room_id", "value": "77"}],
                  "nums": [10, 20, 30], "flag": false, "nothing": null, "id": 820982911946154508},
         "headers": {"x-shopify-topic": "orders/create"}}
        """#)

    func select(_ path: String) throws -> [JSONValue] { try JSONPath(path).select(in: document) }

    @Test func namesAndBrackets() throws {
        #expect(try select("$.body.a.b") == [.string("c")])
        #expect(try select("$['body']['a'][\"b\"]") == [.string("c")])
        #expect(try select("$.body['key.with.dots']") == [.number("1")])
        #expect(try select("$.headers['x-shopify-topic']") == [.string("orders/create")])
        #expect(try select("$.body.missing.deeper") == [])
        #expect(try select("$.body.id") == [.number("820982911946154508")])
    }

    @Test func indexes() throws {
        #expect(try select("$.body.nums[0]") == [.number("10")])
        #expect(try select("$.body.nums[-1]") == [.number("30")])
        #expect(try select("$.body.nums[3]") == [])
        #expect(try select("$.body.nums[-4]") == [])
    }

    @Test func wildcard() throws {
        #expect(try select("$.body.nums[*]") == [.number("10"), .number("20"), .number("30")])
        #expect(try select("$.body.a.*") == [.string("c")])
        #expect(try select("$.body.items[*].n").count == 3)
    }

    @Test func filtersOnKeyValueArrays() throws {
        #expect(try select("$.body.note_attributes[?@.name == 'happytalk_uuid'].value") == [.string("u-1")])
        #expect(try select("$.body.items[?@.name == 'x'].v") == [.string("first"), .string("third")])
        #expect(try select("$.body.items[?@.name != 'x'].v") == [.string("second")])
        #expect(try select("$.body.items[?@.n > 1 && @.n <= 3].v") == [.string("second"), .string("third")])
        #expect(try select("$.body.items[?@.n < 2 || @.n >= 3].v") == [.string("first"), .string("third")])
        #expect(try select("$.body.items[?!(@.name == 'x')].v") == [.string("second")])
        #expect(try select("$.body.items[?@.missing].v") == [])
        #expect(try select("$.body.items[?@.v].n").count == 3)
        #expect(try select("$.body.nums[?@ >= 20]") == [.number("20"), .number("30")])
        #expect(try select("$.body.items[?@.n == 2.0].v") == [.string("second")])
        #expect(try select("$.body.items[?@.name == \"y\"].v") == [.string("second")])
    }

    @Test func normalizedPaths() throws {
        #expect(try JSONPath("$.body.items[0].name").normalized == "$['body']['items'][0]['name']")
        #expect(try JSONPath("$.body['o\\'k']").normalized == "$['body']['o\\'k']")
    }

    struct BadPath: Sendable, CustomTestStringConvertible {
        let path: String
        let message: String
        let column: Int
        var testDescription: String { path }
    }

    static let badPaths: [BadPath] = [
        BadPath(path: "$.body.items[0", message: "expected ']'", column: 15),
        BadPath(path: "body.x", message: "a path starts with '$'", column: 1),
        BadPath(path: "$..name", message: "descendant segments ('..') are not supported", column: 3),
        BadPath(path: "$.headers.x-topic", message: "'-' is not allowed in a dot name: write ['x-topic']", column: 12),
        BadPath(path: "$.a[1:2]", message: "slices are not supported", column: 6),
        BadPath(path: "$.a['x]", message: "unterminated string", column: 5),
        BadPath(path: "$.a[?@.n == ]", message: "expected a path or a literal", column: 13),
        BadPath(path: "$.a[?@.n == 1", message: "expected ']'", column: 14),
        BadPath(path: "$.a[?(@.n == 1]", message: "expected ')'", column: 15),
        BadPath(path: "$.a[?@[*] == 1]", message: "a compared path must select a single value (names and indexes only)", column: 6),
        BadPath(path: "$.a[?$.x == 1]", message: "absolute paths inside filters are not supported; use '@'", column: 6),
        BadPath(path: "$.a[01]", message: "invalid index 01", column: 5),
        BadPath(path: "$.a b", message: "unexpected ' '", column: 4),
        // Found by the fuzzer: deep nesting used to exhaust the stack.
        BadPath(path: "$[?" + String(repeating: "(", count: 40) + "@.a == 1" + String(repeating: ")", count: 40) + "]", message: "nested more than 32 levels deep", column: 35),
    ]

    @Test(arguments: badPaths)
    func malformedPathsReportTheirColumn(_ testCase: BadPath) {
        #expect(throws: JSONPathError(message: testCase.message, column: testCase.column, source: testCase.path)) {
            _ = try JSONPath(testCase.path)
        }
    }
}
