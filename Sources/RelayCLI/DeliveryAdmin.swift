import Foundation
import RelayCore
import RelayMapping
import RelayStore

/// What operators do with deliveries — list them, replay dead ones — shared by the CLI and
/// the admin API, on the store's typed admin operations.
package struct DeliveryAdmin {
    package let store: SQLiteAdmin

    package init(store: SQLiteAdmin) {
        self.store = store
    }

    /// What a replay did: one line per delivery, and whether any stayed dead.
    package struct ReplayReport: Sendable, Equatable {
        package var lines: [String]
        package var isComplete: Bool
    }

    /// Puts dead deliveries (one, or all) back in the queue, re-mapped with `routes`; rules that
    /// resolve read `bindings` as the relay does.
    package func replay(id: String?, routes: [MappingRoute], bindings: any BindingLookup, now: UnixMilliseconds) throws(SQLiteError)
        -> ReplayReport
    {
        let requests = try store.deadRequests(id: id)
        if let id, requests.isEmpty { return ReplayReport(lines: ["\(id): no dead delivery with this id"], isComplete: false) }
        var changes: [(request: StoredRequest, change: SQLiteAdmin.ReplayChange)] = []
        var lines: [String] = []
        for request in requests {
            guard let route = routes.first(where: { $0.path == request.route }) else {
                changes.append((request, .keepDead("replay: no mapping file declares \(request.route)")))
                lines.append("\(request.id): still dead: no mapping file declares \(request.route)")
                continue
            }
            switch Self.remap(request, route: route, bindings: bindings, now: now) {
            case .success(let calls):
                changes.append((request, .requeue(calls.map { (roomID: $0["room_id"] ?? "", call: $0.storedForm()) })))
                lines.append("\(request.id): replayed")
            case .failure(let problem):
                changes.append((request, .keepDead("replay: \(problem.description)")))
                lines.append("\(request.id): still dead: \(problem.description)")
            }
        }
        try store.replay(changes, now: now)
        if lines.isEmpty { lines.append("no dead deliveries") }
        return ReplayReport(lines: lines, isComplete: !changes.contains { if case .keepDead = $0.change { true } else { false } })
    }

    struct ReplayProblem: Error, CustomStringConvertible {
        let description: String
    }

    /// Re-runs a route's mapping on a stored request.
    static func remap(_ stored: StoredRequest, route: MappingRoute, bindings: any BindingLookup, now: UnixMilliseconds)
        -> Result<[MappedCall], ReplayProblem>
    {
        guard let record = try? JSONParser().parse(stored.request) else {
            return .failure(ReplayProblem(description: "the stored request is unreadable"))
        }
        // Records of earlier versions keep the body inside the request, as a string.
        guard let body = stored.body ?? record["body"]?.stringValue.map({ Array($0.utf8) }) else {
            return .failure(ReplayProblem(description: "the stored request is unreadable"))
        }
        func pairs(_ key: String) -> [(name: String, value: String)] {
            guard case .object(let members)? = record[key] else { return [] }
            return members.map { ($0.key, $0.value.text) }
        }
        let headers = pairs("headers")
        let contentType = headers.first { $0.name == "content-type" }?.value
        let parsed: JSONValue
        switch RequestBody.decode(body, contentType: contentType, acceptsForm: route.acceptsForm) {
        case .success(let value): parsed = value
        case .failure(let problem): return .failure(ReplayProblem(description: problem.message))
        }
        let document = RequestDocument.make(
            body: parsed, headers: headers, query: pairs("query"), route: route.path, receivedAt: RFC3339.timestamp(milliseconds: now),
            requestID: stored.id)
        switch route.apply(to: document, bindings: bindings) {
        case .calls(let calls, _): return .success(calls)
        case .ignored(let reason): return .failure(ReplayProblem(description: "ignored (\(reason))"))
        case .failed(let failure): return .failure(ReplayProblem(description: "mapping failed: \(failure)"))
        case .bound: return .failure(ReplayProblem(description: "the rule only binds"))
        }
    }
}
