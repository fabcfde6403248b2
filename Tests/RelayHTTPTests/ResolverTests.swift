import Glibc
import Testing

@testable import RelayHTTP

/// Names are resolved off the event loops and the cooperative pool, and every address is
/// tried in turn.
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
        let client = try HTTPClient(configuration: .init(idleTimeout: .seconds(600)))
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
        await #expect(throws: HTTPClientError.self) {
            _ = try await client.connect(
                to: endpoint, trying: [addresses[0]], factory: try client.transportFactory(for: endpoint),
                deadline: monotonicNanoseconds() + 5_000_000_000)
        }
        client.shutdown()
        await server.shutdown()
    }
}
