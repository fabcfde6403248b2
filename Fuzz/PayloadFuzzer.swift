import FoundationEssentials

// libFuzzer target for what a sender controls: the body, headers and query of a webhook, run
// through real mapping files (the shipped mappings, the optional presets, the golden fixtures,
// and one route below that uses every pipe step and condition) as the relay admits and maps
// them. Beyond "no crash", every call it makes must serialize to a flat JSON object of strings
// that parses back to the token followed by the call's fields, in order, value for value.
//
// The input: a byte choosing the route, a byte of flags (bit 0: a form body, bit 1: no
// Content-Type), then the body, NUL, header lines (`name: value`), NUL, the query string.

let stepsRoute = #"""
    { "route": "/fuzz/steps", "verify": { "scheme": "none" }, "delivery": "sync", "mode": "all",
      "rules": [
        { "name": "steps", "when": { "path": "$.body.s", "exists": true },
          "set": {
            "uuid": { "path": "$.body.s", "pipe": ["trim", "lowercase", "uppercase", "nfkc"], "default": "u" },
            "room_id": { "path": "$.body.s", "pipe": ["digits"], "default": "r" },
            "phone": { "path": "$.body.s", "pipe": ["phone_kr"] },
            "parcel_number": { "path": "$.body.s", "pipe": ["tracking"] },
            "order_number": { "path": "$.body.s", "pipe": ["order_number"] },
            "parameter1": { "path": "$.body.list", "pipe": ["first"] },
            "parameter2": { "path": "$.body.list", "pipe": ["last"] },
            "parameter3": { "path": "$.body.list", "pipe": ["count"] },
            "parameter4": { "path": "$.body.s", "pipe": [{ "date": "Y-m-d H:i:s" }] },
            "birthday": { "path": "$.body.t", "pipe": [{ "date": { "format": "Y-m-d", "tz": "UTC" } }] },
            "parameter5": { "path": "$.body.s", "pipe": [{ "truncate": 5 }] },
            "parameter6": { "path": "$.body.s", "pipe": [{ "replace": { "from": "a", "to": "bb" } }] },
            "parameter7": { "path": "$.body.s", "pipe": [{ "regex_replace": { "pattern": "([0-9]+)-(?<x>[a-z]*)", "to": "$2/${x}/$1" } }] },
            "parameter8": { "path": "$.body.list[*]", "pipe": [{ "join": "," }, { "prefix": "<" }, { "suffix": ">" }] },
            "parameter9": { "path": "$.body.s", "pipe": [{ "lookup": { "table": { "M": "male", "F": "female" }, "ignore_case": true } }] },
            "parameter10": { "template": "{{ $.body.s }}-{{ $.headers['x-a'] }}-{{ $.query.q }}" },
            "username": { "first": ["$.body.missing", "$.body.n", "$.body.s"] },
            "scenario_next": "Y" } },
        { "name": "conditions",
          "when": { "any": [ { "path": "$.body.s", "matches": "^[a-z]+[0-9]{2,}$" }, { "path": "$.headers['x-a']", "contains": "order" },
                             { "path": "$.query.q", "starts_with": "x" }, { "path": "$.body.n", "in": [1, "2", true] },
                             { "path": "$.body.list[?@.k == 'v' && @.n > 2].k", "exists": true } ] },
          "set": { "uuid": "$.body.uuid", "room_id": "$.body.room_id", "email": { "path": "$.body.s", "pipe": ["trim", "lowercase"] } } } ] }
    """#

/// The routes of the files listed in `$PAYLOAD_MAPPINGS` (written by the script, which seeds
/// the corpus from the same list), in its order, then the steps route. A file that no longer
/// compiles stops the fuzzer: it would fuzz less than it says.
let routes: [MappingRoute] = {
    guard let list = ProcessInfo.processInfo.environment["PAYLOAD_MAPPINGS"], let text = FileManager.default.contents(atPath: list) else {
        fatalError("PAYLOAD_MAPPINGS names no readable list of mapping files: run Fuzz/run-mapping-fuzzers")
    }
    let files = String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
    var routes: [MappingRoute] = []
    for file in files {
        guard let bytes = FileManager.default.contents(atPath: file) else { fatalError("cannot read \(file): run from the repository") }
        let folder = String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)])
        switch MappingLoader.compile(file: file, bytes: Array(bytes), baseDirectory: folder) {
        case .success(let route): routes.append(route)
        case .failure(let diagnostics): fatalError("\(file) does not compile: \(diagnostics)")
        }
    }
    switch MappingLoader.compile(file: "steps.json", bytes: Array(stepsRoute.utf8), baseDirectory: nil) {
    case .success(let route): routes.append(route)
    case .failure(let diagnostics): fatalError("the steps route does not compile: \(diagnostics)")
    }
    return routes
}()

/// Every key is bound, so that rules that resolve ids from a binding run on.
struct EveryKeyBound: BindingLookup {
    func binding(kind: String, value: String) -> Binding? {
        Binding(uuid: "bound-\(value)", roomID: "room-\(kind)", key: "\(kind)=\(value)", createdAt: "2026-12-03T00:00:00Z")
    }
}

let token = "fuzz-token"

/// A call's upstream body must parse back to the token, then the call's fields.
func check(_ outcome: MappingOutcome) {
    guard case .calls(let calls, _) = outcome else { return }
    for call in calls {
        let body = call.body(token: token)
        guard case .object(let members)? = try? JSONParser().parse(body) else {
            fatalError("the body of a call is not a JSON object: \(String(decoding: body, as: UTF8.self))")
        }
        guard members.count == call.fields.count + 1, members.first?.key == "token", members.first?.value == .string(token) else {
            fatalError("the body of a call does not start with the token, or has other members: \(String(decoding: body, as: UTF8.self))")
        }
        for (member, field) in zip(members.dropFirst(), call.fields) where member.key != field.name || member.value != .string(field.value) {
            fatalError("\(field.name) = \(field.value.debugDescription) was written as \(member.key) = \(member.value)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let route = routes[Int(input[0]) % routes.count]
    let flags = input[1]
    let parts = input[2...].split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
    let body = Array(parts[0])
    var headers: [(name: String, value: String)] = []
    if parts.count > 1 {
        for line in parts[1].split(separator: UInt8(ascii: "\n")) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingWhitespace()
            headers.append((name, value))
        }
    }
    let query = FormBody.pairs(parts.count > 2 ? Array(parts[2]) : [])
    let contentType = flags & 2 != 0 ? nil : flags & 1 != 0 ? "application/x-www-form-urlencoded" : "application/json"
    guard case .success(let value) = RequestBody.decode(body, contentType: contentType, acceptsForm: route.acceptsForm) else { return 0 }
    let document = RequestDocument.make(
        body: value, headers: headers, query: query, route: route.path, receivedAt: "2026-12-03T00:00:00Z", requestID: "fuzz",
        headerNames: route.readHeaderNames)
    _ = route.dedupe.flatMap { $0.key.evaluate(in: document) }
    check(route.apply(to: document))
    check(route.apply(to: document, bindings: EveryKeyBound()))
    return 0
}
