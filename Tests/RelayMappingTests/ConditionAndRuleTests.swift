import Testing

@testable import RelayMapping

@Suite struct ConditionTests {
    func holds(_ condition: String, _ body: String, headers: [(String, String)] = []) -> Bool {
        guard let route = compileRoute(routeText(set: "\"parameter1\": \"x\"", when: condition)) else { return false }
        if case .calls = route.apply(to: document(body: body, headers: headers)) { return true }
        return false
    }

    @Test func equalsComparesWithoutCoercion() {
        #expect(holds(#"{ "path": "$.body.v", "equals": "1" }"#, #"{"v": "1"}"#))
        #expect(!holds(#"{ "path": "$.body.v", "equals": "1" }"#, #"{"v": 1}"#))
        #expect(holds(#"{ "path": "$.body.v", "equals": 1 }"#, #"{"v": 1.0}"#))
        #expect(holds(#"{ "path": "$.body.v", "equals": false }"#, #"{"v": false}"#))
        #expect(holds(#"{ "path": "$.body.v", "equals": null }"#, #"{"v": null}"#))
        #expect(holds(#"{ "path": "$.body.v", "equals": {"a": [1]} }"#, #"{"v": {"a": [1]}}"#))
        #expect(!holds(#"{ "path": "$.body.v", "equals": "x" }"#, #"{}"#))
    }

    @Test func inExistsEmpty() {
        #expect(holds(#"{ "path": "$.headers['x-shopify-topic']", "in": ["orders/create", "orders/paid"] }"#, "{}", headers: [("X-Shopify-Topic", "orders/paid")]))
        #expect(!holds(#"{ "path": "$.body.v", "in": ["a", "b"] }"#, #"{"v": "c"}"#))
        #expect(holds(#"{ "path": "$.body.v", "exists": true }"#, #"{"v": null}"#))
        #expect(holds(#"{ "path": "$.body.v", "exists": false }"#, #"{}"#))
        #expect(holds(#"{ "path": "$.body.v", "empty": true }"#, #"{"v": "  "}"#))
        #expect(holds(#"{ "path": "$.body.v", "empty": true }"#, #"{}"#))
        #expect(holds(#"{ "path": "$.body.v", "empty": false }"#, #"{"v": 0}"#))
        #expect(holds(#"{ "path": "$.body.v", "empty": false }"#, #"{"v": false}"#))
        #expect(!holds(#"{ "path": "$.body.v", "empty": false }"#, #"{"v": []}"#))
    }

    @Test func textOperators() {
        #expect(holds(#"{ "path": "$.body.v", "matches": "[0-9]{3}-[0-9]{4}" }"#, #"{"v": "123-4567"}"#))
        #expect(!holds(#"{ "path": "$.body.v", "matches": "[0-9]{3}" }"#, #"{"v": "1234"}"#), "matches the whole value")
        #expect(holds(#"{ "path": "$.body.v", "contains": "배송" }"#, #"{"v": "배송 문의"}"#))
        #expect(holds(#"{ "path": "$.body.v", "starts_with": "orders/" }"#, #"{"v": "orders/create"}"#))
        #expect(!holds(#"{ "path": "$.body.v", "starts_with": "orders/" }"#, #"{}"#))
        #expect(holds(#"{ "path": "$.body.v", "pipe": ["lowercase"], "equals": "paid" }"#, #"{"v": "PAID"}"#))
    }

    @Test func numericOperators() {
        #expect(holds(#"{ "path": "$.body.v", "gt": 10 }"#, #"{"v": 10.5}"#))
        #expect(!holds(#"{ "path": "$.body.v", "gt": 10 }"#, #"{"v": 10}"#))
        #expect(holds(#"{ "path": "$.body.v", "gte": 10 }"#, #"{"v": 10}"#))
        #expect(holds(#"{ "path": "$.body.v", "lt": 820982911946154509 }"#, #"{"v": 820982911946154508}"#))
        #expect(holds(#"{ "path": "$.body.v", "lte": 15000 }"#, #"{"v": "15000.00"}"#))
        #expect(!holds(#"{ "path": "$.body.v", "lt": 5 }"#, #"{"v": "abc"}"#))
        #expect(!holds(#"{ "path": "$.body.v", "lt": 5 }"#, #"{}"#))
    }

