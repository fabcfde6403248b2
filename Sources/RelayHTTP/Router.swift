/// How a route answers. `immediate` handlers run on the event loop thread and must not
/// block (health checks, metrics); `async` handlers run as a task and may wait (upstream calls).
package enum HTTPHandler: Sendable {
    case immediate(@Sendable (HTTPRequest) -> HTTPResponse)
    case async(@Sendable (HTTPRequest) async -> HTTPResponse)
}

/// Routes by method and exact path.
package struct Router: Sendable {
    /// The outcome of a lookup.
    package enum Match {
        case handler(HTTPHandler)
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    private var routes: [String: [HTTPMethod: HTTPHandler]] = [:]

    package init() {}

    /// Adds (or replaces) the handler for a method and path.
    package mutating func add(_ method: HTTPMethod, _ path: String, _ handler: HTTPHandler) {
        routes[path, default: [:]][method] = handler
    }

    /// The handler for a request; `HEAD` falls back to `GET` (RFC 9110 §9.3.2).
    package func match(method: HTTPMethod, path: Substring) -> Match {
        guard let methods = routes[String(path)] else { return .notFound }
        if let handler = methods[method] { return .handler(handler) }
        if method == .head, let handler = methods[.get] { return .handler(handler) }
        var allowed = Array(methods.keys)
        if methods[.get] != nil && methods[.head] == nil { allowed.append(.head) }
        return .methodNotAllowed(allowed: allowed.sorted { $0.rawValue < $1.rawValue })
    }

    /// Every registered path, sorted.
    package var paths: [String] { routes.keys.sorted() }
}

/// Builds the JSON error bodies of interface.md (`{"result":"fail","error":…,"message":…}`).
package enum HTTPErrorBody {
    /// The machine-readable error name for a status.
    package static func errorName(for status: HTTPStatus) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "invalid_signature"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 408: "request_timeout"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 431: "headers_too_large"
        case 501: "not_implemented"
        case 503: "unavailable"
        case 504: "upstream_timeout"
        default: status.code >= 500 ? "internal_error" : "bad_request"
        }
    }

    /// A complete error response.
    package static func response(_ status: HTTPStatus, error: String? = nil, message: String) -> HTTPResponse {
        .json(
            status,
            "{\"result\":\"fail\",\"error\":\"\(error ?? errorName(for: status))\",\"message\":\"\(JSONText.escaped(message))\"}")
    }

}
