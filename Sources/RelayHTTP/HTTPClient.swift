import FoundationEssentials
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

    /// The host and port, as a name is resolved and its addresses remembered.
    var hostAndPort: HostAndPort { HostAndPort(host: host, port: port) }

    package var description: String {
        (isTLS ? "https://" : "http://") + hostAndPort.description
    }

    /// Appends the value of the `Host` header: an IPv6 address in brackets, the port unless it
    /// is the scheme's. By byte: built as a String it cost every upstream request a string
    /// search by Character and an interpolation.
    func appendHostHeader(to wire: inout [UInt8]) {
        let isIPv6 = host.utf8.contains(UInt8(ascii: ":"))
        if isIPv6 { wire.append(UInt8(ascii: "[")) }
        wire.append(contentsOf: host.utf8)
        if isIPv6 { wire.append(UInt8(ascii: "]")) }
        if port != (isTLS ? 443 : 80) {
            wire.append(UInt8(ascii: ":"))
            HTTPResponseWriter.appendDecimal(port, to: &wire)
        }
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

/// A pooled HTTP/1.1 client on event loops: each loop has its own pool of keep-alive
/// connections (touched only on that loop, so no lock), and a request started on a loop —
/// the loop that is serving a webhook, say — is written, read and completed there, with no
/// thread crossing once a connection is warm. Names are resolved off the loops.
package final class HTTPClient: Sendable {
    package struct Configuration: Sendable {
        /// How long one address may take to connect.
        package var connectTimeout: Duration
        /// How long a name's address may leave its TCP connect unanswered before the next
        /// address is tried beside it (RFC 8305's Connection Attempt Delay).
        package var connectAttemptDelay: Duration
        /// Default for requests that do not pass their own.
        package var requestTimeout: Duration
        /// Open connections per endpoint, over all loops; further requests wait for one.
        package var maxConnectionsPerEndpoint: Int
        /// Idle pooled connections are closed after this.
        package var idleTimeout: Duration
        /// Loop threads for a client that makes its own group (no group given).
        package var loopCount: Int
        /// Told, on the loop, when a new connection went to another of a name's addresses than
        /// the first it tried (from then on the one that answered is tried first).
        package var onAddressPassedOver: (@Sendable (AddressPassedOver) -> Void)?

        package init(
            connectTimeout: Duration = .seconds(5), requestTimeout: Duration = .seconds(30),
            maxConnectionsPerEndpoint: Int = 64, idleTimeout: Duration = .seconds(30), loopCount: Int = 1,
            connectAttemptDelay: Duration = .milliseconds(250)
        ) {
            self.connectTimeout = connectTimeout
            self.connectAttemptDelay = connectAttemptDelay
            self.requestTimeout = requestTimeout
            self.maxConnectionsPerEndpoint = maxConnectionsPerEndpoint
            self.idleTimeout = idleTimeout
            self.loopCount = loopCount
        }
    }

    /// A new connection to a name that went to another of its addresses than the first it
    /// tried: that one refused, failed, or left the connect unanswered.
    package struct AddressPassedOver: Sendable, Equatable {
        /// The name and port, as the URL gave them.
        package var endpoint: String
        /// Each address tried before the one that answered, with what became of it.
        package var passedOver: [String]
        package var answered: String

        package init(endpoint: String, passedOver: [String], answered: String) {
            self.endpoint = endpoint
            self.passedOver = passedOver
            self.answered = answered
        }
    }

    package let configuration: Configuration
    /// The loops the client runs on (the server's, when it shares them).
    package let group: EventLoopGroup
    private let ownsGroup: Bool
    private let pools: [LoopBound<LoopPool>]
    private let plain: any TransportFactory
    private let tls: (any TransportFactory)?
    private let resolver: Resolver
    private let opened = Atomic<Int>(0)
    private let reused = Atomic<Int>(0)

    /// A client on `group`'s loops (or on loops of its own); `tls` makes the transports for
    /// `https://` endpoints (nil: https is refused).
    package convenience init(configuration: Configuration = Configuration(), group: EventLoopGroup? = nil, tls: (any TransportFactory)? = nil) throws {
        try self.init(configuration: configuration, group: group, tls: tls, resolver: Resolver())
    }

    /// The same, with `resolver` finding the addresses of names (a test's gives names addresses of its own).
    init(configuration: Configuration, group: EventLoopGroup?, tls: (any TransportFactory)?, resolver: Resolver) throws {
        self.configuration = configuration
        self.resolver = resolver
        if let group {
            self.group = group
            ownsGroup = false
        } else {
            self.group = try EventLoopGroup(count: configuration.loopCount, name: "happyrelay-client")
            ownsGroup = true
        }
        let perLoop = max(1, (configuration.maxConnectionsPerEndpoint + self.group.loops.count - 1) / self.group.loops.count)
        pools = self.group.loops.map { LoopBound(value: LoopPool(loop: $0, maxPerEndpoint: perLoop)) }
        plain = PlainTransportFactory()
        self.tls = tls
    }

    /// Connections opened so far and requests sent on a reused connection (for metrics).
    package var statistics: (opened: Int, reused: Int) {
        (opened.load(ordering: .relaxed), reused.load(ordering: .relaxed))
    }

    /// Sends a request from any thread and waits for the complete response.
    package func execute(_ request: HTTPClientRequest, timeout: Duration? = nil) async throws(HTTPClientError) -> HTTPClientResponse {
        let loop = group.next()
        let deadline = monotonicNanoseconds() + (timeout ?? configuration.requestTimeout).nanoseconds
        let box = LoopBound(value: request)
        let result: Result<HTTPClientResponse, HTTPClientError> = await withCheckedContinuation { continuation in
            loop.execute { [self] in
                execute(box.value, on: loop, deadline: deadline) { continuation.resume(returning: $0) }
            }
        }
        return try result.get()
    }

    /// Sends a request on `loop`, which must be the calling thread's; `completion` runs on it.
    package func execute(
        _ request: HTTPClientRequest, on loop: EventLoop, deadline: UInt64,
        completion: @escaping (Result<HTTPClientResponse, HTTPClientError>) -> Void
    ) {
        let factory: any TransportFactory
        do {
            factory = try transportFactory(for: request.endpoint)
        } catch {
            completion(.failure(error))
            return
        }
        var wire: [UInt8] = []
        Self.serialize(request, into: &wire)
        let exchange = Exchange(
            endpoint: request.endpoint, wire: wire, isHead: request.method == .head, deadline: deadline, factory: factory,
            completion: completion)
        pool(of: loop).acquire(exchange, client: self)
    }

    private func pool(of loop: EventLoop) -> LoopPool {
        let index = group.loops.firstIndex { $0 === loop } ?? 0
        return pools[index].value
    }

    /// Plain TCP, or TLS for an `https` endpoint.
    func transportFactory(for endpoint: HTTPEndpoint) throws(HTTPClientError) -> any TransportFactory {
        guard endpoint.isTLS else { return plain }
        guard let tls else { throw .invalidURL("\(endpoint): https is not configured") }
        return tls
    }

    /// One request on its way: what to write, until when, and whom to tell.
    final class Exchange {
        let endpoint: HTTPEndpoint
        let wire: [UInt8]
        let isHead: Bool
        let deadline: UInt64
        let factory: any TransportFactory
        let completion: (Result<HTTPClientResponse, HTTPClientError>) -> Void
        /// A pooled connection may have been closed by the server just as it was taken; such a
        /// request never reached the server, so it is sent once more on a fresh connection.
        var mayRetry = true

        init(
            endpoint: HTTPEndpoint, wire: [UInt8], isHead: Bool, deadline: UInt64, factory: any TransportFactory,
            completion: @escaping (Result<HTTPClientResponse, HTTPClientError>) -> Void
        ) {
            self.endpoint = endpoint
            self.wire = wire
            self.isHead = isHead
            self.deadline = deadline
            self.factory = factory
            self.completion = completion
        }
    }

    /// Writes the exchange on a connection of `pool`'s loop and hands the connection back.
    fileprivate func run(_ exchange: Exchange, on connection: ClientConnection, isReused: Bool, pool: LoopPool) {
        if isReused { reused.wrappingAdd(1, ordering: .relaxed) }
        connection.send(exchange.wire, isHead: exchange.isHead, deadline: exchange.deadline) { [self] result in
            switch result {
            case .success(let response):
                pool.release(exchange.endpoint, connection: response.keepAlive ? connection : nil, client: self)
                exchange.completion(.success(HTTPClientResponse(status: response.status, headers: response.headers, body: response.body)))
            case .failure(let error):
                pool.release(exchange.endpoint, connection: nil, client: self)
                if isReused && exchange.mayRetry && error == .connectionClosed(ClientConnection.closedBeforeUse) {
                    exchange.mayRetry = false
                    pool.acquire(exchange, client: self)
                    return
                }
                exchange.completion(.failure(error))
            }
        }
    }

    /// Opens a connection for the exchange on the pool's loop (its slot is reserved).
    fileprivate func open(_ exchange: Exchange, pool: LoopPool) {
        let loop = pool.loop
        let target = exchange.endpoint.hostAndPort
        if let numeric = SocketAddress.numeric(target) {
            connect(exchange, addresses: [numeric], pool: pool)
            return
        }
        let box = LoopBound(value: (exchange, pool))
        resolver.resolve(target) { [self] addresses in
            loop.execute { [self] in
                let (exchange, pool) = box.value
                switch addresses {
                case .success(let list): connect(exchange, addresses: list, pool: pool)
                case .failure:
                    pool.release(exchange.endpoint, connection: nil, client: self)
                    exchange.completion(.failure(.connectFailed("\(exchange.endpoint.host): cannot resolve")))
                }
            }
        }
    }

    /// Runs the exchange on the first of `addresses` that connects, on the pool's loop.
    private func connect(_ exchange: Exchange, addresses: [SocketAddress], pool: LoopPool) {
        connectFirst(of: addresses, to: exchange.endpoint, factory: exchange.factory, on: pool.loop, deadline: exchange.deadline) {
            [self] result in
            switch result {
            case .success(let connection):
                run(exchange, on: connection, isReused: false, pool: pool)
            case .failure(let error):
                pool.release(exchange.endpoint, connection: nil, client: self)
                exchange.completion(.failure(error))
            }
        }
    }

    /// Connects to the first of `addresses` to answer (RFC 8305, "Happy Eyeballs"), on `loop`
    /// (called on it): an attempt at the first address, and one at the next beside those
    /// running whenever the last begun has left its TCP connect unanswered for
    /// `connectAttemptDelay`, or at once when an attempt fails. The first to connect and finish
    /// its handshake wins, and the others are closed. No attempt begins after a failure past the
    /// deadline; the race fails when none is left running. `completion` runs once, on the loop.
    /// A name's resolver learns which address answered and which failed, for its next connect.
    private func connectFirst(
        of addresses: [SocketAddress], to endpoint: HTTPEndpoint, factory: any TransportFactory, on loop: EventLoop, deadline: UInt64,
        completion: @escaping (Result<ClientConnection, HTTPClientError>) -> Void
    ) {
        let race = ConnectRace(
            addresses: addresses, target: ConnectRace.Target(endpoint: endpoint, factory: factory, loop: loop, deadline: deadline), completion: completion)
        startAttempt(in: race)
    }

    /// Begins the race's next attempt, if an address is left; ends the race in failure when
    /// none is left and no attempt runs.
    private func startAttempt(in race: ConnectRace) {
        guard !race.isFinished else { return }
        let target = race.target
        guard race.next < race.addresses.count, race.lastFailure == nil || monotonicNanoseconds() < target.deadline else {
            if race.running.isEmpty { race.finish(.failure(race.lastFailure ?? .connectFailed("\(target.endpoint.host): no address"))) }
            return
        }
        let index = race.next
        race.next += 1
        let address = race.addresses[index]
        // One address has no order to learn (a number, or a name with one address).
        let name = race.addresses.count > 1 ? target.endpoint.hostAndPort : nil
        let connection: ClientConnection
        switch makeConnection(to: target.endpoint, address: address, factory: target.factory, on: target.loop) {
        case .success(let made): connection = made
        case .failure(let error):
            if let name { resolver.noteFailed(address, for: name) }
            race.noteFailure(error, at: index)
            startAttempt(in: race)
            return
        }
        let now = monotonicNanoseconds()
        race.running[index] = (connection, startedAt: now)
        connection.start(
            deadline: min(target.deadline, now + configuration.connectTimeout.nanoseconds),
            slowAt: now + configuration.connectAttemptDelay.nanoseconds,
            onSlow: { [self] in startAttempt(in: race) }
        ) { [self] result in
            race.running[index] = nil
            // Ended after the race was decided: it lost, and says nothing of its address.
            guard !race.isFinished else { return }
            switch result {
            case .success:
                opened.wrappingAdd(1, ordering: .relaxed)
                if let name { resolver.noteAnswered(address, for: name) }
                if index > 0, let report = configuration.onAddressPassedOver { report(race.passedOver(before: index)) }
                race.finish(.success(connection))
            case .failure(let error):
                if let name { resolver.noteFailed(address, for: name) }
                race.noteFailure(error, at: index)
                startAttempt(in: race)
            }
        }
    }

    /// A connection to `address`, its socket connecting (not yet started on `loop`).
    private func makeConnection(
        to endpoint: HTTPEndpoint, address: SocketAddress, factory: any TransportFactory, on loop: EventLoop
    ) -> Result<ClientConnection, HTTPClientError> {
        let fd: Int32
        do {
            fd = try SocketFactory.connect(to: address)
        } catch {
            return .failure(.connectFailed("\(endpoint): \(error)"))
        }
        let transport: any Transport
        do {
            transport = try factory.makeTransport(fd: fd, host: endpoint.host)
        } catch {
            Syscall.close(fd)
            return .failure(.connectFailed("\(endpoint): \(error)"))
        }
        return .success(ClientConnection(transport: transport, loop: loop, idleTimeout: configuration.idleTimeout.nanoseconds))
    }

    /// Connects, from any thread, the way requests do (`connectFirst`): to the first of
    /// `addresses` that answers before the deadline.
    func connect(to endpoint: HTTPEndpoint, trying addresses: [SocketAddress], factory: any TransportFactory, deadline: UInt64)
        async throws(HTTPClientError) -> ClientConnection
    {
        let loop = group.next()
        let box = LoopBound(value: (addresses, factory))
        let result: Result<ClientConnection, HTTPClientError> = await withCheckedContinuation { continuation in
            loop.execute { [self] in
                connectFirst(of: box.value.0, to: endpoint, factory: box.value.1, on: loop, deadline: deadline) { continuation.resume(returning: $0) }
            }
        }
        return try result.get()
    }

    /// Closes idle connections and fails waiting requests; stops the loops when the client
    /// made them. Requests in flight on a shared group fail when their connections close.
    package func shutdown() {
        resolver.shutdown()
        for pool in pools {
            pool.value.loop.execute { pool.value.shutdown() }
        }
        if ownsGroup {
            for loop in group.loops {
                loop.execute {
                    for case let connection as ClientConnection in loop.registeredHandlers {
                        connection.fail(.shutDown)
                    }
                }
            }
            group.shutdown()
        }
    }

    static func serialize(_ request: HTTPClientRequest, into wire: inout [UInt8]) {
        wire.reserveCapacity(256 + request.body.count)
        wire.append(contentsOf: request.method.rawValue.utf8)
        wire.append(ASCII.space)
        wire.append(contentsOf: request.target.utf8)
        wire.append(contentsOf: " HTTP/1.1\r\nhost: ".utf8)
        request.endpoint.appendHostHeader(to: &wire)
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

/// One loop's idle connections per endpoint, the count of open ones, and the requests waiting
/// for one. Touched only on its loop.
final class LoopPool {
    private struct EndpointState {
        var idle: [ClientConnection] = []
        var open = 0
        var waiters: [HTTPClient.Exchange] = []
    }

    let loop: EventLoop
    private let maxPerEndpoint: Int
    private var endpoints: [HTTPEndpoint: EndpointState] = [:]
    private var isShutDown = false

    init(loop: EventLoop, maxPerEndpoint: Int) {
        self.loop = loop
        self.maxPerEndpoint = maxPerEndpoint
    }

    /// What `acquire` or `release` does once the endpoint's state is changed.
    private enum Next {
        case run(HTTPClient.Exchange, on: ClientConnection)
        case open(HTTPClient.Exchange)
        case nothing
    }

    /// Changes an endpoint's state in place: a copy of it (`var entry = endpoints[…]`, then
    /// storing it back) copied the idle list on every acquire and release. What it decides is
    /// done after, outside the access: running an exchange may call back into the pool.
    private func update(_ endpoint: HTTPEndpoint, _ body: (inout EndpointState) -> Next, client: HTTPClient) {
        switch body(&endpoints[endpoint, default: EndpointState()]) {
        case .run(let exchange, let connection): client.run(exchange, on: connection, isReused: true, pool: self)
        case .open(let exchange): client.open(exchange, pool: self)
        case .nothing: break
        }
    }

    /// Runs the exchange on an idle connection, opens one when under the cap, or queues it.
    func acquire(_ exchange: HTTPClient.Exchange, client: HTTPClient) {
        if isShutDown {
            exchange.completion(.failure(.shutDown))
            return
        }
        update(exchange.endpoint, { [maxPerEndpoint] entry in
            while let connection = entry.idle.popLast() {
                if connection.isReusable { return .run(exchange, on: connection) }
                entry.open -= 1
                connection.discard()
            }
            if entry.open < maxPerEndpoint {
                entry.open += 1
                return .open(exchange)
            }
            entry.waiters.append(exchange)
            return .nothing
        }, client: client)
    }

    /// Takes a connection back after an exchange (nil: it is closed and its slot freed), and
    /// hands it, or its slot, to the next waiter.
    func release(_ endpoint: HTTPEndpoint, connection released: ClientConnection?, client: HTTPClient) {
        let isShutDown = isShutDown
        // One that closed meanwhile (a TLS session ended right behind its answer) frees its slot.
        let connection = released?.isReusable == true ? released : nil
        update(endpoint, { entry in
            if !entry.waiters.isEmpty {
                let next = entry.waiters.removeFirst()
                // Without a connection the waiter inherits the freed slot.
                return connection.map { .run(next, on: $0) } ?? .open(next)
            }
            if let connection, !isShutDown {
                entry.idle.append(connection)
            } else {
                entry.open -= 1
                connection?.discard()
            }
            return .nothing
        }, client: client)
    }

    func shutdown() {
        isShutDown = true
        let states = endpoints
        endpoints = [:]
        for state in states.values {
            for connection in state.idle { connection.discard() }
            for waiter in state.waiters { waiter.completion(.failure(.shutDown)) }
        }
    }
}

/// One connect through a name's addresses (`HTTPClient.connectFirst`); touched on its loop only.
private final class ConnectRace {
    /// Where the attempts go, on which loop, and until when.
    struct Target {
        let endpoint: HTTPEndpoint
        let factory: any TransportFactory
        let loop: EventLoop
        let deadline: UInt64
    }

    let addresses: [SocketAddress]
    let target: Target
    /// The index of the next address to try.
    var next = 0
    /// Attempts begun and not ended, and when each began, by their address's index.
    var running: [Int: (connection: ClientConnection, startedAt: UInt64)] = [:]
    private(set) var lastFailure: HTTPClientError?
    /// Why each failed attempt failed, by its address's index.
    private var failures: [Int: HTTPClientError] = [:]
    private var completion: ((Result<ClientConnection, HTTPClientError>) -> Void)?

    init(addresses: [SocketAddress], target: Target, completion: @escaping (Result<ClientConnection, HTTPClientError>) -> Void) {
        self.addresses = addresses
        self.target = target
        self.completion = completion
    }

    var isFinished: Bool { completion == nil }

    func noteFailure(_ error: HTTPClientError, at index: Int) {
        lastFailure = error
        failures[index] = error
    }

    /// The addresses tried before the one at `index` answered, and what became of each: each
    /// failed, or is still connecting.
    func passedOver(before index: Int) -> HTTPClient.AddressPassedOver {
        let now = monotonicNanoseconds()
        return HTTPClient.AddressPassedOver(
            endpoint: target.endpoint.hostAndPort.description,
            passedOver: addresses[..<index].indices.map { tried in
                let fate = failures[tried].map { "\($0)" } ?? "no answer in \((now - (running[tried]?.startedAt ?? now)) / 1_000_000) ms"
                return "\(addresses[tried].text): \(fate)"
            },
            answered: addresses[index].text)
    }

    /// Ends the race: the attempts still running lost and are closed; the completion runs.
    func finish(_ result: Result<ClientConnection, HTTPClientError>) {
        guard let completion else { return }
        self.completion = nil
        let losers = running.values.map(\.connection)
        running = [:]
        for loser in losers { loser.fail(.connectFailed("\(target.endpoint): another address answered first")) }
        completion(result)
    }
}
