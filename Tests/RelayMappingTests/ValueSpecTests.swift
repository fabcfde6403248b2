import Testing

@testable import RelayMapping

@Suite struct ValueSpecTests {
    @Test func pathsAndConstants() {
        #expect(field("order_number", set: "\"order_number\": \"$.body.id\"", body: "{\"id\": 820982911946154508}") == "820982911946154508")
        #expect(field("parameter1", set: "\"parameter1\": \"hello\"", body: "{}") == "hello")
        #expect(field("parameter1", set: "\"parameter1\": 42", body: "{}") == "42")
        #expect(field("parameter1", set: "\"parameter1\": true", body: "{}") == "true")
        #expect(field("parameter1", set: "\"parameter1\": { \"const\": \"$.not-a-path\" }", body: "{}") == "$.not-a-path")
        #expect(field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.b\" }", body: "{\"b\": false}") == "false")
        #expect(field("parameter1", set: "\"parameter1\": \"$.body.b\"", body: "{\"b\": 0}") == "0")
    }

    @Test func emptyOptionalFieldsAreOmitted() {
        for value in ["null", "\"\"", "\"  \"", "[]", "{}"] {
            #expect(field("parameter1", set: "\"parameter1\": \"$.body.v\"", body: "{\"v\": \(value)}") == nil, "\(value)")
        }
        #expect(field("parameter1", set: "\"parameter1\": \"$.body.missing\"", body: "{}") == nil)
    }

    /// `null` is missing to every scalar step: the field falls back to its default (the tape
    /// says so from its entry, without building a value).
    @Test func nullIsMissingToEveryStep() {
        let steps = [
            "\"trim\"", "\"lowercase\"", "\"uppercase\"", "\"nfkc\"", "\"digits\"", "\"phone_kr\"", "\"tracking\"", "\"order_number\"",
            "{ \"date\": \"Y-m-d\" }", "{ \"lookup\": { \"a\": \"b\" } }", "{ \"truncate\": 5 }", "{ \"prefix\": \"p-\" }",
            "{ \"suffix\": \"-s\" }", "{ \"replace\": { \"from\": \"x\", \"to\": \"y\" } }",
        ]
        for step in steps {
            let set = "\"parameter1\": { \"path\": \"$.body.v\", \"pipe\": [\(step)], \"default\": \"none\" }"
            #expect(field("parameter1", set: set, body: "{\"v\": null}") == "none", "\(step)")
        }
    }

    @Test func objectsBecomeCompactJSON() {
        #expect(field("parameter1", set: "\"parameter1\": \"$.body.v\"", body: "{\"v\": {\"a\": 1}}") == "{\"a\":1}")
    }

    @Test func firstTakesTheFirstNonEmpty() {
        let set = "\"phone\": { \"first\": [\"$.body.a\", \"$.body.b\", { \"path\": \"$.body.c\", \"pipe\": [\"digits\"] }], \"pipe\": [\"phone_kr\"] }"
        #expect(field("phone", set: set, body: "{\"a\": null, \"b\": \" \", \"c\": \"tel 010-1111-2222\"}") == "01011112222")
        #expect(field("phone", set: set, body: "{\"a\": \"010 3333 4444\", \"c\": \"010-1111-2222\"}") == "01033334444")
        #expect(field("phone", set: set, body: "{}") == nil)
    }

    @Test func templatesAreEmptyWhenAPlaceholderIs() {
        let set = "\"username\": { \"template\": \"{{ $.body.last }} {{$.body.first}}님\" }"
        #expect(field("username", set: set, body: "{\"last\": \"홍\", \"first\": \"길동\"}") == "홍 길동님")
        #expect(field("username", set: set, body: "{\"last\": \"홍\"}") == nil)
        let fallback = "\"username\": { \"first\": [{ \"template\": \"{{ $.body.last }}{{ $.body.first }}\" }, \"$.body.name\"] }"
        #expect(field("username", set: fallback, body: "{\"last\": \"홍\", \"name\": \"Hong\"}") == "Hong")
    }

