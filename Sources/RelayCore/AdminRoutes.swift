import RelayHTTP
import RelayMapping

/// The admin endpoints (interface.md), behind `Authorization: Bearer $HAPPYRELAY_ADMIN_TOKEN`.
/// Without the token configured, or with a wrong one, they answer 404 like any unknown path.
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
        let store = ["--data-dir", dataDirectory]
        do throws(SettingsError) {
            switch (request.method, path) {
            case (.get, "/admin/deliveries"):
                let state = FormBody.pairs(Array(request.head.query.utf8)).last { $0.name == "state" }?.value
                if let state, !["pending", "dead", "delivered"].contains(state) {
                    return HTTPErrorBody.response(.badRequest, message: "state must be pending, dead or delivered")
                }
                let listed = try DeliveryCommands.list(["--json"] + (state.map { ["--state", $0] } ?? []) + store, environment: [:])
                return .json(.ok, "{\"deliveries\":[" + listed.lines.joined(separator: ",") + "]}")
            case (.get, "/admin/bindings"), (.delete, "/admin/bindings"):
                let query = FormBody.pairs(Array(request.head.query.utf8))
                let kind = query.last { $0.name == "kind" }?.value
                let value = query.last { $0.name == "value" }?.value
                let key = kind.map { "\($0)=\(value ?? "")" }
                if request.method == .get {
                    let listed = try BindingCommands.list(["--json"] + (key.map { ["--key", $0] } ?? []) + store, environment: [:])
                    return .json(.ok, "{\"bindings\":[" + listed.lines.joined(separator: ",") + "]}")
                }
                guard let key, value != nil else { return HTTPErrorBody.response(.badRequest, message: "give kind and value") }
                let deleted = try BindingCommands.delete([key] + store, environment: [:])
                return deleted.exitCode == 0
                    ? .json(.ok, "{\"result\":\"deleted\"}") : HTTPErrorBody.response(.notFound, message: "no binding \(key)")
            case (.post, "/admin/deliveries/replay-dead"):
                return replayed(try DeliveryCommands.replay(["--all-dead", "--mappings", mappings] + store, environment: [:]))
            case (.post, _) where path.hasPrefix("/admin/deliveries/") && path.hasSuffix("/replay"):
                let id = String(path.dropFirst("/admin/deliveries/".count).dropLast("/replay".count))
                // Only a delivery id: a path segment must never reach the option parser.
                guard Self.isDeliveryID(id) else { break }
                return replayed(try DeliveryCommands.replay([id, "--mappings", mappings] + store, environment: [:]))
            default:
                break
            }
        } catch {
            return HTTPErrorBody.response(error.isUsageError ? .badRequest : .serviceUnavailable, message: error.message)
        }
        return HTTPErrorBody.response(.notFound, message: "no route for \(path)")
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

    static func replayed(_ result: MappingCommands.Result) -> HTTPResponse {
        let lines = result.lines.map { "\"\(JSONText.escaped($0))\"" }.joined(separator: ",")
        return .json(result.exitCode == 0 ? .ok : .conflict, "{\"result\":\"\(result.exitCode == 0 ? "replayed" : "partly_replayed")\",\"details\":[\(lines)]}")
    }
}
