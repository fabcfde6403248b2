import Foundation
import RelayCore
import RelayCrypto
import RelayHTTP
import RelayMapping
import RelayStore

/// The admin endpoints, behind `Authorization: Bearer $HAPPYRELAY_ADMIN_TOKEN`. Without the
/// token configured, or with a wrong one, they answer 404 like any unknown path. They run
/// off the event loops, on the typed admin operations of the store.
package enum AdminRoutes {
    /// Adds `/admin/…` to the router.
    package static func add(to router: inout Router, token: String?, dataDirectory: String, mappings: String) {
        let expected = token.map { Array($0.utf8) }
        router.addPrefix(
            "/admin/",
            .async { request in
                guard let expected, let authorization = request.headers["authorization"], authorization.lowercased().hasPrefix("bearer "),
                    secretEquals(Array(authorization.dropFirst(7).utf8), expected)
                else { return HTTPErrorBody.response(.notFound, message: "no route for \(request.head.path)") }
                return answer(request, dataDirectory: dataDirectory, mappings: mappings)
            })
    }

    static func answer(_ request: HTTPRequest, dataDirectory: String, mappings: String) -> HTTPResponse {
        let path = String(request.head.path)
        let query = FormBody.pairs(Array(request.head.query.utf8))
        let now = Int(Date().timeIntervalSince1970 * 1000)
        do {
            guard let store = try SQLiteAdmin(directory: dataDirectory) else {
                return HTTPErrorBody.response(.serviceUnavailable, message: "no delivery queue in \(dataDirectory)")
            }
            switch (request.method, path) {
            case (.get, "/admin/deliveries"):
                var state: DeliveryState?
                if let text = query.last(where: { $0.name == "state" })?.value {
                    guard let known = DeliveryState(rawValue: text) else {
                        return HTTPErrorBody.response(.badRequest, message: "state must be pending, dead or delivered")
                    }
                    state = known
                }
                let rows = try store.list(state: state).map { row in
                    JSONSerializer.objectText(
                        [("id", row.id), ("state", row.state.rawValue), ("route", row.route), ("attempts", String(row.attempts)),
                         ("last_reason", row.lastReason), ("accepted_at", RFC3339.timestamp(milliseconds: row.acceptedAt))].map { (key: $0.0, value: $0.1) })
                }
                return .json(.ok, "{\"deliveries\":[" + rows.joined(separator: ",") + "]}")
            case (.get, "/admin/bindings"), (.delete, "/admin/bindings"):
                let kind = query.last { $0.name == "kind" }?.value
                let value = query.last { $0.name == "value" }?.value
                if request.method == .get {
                    let rows = try store.bindings(kind: kind, value: kind == nil ? nil : value ?? "", now: now).map { row in
                        JSONSerializer.objectText(
                            [("key", "\(row.kind)=\(row.value)"), ("uuid", row.uuid), ("room_id", row.roomID),
                             ("created", RFC3339.timestamp(milliseconds: row.createdAt)), ("expires", RFC3339.timestamp(milliseconds: row.expiresAt))]
                                .map { (key: $0.0, value: $0.1) })
                    }
                    return .json(.ok, "{\"bindings\":[" + rows.joined(separator: ",") + "]}")
                }
                guard let kind, let value else { return HTTPErrorBody.response(.badRequest, message: "give kind and value") }
                return try store.deleteBinding(kind: kind, value: value)
                    ? .json(.ok, "{\"result\":\"deleted\"}") : HTTPErrorBody.response(.notFound, message: "no binding \(kind)=\(value)")
            case (.post, "/admin/deliveries/replay-dead"):
                return try replay(id: nil, store: store, dataDirectory: dataDirectory, mappings: mappings, now: now)
            case (.post, _) where path.hasPrefix("/admin/deliveries/") && path.hasSuffix("/replay"):
                let id = String(path.dropFirst("/admin/deliveries/".count).dropLast("/replay".count))
                // Only a delivery id: a path segment is never read as anything else.
                guard Self.isDeliveryID(id) else { break }
                return try replay(id: id, store: store, dataDirectory: dataDirectory, mappings: mappings, now: now)
            default:
                break
            }
        } catch {
            return HTTPErrorBody.response(.serviceUnavailable, message: "\(error)")
        }
        return HTTPErrorBody.response(.notFound, message: "no route for \(path)")
    }

    static func replay(id: String?, store: SQLiteAdmin, dataDirectory: String, mappings: String, now: Int) throws -> HTTPResponse {
        let (routes, diagnostics) = MappingLoader.load(directory: mappings)
        guard diagnostics.isEmpty else {
            return HTTPErrorBody.response(.conflict, message: "fix the mappings before replaying: " + diagnostics.map(\.description).joined(separator: "; "))
        }
        let bindings = try SQLiteLookups(path: SQLiteSchema.path(in: dataDirectory), connections: 1)
        let report = try DeliveryAdmin(store: store).replay(id: id, routes: routes, bindings: bindings, now: now)
        let lines = report.lines.map { "\"\(JSONText.escaped($0))\"" }.joined(separator: ",")
        return .json(
            report.isComplete ? .ok : .conflict,
            "{\"result\":\"\(report.isComplete ? "replayed" : "partly_replayed")\",\"details\":[\(lines)]}")
    }

    /// A delivery id as the relay makes them: 16 hex digits, then `-N` or `-rN` for the further
    /// calls of one webhook.
    static func isDeliveryID(_ id: String) -> Bool {
        let parts = id.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts[0].utf8.count == 16, parts[0].utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return false }
        guard parts.count == 2 else { return true }
        let suffix = parts[1].hasPrefix("r") ? parts[1].dropFirst() : parts[1][...]
        return !suffix.isEmpty && suffix.utf8.count <= 6 && suffix.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
