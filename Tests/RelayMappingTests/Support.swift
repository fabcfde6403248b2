import Foundation
import Testing

@testable import RelayMapping

/// Compiles a mapping file given as text; records the diagnostics as test issues.
func compileRoute(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> MappingRoute? {
    switch MappingLoader.compile(file: "test.json", bytes: Array(text.utf8), baseDirectory: nil) {
    case .success(let route): return route
    case .failure(let diagnostics):
        Issue.record("did not compile:\n\(diagnostics)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The diagnostics of a mapping file given as text (empty when it compiles).
func diagnostics(_ text: String) -> [String] {
    switch MappingLoader.compile(file: "shop.json", bytes: Array(text.utf8), baseDirectory: nil) {
    case .success: []
    case .failure(let diagnostics): diagnostics.items.map(\.description)
    }
}

/// A one-rule route around `set` (and optional `when`), for value and step tests.
func routeText(set: String, when: String? = nil, extra: String = "", ruleExtra: String = "") -> String {
    """
    { "route": "/t", "verify": { "scheme": "none" }, \(extra)
      "rules": [ { "name": "r", \(ruleExtra) \(when.map { "\"when\": \($0)," } ?? "") "set": { "uuid": "u", "room_id": "r", \(set) } } ] }
    """
}

func document(body: String, headers: [(String, String)] = [], query: [(String, String)] = []) -> JSONValue {
    RequestDocument.make(
        body: try! JSONParser().parse(body), headers: headers.map { ($0.0, $0.1) }, query: query.map { ($0.0, $0.1) },
        route: "/t", receivedAt: "2026-11-29T00:00:00.000Z", requestID: "req-1")
}

/// The value a field gets (nil when omitted), or the failure text.
func field(
    _ name: String, set: String, body: String, headers: [(String, String)] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) -> String? {
    guard let route = compileRoute(routeText(set: set), sourceLocation: sourceLocation) else { return "<no route>" }
    func outcome(_ document: JSONValue) -> String? {
        switch route.apply(to: document) {
        case .calls(let calls, _): return calls[0][name]
        case .failed(let failure): return "FAIL \(failure)"
        case .ignored(let reason): return "IGNORED \(reason)"
        case .bound: return "BOUND"
        }
    }
    // Bodies reach the engine as tapes; examples are read into value trees. Both must map alike.
    let fromTree = outcome(document(body: body, headers: headers))
    guard let parsed = try? JSONParser().tape(Array(body.utf8)) else {
        Issue.record("the tape refuses \(body), which the tree reads", sourceLocation: sourceLocation)
        return fromTree
    }
    let tape = JSONValue.tape(parsed.root)
    let fromTape = outcome(
        RequestDocument.make(body: tape, headers: headers, query: [], route: "/t", receivedAt: "2026-11-29T00:00:00.000Z", requestID: "req-1"))
    #expect(fromTape == fromTree, "the tape maps \(body) otherwise", sourceLocation: sourceLocation)
    return fromTree
}

/// Applies one step to one JSON value.
func step(_ stepJSON: String, _ input: String) -> String? {
    field("parameter1", set: "\"parameter10\": \"x\", \"parameter1\": { \"path\": \"$.body.v\", \"pipe\": [\(stepJSON)] }", body: "{\"v\": \(input)}")
}
