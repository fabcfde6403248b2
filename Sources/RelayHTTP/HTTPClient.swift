import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why an outbound request failed.
package enum HTTPClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URL is not `http://` or `https://` with a host (or https without TLS configured).
    case invalidURL(String)
    /// Name resolution or the TCP/TLS connect failed.
    case connectFailed(String)
    /// The connect did not finish within the connect timeout.
    case connectTimedOut
    /// No complete response within the request's timeout.
    case timedOut
    /// The server closed or reset the connection before a complete response.
    case connectionClosed(String)
    /// The response could not be parsed.
    case invalidResponse(String)
    /// The client is shutting down.
    case shutDown

    package var description: String {
        switch self {
        case .invalidURL(let url): "invalid URL \(url)"
        case .connectFailed(let reason): "cannot connect: \(reason)"
        case .connectTimedOut: "connect timed out"
        case .timedOut: "timed out waiting for the response"
        case .connectionClosed(let reason): "connection closed: \(reason)"
        case .invalidResponse(let reason): "invalid response: \(reason)"
        case .shutDown: "client is shutting down"
        }
    }
}

/// Where requests go: scheme, host and port.
package struct HTTPEndpoint: Hashable, Sendable, CustomStringConvertible {
    package var isTLS: Bool
    package var host: String
    package var port: Int

    package init(isTLS: Bool, host: String, port: Int) {
        self.isTLS = isTLS
        self.host = host
        self.port = port
    }

    /// Parses `http(s)://host[:port][/base/path]` into the endpoint and the base path (no trailing slash).
    package static func parse(url: String) -> (endpoint: HTTPEndpoint, basePath: String)? {
        let lowered = url.lowercased()
        let isTLS: Bool
        let rest: Substring
        if lowered.hasPrefix("https://") {
            isTLS = true
            rest = url.dropFirst(8)
        } else if lowered.hasPrefix("http://") {
            isTLS = false
            rest = url.dropFirst(7)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        while path.hasSuffix("/") { path.removeLast() }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        let defaultPort = isTLS ? 443 : 80
        if let parsed = HostAndPort(parsing: String(authority)) {
            return (HTTPEndpoint(isTLS: isTLS, host: parsed.host, port: parsed.port), path)
        }
        var host = String(authority)
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(":") || authority.hasPrefix("[") else { return nil }
        return (HTTPEndpoint(isTLS: isTLS, host: host, port: defaultPort), path)
    }

    package var description: String {
        (isTLS ? "https://" : "http://") + HostAndPort(host: host, port: port).description
    }

    /// The value of the `Host` header.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }
}

/// An outbound request.
package struct HTTPClientRequest: Sendable {
    package var method: HTTPMethod
    package var endpoint: HTTPEndpoint
    /// Origin-form target: path and query.
    package var target: String
    package var headers: HTTPHeaders
    package var body: [UInt8]

    package init(
        method: HTTPMethod = .post, endpoint: HTTPEndpoint, target: String, headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = []
    ) {
        self.method = method
        self.endpoint = endpoint
        self.target = target
        self.headers = headers
        self.body = body
    }
}

/// A complete response.
package struct HTTPClientResponse: Sendable, Equatable {
    package var status: Int
    package var headers: HTTPHeaders
    package var body: [UInt8]
}

/// A pooled HTTP/1.1 client over the same event loops and sockets as the server: one
/// connection per in-flight request, up to a cap per endpoint, kept alive and reused.
package final class HTTPClient: Sendable {
    package struct Configuration: Sendable {
        package var connectTimeout: Duration
        /// Default for requests that do not pass their own.
        package var requestTimeout: Duration
        /// Open connections per endpoint; further requests wait for one.
        package var maxConnectionsPerEndpoint: Int
        /// Idle pooled connections are closed after this.
        package var idleTimeout: Duration
        /// Loop threads for client connections.
        package var loopCount: Int

        package init(
            connectTimeout: Duration = .seconds(5), requestTimeout: Duration = .seconds(30),
            maxConnectionsPerEndpoint: Int = 64, idleTimeout: Duration = .seconds(30), loopCount: Int = 1
        ) {
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.maxConnectionsPerEndpoint = maxConnectionsPerEndpoint
            self.idleTimeout = idleTimeout
            self.loopCount = loopCount
        }
    }

    package let configuration: Configuration
    private let group: EventLoopGroup
    private let pool: ConnectionPool
    private let plain: any TransportFactory
    private let tls: (any TransportFactory)?
    private let resolver = Resolver()

    /// A client; `tls` makes the transports for `https://` endpoints (nil: https is refused).
    package init(configuration: Configuration = Configuration(), tls: (any TransportFactory)? = nil) throws {
        self.configuration = configuration
        group = try EventLoopGroup(count: configuration.loopCount, name: "happyrelay-client")
        pool = ConnectionPool(maxPerEndpoint: configuration.maxConnectionsPerEndpoint)
        plain = PlainTransportFactory()
        self.tls = tls
    }

    /// Connections opened so far and requests sent on a reused connection (for metrics).
    package var statistics: (opened: Int, reused: Int) {
        (pool.opened.load(ordering: .relaxed), pool.reused.load(ordering: .relaxed))
    }

    /// Sends a request and waits for the complete response.
    package func execute(_ request: HTTPClientRequest, timeout: Duration? = nil) async throws(HTTPClientError)
        -> HTTPClientResponse
    {
        let deadline = monotonicNanoseconds() + (timeout ?? configuration.requestTimeout).nanoseconds
        let factory = try transportFactory(for: request.endpoint)
        var wire: [UInt8] = []
        Self.serialize(request, into: &wire)
        let wireBytes = wire
        // A pooled connection may have been closed by the server just as it was taken; such a
        // request never reached the server, so it is sent once more on a fresh connection.
        var mayRetry = true
        while true {
            let connection: ClientConnection
            let isReused: Bool
            switch await pool.acquire(request.endpoint, deadline: deadline) {
            case .failure(let error): throw error
            case .success(.some(let pooled)):
                connection = pooled
                isReused = true
            case .success(.none):
                do throws(HTTPClientError) {
                    connection = try await connect(to: request.endpoint, factory: factory, deadline: deadline)
                    isReused = false
                } catch {
                    pool.release(request.endpoint, connection: nil)
                    throw error
                }
            }
            let result: Result<HTTPResponseParser.Response, HTTPClientError> = await withCheckedContinuation {
                continuation in
                connection.loop.execute {
                    connection.send(
                        wireBytes, isHead: request.method == .head, deadline: deadline,
                        completion: { continuation.resume(returning: $0) })
                }
            }
            switch result {
            case .success(let response):
                pool.release(request.endpoint, connection: response.keepAlive ? connection : nil)
                return HTTPClientResponse(status: response.status, headers: response.headers, body: response.body)
            case .failure(let error):
                pool.release(request.endpoint, connection: nil)
                if isReused && mayRetry && error == .connectionClosed(ClientConnection.closedBeforeUse) {
                    mayRetry = false
                    continue
                }
                throw error
            }
        }
    }

    /// Plain TCP, or TLS for an `https` endpoint.
    func transportFactory(for endpoint: HTTPEndpoint) throws(HTTPClientError) -> any TransportFactory {
        guard endpoint.isTLS else { return plain }
        guard let tls else { throw .invalidURL("\(endpoint): https is not configured") }
        return tls
    }

    /// Connects to the first address of the endpoint that answers, trying each in turn.
    private func connect(to endpoint: HTTPEndpoint, factory: any TransportFactory, deadline: UInt64) async throws(HTTPClientError)
        -> ClientConnection
    {
        let addresses: [SocketAddress]
        do {
            addresses = try await resolver.resolve(HostAndPort(host: endpoint.host, port: endpoint.port))
        } catch {
            throw .connectFailed("\(endpoint.host): cannot resolve")
        }
        return try await connect(to: endpoint, trying: addresses, factory: factory, deadline: deadline)
    }

    /// Connects to the first of `addresses` that answers before the deadline.
    func connect(to endpoint: HTTPEndpoint, trying addresses: [SocketAddress], factory: any TransportFactory, deadline: UInt64)
        async throws(HTTPClientError) -> ClientConnection
    {
        var failure = HTTPClientError.connectFailed("\(endpoint.host): no address")
        for address in addresses {
            do {
                return try await connect(to: endpoint, address: address, factory: factory, deadline: deadline)
            } catch {
                failure = error
                if monotonicNanoseconds() >= deadline { break }
            }
        }
        throw failure
    }

    private func connect(to endpoint: HTTPEndpoint, address: SocketAddress, factory: any TransportFactory, deadline: UInt64)
        async throws(HTTPClientError) -> ClientConnection
    {
        let fd: Int32
        do {
            fd = try SocketFactory.connect(to: address)
        } catch {
            throw .connectFailed("\(endpoint): \(error)")
        }
        let transport: any Transport
        do {
            transport = try factory.makeTransport(fd: fd, host: endpoint.host)
        } catch {
            Syscall.close(fd)
            throw .connectFailed("\(endpoint): \(error)")
        }
        let loop = group.next()
        let connectDeadline = min(deadline, monotonicNanoseconds() + configuration.connectTimeout.nanoseconds)
        let connection = ClientConnection(
            transport: transport, loop: loop, idleTimeout: configuration.idleTimeout.nanoseconds)
        let result: Result<Void, HTTPClientError> = await withCheckedContinuation { continuation in
            loop.execute {
                connection.start(deadline: connectDeadline) { continuation.resume(returning: $0) }
            }
        }
        try result.get()
        pool.opened.wrappingAdd(1, ordering: .relaxed)
        return connection
    }

    /// Closes idle connections and stops the client's loops. In-flight requests fail.
    package func shutdown() {
        resolver.shutdown()
        pool.shutdown()
        for loop in group.loops {
            loop.execute {
                for case let connection as ClientConnection in loop.registeredHandlers {
                    connection.fail(.shutDown)
                }
            }
        }
        group.shutdown()
    }

    static func serialize(_ request: HTTPClientRequest, into wire: inout [UInt8]) {
        wire.reserveCapacity(256 + request.body.count)
        wire.append(contentsOf: request.method.rawValue.utf8)
        wire.append(ASCII.space)
        wire.append(contentsOf: request.target.utf8)
        wire.append(contentsOf: " HTTP/1.1\r\nhost: ".utf8)
        wire.append(contentsOf: request.endpoint.hostHeader.utf8)
        for (name, value) in request.headers where name != "host" && name != "content-length" {
            wire.append(contentsOf: "\r\n".utf8)
            wire.append(contentsOf: name.utf8)
            wire.append(contentsOf: ": ".utf8)
            wire.append(contentsOf: value.utf8)
        }
        if !request.body.isEmpty || request.method == .post || request.method == .put {
            wire.append(contentsOf: "\r\ncontent-length: ".utf8)
            HTTPResponseWriter.appendDecimal(request.body.count, to: &wire)
        }
        wire.append(contentsOf: "\r\n\r\n".utf8)
        wire.append(contentsOf: request.body)
    }
}

/// Idle connections per endpoint, the count of open ones, and requests waiting for one.
final class ConnectionPool: Sendable {
    private struct EndpointState {
        var idle: [ClientConnection] = []
        var open = 0
        var waiters: [CheckedContinuation<Result<ClientConnection?, HTTPClientError>, Never>] = []
    }

    private struct State: @unchecked Sendable {
        var endpoints: [HTTPEndpoint: EndpointState] = [:]
        var isShutDown = false
    }

    private let state = Mutex(State())
    private let maxPerEndpoint: Int
    let opened = Atomic<Int>(0)
    let reused = Atomic<Int>(0)

    init(maxPerEndpoint: Int) {
        self.maxPerEndpoint = maxPerEndpoint
    }

    /// An idle connection to reuse, nil when the caller should open a new one (its slot is
    /// reserved), or a failure. Waits while the endpoint is at its cap.
    func acquire(_ endpoint: HTTPEndpoint, deadline: UInt64) async -> Result<ClientConnection?, HTTPClientError> {
        await withCheckedContinuation { continuation in
            let immediate: Result<ClientConnection?, HTTPClientError>? = state.withLock { state in
                if state.isShutDown { return .failure(.shutDown) }
                var entry = state.endpoints[endpoint, default: EndpointState()]
                defer { state.endpoints[endpoint] = entry }
                while let connection = entry.idle.popLast() {
                    if connection.isReusable {
                        reused.wrappingAdd(1, ordering: .relaxed)
                        return .success(connection)
                    }
                    entry.open -= 1
                    connection.discard()
                }
                if entry.open < maxPerEndpoint {
                    entry.open += 1
                    return .success(nil)
                }
                entry.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Returns a connection after a request: to a waiter, to the idle list, or (nil) closed.
    func release(_ endpoint: HTTPEndpoint, connection: ClientConnection?) {
        let waiter: (CheckedContinuation<Result<ClientConnection?, HTTPClientError>, Never>, ClientConnection?)? =
            state.withLock { state in
                var entry = state.endpoints[endpoint, default: EndpointState()]
                defer { state.endpoints[endpoint] = entry }
                if !entry.waiters.isEmpty {
                    let next = entry.waiters.removeFirst()
                    if let connection { reused.wrappingAdd(1, ordering: .relaxed) }
                    // Without a connection to hand over, the waiter inherits the freed slot.
                    return (next, connection)
                }
                if let connection, !state.isShutDown {
                    entry.idle.append(connection)
                } else {
                    entry.open -= 1
                    connection?.discard()
                }
                return nil
            }
        if let (continuation, connection) = waiter { continuation.resume(returning: .success(connection)) }
    }

    func shutdown() {
        let (idle, waiters) = state.withLock { state in
            state.isShutDown = true
            let idle = state.endpoints.values.flatMap(\.idle)
            let waiters = state.endpoints.values.flatMap(\.waiters)
            state.endpoints = [:]
            return (idle, waiters)
        }
        for connection in idle { connection.discard() }
        for waiter in waiters { waiter.resume(returning: .failure(.shutDown)) }
    }
}
