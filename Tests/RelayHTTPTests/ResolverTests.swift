import Glibc
import Synchronization
import Testing

@testable import RelayHTTP

/// Names are resolved off the event loops and the cooperative pool, every address is tried in
/// turn, and the one that answered is tried first next time.
@Suite struct ResolverTests {
    @Test func numericAddressesNeedNoLookupAndNamesAreResolved() async throws {
        let resolver = Resolver()
        let numeric = try await resolver.resolve(HostAndPort(host: "127.0.0.1", port: 8443))
        #expect(numeric.count == 1 && numeric[0].port == 8443)
        #expect(try await resolver.resolve(HostAndPort(host: "::1", port: 80)).first?.family == AF_INET6)
        let named = try await resolver.resolve(HostAndPort(host: "localhost", port: 9))
        #expect(!named.isEmpty && named.allSatisfy { $0.port == 9 })
        await #expect(throws: SystemError.self) { _ = try await resolver.resolve(HostAndPort(host: "no-such-host.invalid", port: 80)) }
        resolver.shutdown()
        await #expect(throws: SystemError.self) { _ = try await resolver.resolve(HostAndPort(host: "localhost", port: 9)) }
    }

    @Test func theClientTriesEveryAddressUntilOneAnswers() async throws {
        var router = Router()
        router.add(.get, "/x", .immediate { _ in .json(.ok, "{}") })
        // Header and idle timeouts longer than any test run: under a loaded full suite this
        // task may resume many seconds after the connection opened, and a server that had
        // closed the silent connection by then (10 s by default), or a client that had retired
        // it as idle (30 s), would fail the check below for nothing.
        let server = try HTTPServer(
            configuration: .init(address: HostAndPort(host: "127.0.0.1", port: 0), headerTimeout: .seconds(600), loopCount: 1), router: router)
        let passedOver = PassedOverRecorder()
        let client = try HTTPClient(configuration: passedOver.watching(.init(idleTimeout: .seconds(600))))
        let endpoint = HTTPEndpoint(isTLS: false, host: "relay.test", port: server.port)
        // Nothing listens on 127.0.0.2: the first address is refused, the second answers.
        let addresses = [
            try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.2", port: server.port))),
            try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.1", port: server.port))),
        ]
        let connection = try await client.connect(
            to: endpoint, trying: addresses, factory: try client.transportFactory(for: endpoint), deadline: monotonicNanoseconds() + 5_000_000_000)
        #expect(connection.isReusable)
        connection.discard()
        #expect(
            passedOver.events == [
                HTTPClient.AddressPassedOver(
                    endpoint: "relay.test:\(server.port)",
                    passedOver: ["127.0.0.2:\(server.port): cannot connect: Connection refused"],
                    answered: "127.0.0.1:\(server.port)")
            ])
        await #expect(throws: HTTPClientError.self) {
            _ = try await client.connect(
                to: endpoint, trying: [addresses[0]], factory: try client.transportFactory(for: endpoint),
                deadline: monotonicNanoseconds() + 5_000_000_000)
        }
        client.shutdown()
        await server.shutdown()
    }

    @Test func theAddressThatLastAnsweredComesFirstUntilItFails() async throws {
        let target = HostAndPort(host: "relay.test", port: 8080)
        let a = try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.2", port: 8080)))
        let b = try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.1", port: 8080)))
        // One family: the order is the system's, but for the address that answered.
        let c = try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.3", port: 8080)))
        #expect(a != b && b == SocketAddress.numeric(HostAndPort(host: "127.0.0.1", port: 8080)))
        #expect(b != SocketAddress.numeric(HostAndPort(host: "127.0.0.1", port: 8081)))
        // A cached answer, and (time to live zero) a fresh lookup every time.
        for timeToLive in [Duration.seconds(60), .zero] {
            let resolver = Resolver(timeToLive: timeToLive) { _ throws(SystemError) in [a, b, c] }
            defer { resolver.shutdown() }
            #expect(try await resolver.resolve(target) == [a, b, c])
            resolver.noteAnswered(b, for: target)
            #expect(try await resolver.resolve(target) == [b, a, c])
            #expect(try await resolver.resolve(HostAndPort(host: "relay.test", port: 8081)) == [a, b, c], "another port is another target")
            resolver.noteFailed(a, for: target)
            #expect(try await resolver.resolve(target) == [b, a, c], "a failure of another address changes nothing")
            resolver.noteFailed(b, for: target)
            #expect(try await resolver.resolve(target) == [a, b, c])
            resolver.noteAnswered(try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.9", port: 8080))), for: target)
            #expect(try await resolver.resolve(target) == [a, b, c], "an address the name no longer has is not given")
        }
    }

    /// The families take turns after the first address (RFC 8305): a family whose addresses
    /// are all silent holds the other back by one attempt delay, not one per address.
    @Test func theAddressFamiliesTakeTurns() async throws {
        func address(_ host: String) throws -> SocketAddress { try #require(SocketAddress.numeric(HostAndPort(host: host, port: 443))) }
        let v6 = try ["2001:db8::1", "2001:db8::2", "2001:db8::3"].map(address)
        let v4 = try ["192.0.2.1", "192.0.2.2"].map(address)
        #expect(v6[0].text == "[2001:db8::1]:443" && v4[1].text == "192.0.2.2:443")
        let target = HostAndPort(host: "happytalk.test", port: 443)
        let resolver = Resolver { _ throws(SystemError) in v6 + v4 }
        defer { resolver.shutdown() }
        #expect(try await resolver.resolve(target) == [v6[0], v4[0], v6[1], v4[1], v6[2]])
        // The address that answered leads, and its family takes the first turn.
        resolver.noteAnswered(v4[1], for: target)
        #expect(try await resolver.resolve(target) == [v4[1], v6[0], v4[0], v6[1], v6[2]])
    }

    /// A name whose first address drops the connect (nothing answers, nothing refuses): the
    /// first request waits out the connect timeout there and is answered by the second address;
    /// the next new connection goes to the second address first. Judged by the client's own
    /// deadlines, on its loop, not by the test's clock (a test task may wait seconds for a
    /// thread while the whole suite runs).
    @Test func aNewConnectionGoesFirstToTheAddressThatAnswered() async throws {
        let server = try answeringServer()
        let silentListener = try SilentListener(host: "127.0.0.2", port: server.port)
        defer { silentListener.close() }
        let silent = try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.2", port: server.port)))
        let answering = try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.1", port: server.port)))
        // No second attempt beside the first (see the next test): one address after the other.
        let passedOver = PassedOverRecorder()
        let client = try HTTPClient(
            configuration: passedOver.watching(.init(connectTimeout: .seconds(4), connectAttemptDelay: .seconds(600))), group: nil, tls: nil,
            resolver: Resolver { target throws(SystemError) in target.host == "silent.test" ? [silent] : [silent, answering] })
        func request(_ host: String) -> HTTPClientRequest {
            var request = HTTPClientRequest(method: .get, endpoint: HTTPEndpoint(isTLS: false, host: host, port: server.port), target: "/x")
            // Each request on a connection of its own.
            request.headers.add(name: "Connection", value: "close")
            return request
        }
        // The silent address holds a connect until its deadline (a refusing one would fail at once).
        await #expect(throws: HTTPClientError.connectTimedOut) { _ = try await client.execute(request("silent.test"), timeout: .milliseconds(300)) }
        #expect(try await client.execute(request("relay.test")).status == 200)
        // Within less than the connect timeout: a connect to the silent address first would
        // use all of it and fail.
        #expect(try await client.execute(request("relay.test"), timeout: .seconds(3)).status == 200)
        #expect(client.statistics.opened == 2)
        // Told once: the second connection went to the address that answered first.
        #expect(passedOver.events.map(\.passedOver) == [["127.0.0.2:\(server.port): connect timed out"]])
        client.shutdown()
        await server.shutdown()
    }

    /// Happy Eyeballs (RFC 8305): an address that leaves the connect unanswered for the
    /// attempt delay gets the next address tried beside it, which answers long before the
    /// connect timeout, and the attempt that lost is closed. When every address is silent the
    /// connect fails at the deadline.
    @Test func theNextAddressIsTriedBesideASilentOneAfterTheAttemptDelay() async throws {
        let server = try answeringServer()
        let firstListener = try SilentListener(host: "127.0.0.2", port: server.port)
        defer { firstListener.close() }
        let secondListener = try SilentListener(host: "127.0.0.3", port: server.port)
        defer { secondListener.close() }
        let silent = try ["127.0.0.2", "127.0.0.3"].map { try #require(SocketAddress.numeric(HostAndPort(host: $0, port: server.port))) }
        let answering = try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.1", port: server.port)))
        let passedOver = PassedOverRecorder()
        let client = try HTTPClient(
            configuration: passedOver.watching(.init(connectTimeout: .seconds(600))), group: nil, tls: nil,
            resolver: Resolver { target throws(SystemError) in target.host == "silent.test" ? silent : [silent[0], answering] })
        defer { client.shutdown() }
        let endpoint = HTTPEndpoint(isTLS: false, host: "relay.test", port: server.port)
        var silentOnly = HTTPClientRequest(method: .get, endpoint: endpoint, target: "/x")
        silentOnly.endpoint.host = "silent.test"
        await #expect(throws: HTTPClientError.connectTimedOut) { _ = try await client.execute(silentOnly, timeout: .milliseconds(800)) }
        // Within a request timeout far below the connect timeout: one address after the other
        // would spend all of it on the first.
        #expect(try await client.execute(HTTPClientRequest(method: .get, endpoint: endpoint, target: "/x"), timeout: .seconds(5)).status == 200)
        #expect(client.statistics.opened == 1)
        let event = try #require(passedOver.events.first)
        #expect(passedOver.events.count == 1)
        #expect(event.endpoint == "relay.test:\(server.port)" && event.answered == "127.0.0.1:\(server.port)")
        #expect(event.passedOver.count == 1 && event.passedOver[0].hasPrefix("127.0.0.2:\(server.port): no answer in "), "\(event.passedOver)")
        // At least the attempt delay: the next address was begun only after it.
        let waited = event.passedOver.first.flatMap { Int($0.split(separator: " ").dropLast().last ?? "") }
        #expect(waited.map { $0 >= 250 } == true, "\(event.passedOver)")
        // The attempt that lost was closed: with room made for it, its SYN, sent again a second
        // after the first, would now be answered.
        firstListener.makeRoom()
        #expect(!firstListener.receivesConnection(within: 2_500), "the attempt that lost the race is still connecting")
        await server.shutdown()
    }
}

/// What a client reports of the addresses it passed over.
private final class PassedOverRecorder: Sendable {
    private let recorded = Mutex<[HTTPClient.AddressPassedOver]>([])

    var events: [HTTPClient.AddressPassedOver] { recorded.withLock { $0 } }

    func watching(_ configuration: HTTPClient.Configuration) -> HTTPClient.Configuration {
        var configuration = configuration
        configuration.onAddressPassedOver = { [self] event in recorded.withLock { $0.append(event) } }
        return configuration
    }
}

/// A server on 127.0.0.1 that answers `GET /x` with 200.
private func answeringServer() throws -> HTTPServer {
    var router = Router()
    router.add(.get, "/x", .immediate { _ in .json(.ok, "{}") })
    return try HTTPServer(configuration: .init(address: HostAndPort(host: "127.0.0.1", port: 0), loopCount: 1), router: router)
}

/// A listening socket whose accept queue is full: further connects to it get no answer at all
/// (Linux drops their SYNs), as an address behind a firewall that drops packets.
private final class SilentListener {
    private let listener: Int32
    private var filler: Int32

    init(host: String, port: Int) throws {
        // A backlog of 0 holds one connection; the filler takes it and is not accepted.
        listener = try SocketFactory.listen(on: HostAndPort(host: host, port: port), backlog: 0).fd
        filler = try SocketFactory.connect(to: try #require(SocketAddress.numeric(HostAndPort(host: host, port: port))))
        var connected = pollfd(fd: filler, events: Int16(POLLOUT), revents: 0)
        guard poll(&connected, 1, 5_000) == 1, SocketFactory.pendingError(filler) == 0 else { throw SystemError(code: ETIMEDOUT, call: "connect") }
    }

    /// Accepts the filler: the next connect that reaches the listener is answered.
    func makeRoom() {
        Glibc.close(accept(listener, nil, nil))
        Glibc.close(filler)
        filler = -1
    }

    /// Whether a connection reaches the listener within `milliseconds`.
    func receivesConnection(within milliseconds: Int32) -> Bool {
        var waiting = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        return poll(&waiting, 1, milliseconds) == 1
    }

    func close() {
        if filler >= 0 { Glibc.close(filler) }
        Glibc.close(listener)
    }
}