    @Test func logic() {
        let all = #"{ "all": [ { "path": "$.body.a", "equals": 1 }, { "not": { "path": "$.body.b", "exists": true } } ] }"#
        #expect(holds(all, #"{"a": 1}"#))
        #expect(!holds(all, #"{"a": 1, "b": 2}"#))
        let any = #"{ "any": [ { "path": "$.body.a", "equals": 1 }, { "path": "$.body.b", "equals": 2 } ] }"#
        #expect(holds(any, #"{"b": 2}"#))
        #expect(!holds(any, #"{"a": 2}"#))
    }
}

@Suite struct RuleTests {
    @Test func firstMatchingRuleWinsAndNoMatchIsIgnored() throws {
        let route = try #require(compileRoute("""
            { "route": "/t", "verify": { "scheme": "none" }, "rules": [
              { "name": "a", "when": { "path": "$.body.k", "equals": "a" }, "set": { "uuid": "u", "room_id": "r", "parameter1": "A" } },
              { "name": "any", "set": { "uuid": "u", "room_id": "r", "parameter1": "ANY" } } ] }
            """))
        guard case .calls(let calls, _) = route.apply(to: document(body: #"{"k": "a"}"#)) else {
            Issue.record("no call")
            return
        }
        #expect(calls.map(\.rule) == ["a"])
        let narrow = try #require(compileRoute(routeText(set: "\"parameter1\": \"x\"", when: #"{ "path": "$.body.k", "exists": true }"#)))
        #expect(narrow.apply(to: document(body: "{}")) == .ignored(reason: "no rule matched"))
    }

    @Test func modeAllMakesOneCallPerMatchingRule() throws {
        let route = try #require(compileRoute("""
            { "route": "/t", "verify": { "scheme": "none" }, "mode": "all", "rules": [
              { "name": "parcel", "set": { "uuid": "u", "room_id": "r", "parcel_number": "$.body.p" } },
              { "name": "skip", "when": { "path": "$.body.never", "exists": true }, "set": { "uuid": "u", "room_id": "r" } },
              { "name": "next", "set": { "uuid": "u", "room_id": "r", "scenario_next": "Y" } } ] }
            """))
        guard case .calls(let calls, _) = route.apply(to: document(body: #"{"p": "123"}"#)) else {
            Issue.record("no calls")
            return
        }
        #expect(calls.map(\.rule) == ["parcel", "next"])
        #expect(calls[0]["parcel_number"] == "123")
        #expect(calls[1]["scenario_next"] == "Y")
    }

    @Test func bindAndResolveWithAnInjectedLookup() throws {
        let route = try #require(compileRoute("""
            { "route": "/t", "verify": { "scheme": "none" }, "rules": [
              { "name": "inquiry", "when": { "path": "$.body.uuid", "exists": true },
                "bind": { "keys": { "order_number": "$.body.order", "phone": { "path": "$.body.phone", "pipe": ["phone_kr"] } },
                          "uuid": "$.body.uuid", "room_id": "$.body.room", "ttl": "7d" } },
              { "name": "shipped", "resolve": [ { "order_number": "$.body.order" }, { "phone": { "path": "$.body.phone", "pipe": ["phone_kr"] } } ],
                "set": { "uuid": "$.binding.uuid", "room_id": "$.binding.room_id", "parcel_number": "$.body.tracking", "parameter1": "$.binding.key" } } ] }
            """))
        let bound = route.apply(to: document(body: #"{"uuid": "u-1", "room": "r-9", "order": 1043, "phone": "010-1234-5678"}"#))
        #expect(bound == .bound([
            BindingWrite(kind: "order_number", value: "1043", uuid: "u-1", roomID: "r-9", ttl: .seconds(7 * 86400)),
            BindingWrite(kind: "phone", value: "01012345678", uuid: "u-1", roomID: "r-9", ttl: .seconds(7 * 86400)),
        ]))
        let store = SeededBindings(entries: [("phone", "01012345678", "u-1", "r-9")])
        guard case .calls(let calls, _) = route.apply(to: document(body: #"{"order": 9999, "phone": "+82 10 1234 5678", "tracking": "555"}"#), bindings: store) else {
            Issue.record("no call")
            return
        }
        #expect(calls[0]["uuid"] == "u-1")
        #expect(calls[0]["room_id"] == "r-9")
        #expect(calls[0]["parameter1"] == "phone=01012345678")
        #expect(route.apply(to: document(body: #"{"order": 1, "tracking": "555"}"#), bindings: store) == .ignored(reason: "no binding"))
    }
}

@Suite struct IgnoreWithoutAndKeyTests {
    static let route = """
        { "route": "/t", "verify": { "scheme": "none" }, "rules": [
          { "name": "bound", "resolve": [ { "order_number": "$.body.order" }, { "phone": "$.body.phone" } ],
            "set": { "uuid": "$.binding.uuid", "room_id": "$.binding.room_id", "order_number": { "path": "$.body.order", "pipe": ["order_number"] } } },
          { "name": "from the payload", "ignore_without": { "fields": ["uuid", "room_id"], "reason": "no chat user for this order" },
            "set": { "uuid": "$.body.uuid", "room_id": "$.body.room", "order_number": { "path": "$.body.order", "pipe": ["order_number"] } } } ] }
        """

    @Test func anEventWithoutTheNamedFieldsIsIgnoredWithTheReasonNotFailed() throws {
        let route = try #require(compileRoute(Self.route))
        #expect(route.apply(to: document(body: #"{"order": "1043"}"#)) == .ignored(reason: "no chat user for this order"))
        #expect(route.apply(to: document(body: #"{"order": "1043", "uuid": "u-1"}"#)) == .ignored(reason: "no chat user for this order"))
        guard case .calls(let calls, _) = route.apply(to: document(body: ##"{"order": "#1043", "uuid": "u-1", "room": "r-1"}"##)) else {
            Issue.record("no call")
            return
        }
        #expect(calls[0].fields.map(\.value) == ["u-1", "r-1", "1043"])
    }

    @Test func keysAreNormalisedPerKindOnBothSides() throws {
        let route = try #require(compileRoute(Self.route))
        // The chatbot stored what the customer typed; the shop sends another shape of the same order.
        let typed = SeededBindings(entries: [("order_number", "202411050001234", "u-7", "r-7"), ("phone", "010-1234-5678", "u-8", "r-8")])
        guard case .calls(let byOrder, _) = route.apply(to: document(body: #"{"order": "20241105-0001234"}"#), bindings: typed),
            case .calls(let byPhone, _) = route.apply(to: document(body: #"{"order": "9", "phone": "+82 10 1234 5678"}"#), bindings: typed)
        else {
            Issue.record("not bound")
            return
        }
        #expect(byOrder[0]["uuid"] == "u-7")
        #expect(byOrder[0]["order_number"] == "202411050001234")
        #expect(byPhone[0]["uuid"] == "u-8")
        #expect(BindingKey.normalized(kind: "order_number", value: "#wc-1043") == "WC1043")
        #expect(BindingKey.normalized(kind: "order_number", value: " # ") == nil)
        #expect(BindingKey.normalized(kind: "phone", value: "010 1234 5678") == "01012345678")
        #expect(BindingKey.normalized(kind: "email", value: " a@b.c ") == "a@b.c")
    }

    @Test func bindWritesCanonicalKeys() throws {
        let route = try #require(compileRoute("""
            { "route": "/t", "verify": { "scheme": "none" }, "rules": [
              { "bind": { "keys": { "order_number": "$.body.order" }, "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }
            """))
        #expect(route.apply(to: document(body: ##"{"order": "#2024-11-05-01", "uuid": "u", "room": "r"}"##)) == .bound([
            BindingWrite(kind: "order_number", value: "2024110501", uuid: "u", roomID: "r", ttl: .seconds(30 * 86400))
        ]))
    }

    @Test func anExampleCanNameTheIgnoredReason() throws {
        let text = String(Self.route.dropLast(2)) + #", "examples": [ { "request": { "body": { "order": 1 } }, "expect": { "ignored": "no binding" } } ] }"#
        let route = try #require(compileRoute(text))
        #expect(route.runExamples().map(\.description) == [
            #"test.json: /examples/0: example "examples[0]": expected ignored (no binding), got ignored (no chat user for this order)"#
        ])
    }
}

@Suite struct ExampleBindingTests {
    @Test func examplesCanSeedBindingsForRulesThatResolve() throws {
        let route = try #require(compileRoute("""
            { "route": "/t", "verify": { "scheme": "none" }, "rules": [
              { "name": "shipped", "resolve": [ { "order_number": "$.body.order" } ],
                "set": { "uuid": "$.binding.uuid", "room_id": "$.binding.room_id", "parcel_number": "$.body.tracking", "scenario_next": "Y" } } ],
              "examples": [
                { "name": "bound order", "bindings": [ { "key": { "order_number": "1043" }, "uuid": "u-1", "room_id": "r-9" } ],
                  "request": { "body": { "order": 1043, "tracking": "555" } },
                  "expect": { "call": { "uuid": "u-1", "room_id": "r-9", "parcel_number": "555", "scenario_next": "Y" } } },
                { "name": "unbound order", "request": { "body": { "order": 1044, "tracking": "555" } }, "expect": { "ignored": true } } ] }
            """))
        #expect(route.runExamples().isEmpty, "\(route.runExamples())")
    }
}

/// The headers a route reads by name: what a stored request keeps for a replay.
@Suite struct ReadHeaderNamesTests {
    @Test func namedHeadersAreListedAndAnythingThatCanReachThemReadsThemAll() {
        let named = compileRoute(routeText(set: #""parameter1": "$.headers['x-shop']", "parameter2": "$.body.id""#))
        #expect(named?.readHeaderNames == ["x-shop"])
        #expect(named?.readsHeader("x-shop") == true && named?.readsHeader("cookie") == false)
        // A wildcard over the headers, or over the document (which holds them), reads every one.
        for path in ["$.headers.*", "$.*['x-shop']"] {
            let route = compileRoute(routeText(set: #""parameter1": "\#(path)""#))
            #expect(route?.readHeaderNames == nil, "\(path)")
            #expect(route?.readsHeader("cookie") == true, "\(path)")
        }
    }
}

/// A webhook's document holds the headers its route reads by name (or all of them), and the
/// route maps the same either way.
@Suite struct DocumentHeadersTests {
    @Test func onlyTheHeadersARouteReadsAreBuiltAndTheCallIsTheSame() throws {
        let route = try #require(compileRoute(routeText(set: #""parameter1": "$.headers['x-shop']", "parameter2": "$.headers['x-shop']""#)))
        let headers = [("X-Shop", "a"), ("Cookie", "secret"), ("x-shop", "b")]
        func make(_ names: Set<String>?) -> JSONValue {
            RequestDocument.make(
                body: try! JSONParser().parse("{}"), headers: headers, query: [], route: "/t", receivedAt: "t", requestID: "r", headerNames: names)
        }
        let kept = make(route.readHeaderNames)
        #expect(kept["headers"] == .object([("x-shop", .string("a, b"))]))
        #expect(make([])["headers"] == .object([]))
        #expect(make(nil)["headers"]?["cookie"] == .string("secret"))
        guard case .calls(let narrow, _) = route.apply(to: kept), case .calls(let full, _) = route.apply(to: make(nil)) else {
            Issue.record("no call")
            return
        }
        #expect(narrow == full)
        #expect(narrow.first?["parameter1"] == "a, b")
    }
}