    @Test func defaultAndRequired() {
        #expect(field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.v\", \"default\": \"none\" }", body: "{}") == "none")
        #expect(field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.v\", \"pipe\": [\"digits\"], \"default\": \"0\" }", body: "{\"v\": \"abc\"}") == "0")
        #expect(field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.v\", \"required\": true }", body: "{}") == "FAIL parameter1: $.body.v is empty")
    }

    @Test func uuidAndRoomAreAlwaysRequired() throws {
        let route = try #require(compileRoute("""
            { "route": "/t", "verify": { "scheme": "none" },
              "rules": [ { "set": { "uuid": "$.body.customer.id", "room_id": "$.body.room" } } ] }
            """))
        #expect(route.apply(to: document(body: "{\"room\": 1}")) == .failed(MappingFailure(rule: "rules[0]", field: "uuid", reason: "$.body.customer.id is empty")))
    }

    @Test func headersQueryAndMetaAreReadable() {
        #expect(field("parameter1", set: "\"parameter1\": \"$.headers['x-shopify-topic']\"", body: "{}", headers: [("X-Shopify-Topic", "orders/paid")]) == "orders/paid")
        #expect(field("parameter1", set: "\"parameter1\": \"$.headers['x-a']\"", body: "{}", headers: [("X-A", "1"), ("x-a", "2")]) == "1, 2")
        #expect(field("parameter1", set: "\"parameter1\": \"$.meta.route\"", body: "{}") == "/t")
    }

    @Test func contractViolationsNameFieldPathAndReason() {
        #expect(field("phone", set: "\"phone\": \"$.body.p\"", body: "{\"p\": \"010-1234-5678\"}") == "FAIL phone: must be digits only (use the phone_kr step) (from $.body.p)")
        #expect(field("birthday", set: "\"birthday\": \"$.body.b\"", body: "{\"b\": \"1990-02-30\"}") == "FAIL birthday: \"1990-02-30\" is not a real date in Y-m-d form (from $.body.b)")
        #expect(field("birthday", set: "\"birthday\": \"$.body.b\"", body: "{\"b\": \"1990-02-28\"}") == "1990-02-28")
        #expect(field("parameter3", set: "\"parameter3\": \"$.body.t\"", body: "{\"t\": \"123456789012345678901\"}")?.hasPrefix("FAIL parameter3: is 21 characters") == true)
        #expect(field("parameter3", set: "\"parameter3\": \"$.body.t\"", body: "{\"t\": \"가나다라마바사아자차카타파하가나다라마바\"}") == "가나다라마바사아자차카타파하가나다라마바")
        #expect(field("user_parameter", set: "\"user_parameter\": \"$.body.t\"", body: "{\"t\": \"\(String(repeating: "a", count: 201))\"}")?.hasPrefix("FAIL user_parameter: is 201 characters") == true)
        #expect(field("scenario_next", set: "\"scenario_next\": \"$.body.s\"", body: "{\"s\": \"yes\"}")?.hasPrefix("FAIL scenario_next: \"yes\" must be Y or N") == true)
        #expect(field("birth_type", set: "\"birth_type\": \"$.body.s\"", body: "{\"s\": 1}") == "1")
    }

    @Test func callBodyPutsTheTokenFirstAndKeepsFieldOrder() throws {
        let route = try #require(compileRoute(routeText(set: "\"order_number\": \"$.body.id\", \"parameter1\": \"큰 \\\"따옴표\\\"\"")))
        guard case .calls(let calls, _) = route.apply(to: document(body: "{\"id\": 820982911946154508}")) else {
            Issue.record("no call")
            return
        }
        #expect(String(decoding: calls[0].body(token: "***"), as: UTF8.self)
            == #"{"token":"***","uuid":"u","room_id":"r","order_number":"820982911946154508","parameter1":"큰 \"따옴표\""}"#)
    }
}
