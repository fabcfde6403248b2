import Synchronization

/// How a route answers.
///
/// - `immediate` runs on the event loop thread and returns the answer (health, readiness).
/// - `deferred` runs on the event loop thread and answers through its `HTTPResponder`,
///   now or later from any thread (after a group commit, say). An answer given before the
///   handler returns is written with no thread hop: the fast path for webhook routes.
/// - `async` runs as a task; simplest, but each request costs two thread hops.
///
/// Loop-thread handlers must not block.
package enum HTTPHandler: Sendable {
    case immediate(@Sendable (HTTPRequest) -> HTTPResponse)
    case deferred(@Sendable (HTTPRequest, HTTPResponder) -> Void)
    case async(@Sendable (HTTPRequest) async -> HTTPResponse)
}

/// Answers one request, once, from any thread. If it is dropped unanswered, the client
/// gets a 500 rather than a hung connection.
package final class HTTPResponder: Sendable {
    private let connection: LoopBound<HTTPServerConnection>
    /// The loop that serves the request: an answer given on it is written without a hop.
    package let loop: EventLoop
    private let answered = Atomic<Bool>(false)

    init(connection: HTTPServerConnection, loop: EventLoop) {
        self.connection = LoopBound(value: connection)
        self.loop = loop
    }

    deinit {
        if !answered.load(ordering: .acquiring) {
            let connection = connection
            loop.execute {
                connection.value.deliver(HTTPErrorBody.response(.internalServerError, message: "the request was not answered"))
            }
        }
    }

    /// Sends the answer; later calls are ignored.
    package func respond(_ response: HTTPResponse) {
        guard !answered.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if loop.isCurrentThread {
            connection.value.deliver(response)
        } else {
            let connection = connection
            loop.execute { connection.value.deliver(response) }
        }
    }
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
    private var prefixes: [(prefix: String, handler: HTTPHandler)] = []

    package init() {}

    /// Adds (or replaces) the handler for a method and path.
    package mutating func add(_ method: HTTPMethod, _ path: String, _ handler: HTTPHandler) {
        routes[path, default: [:]][method] = handler
    }

    /// Sends every path under `prefix` (any method) to one handler, which answers 404 or
    /// 405 itself; exact routes win.
    package mutating func addPrefix(_ prefix: String, _ handler: HTTPHandler) {
        prefixes.append((prefix, handler))
        prefixes.sort { $0.prefix.count > $1.prefix.count }
    }

    /// The handler for a request; `HEAD` falls back to `GET` (RFC 9110 §9.3.2).
    package func match(method: HTTPMethod, path: Substring) -> Match {
        guard let methods = routes[String(path)] else {
            if let entry = prefixes.first(where: { path.hasPrefix($0.prefix) }) { return .handler(entry.handler) }
            return .notFound
        }
        if let handler = methods[method] { return .handler(handler) }
        if method == .head, let handler = methods[.get] { return .handler(handler) }
        var allowed = Array(methods.keys)
        if methods[.get] != nil && methods[.head] == nil { allowed.append(.head) }
        return .methodNotAllowed(allowed: allowed.sorted { $0.rawValue < $1.rawValue })
    }
}
