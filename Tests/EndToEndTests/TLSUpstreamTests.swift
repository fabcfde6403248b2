import COpenSSL
import Foundation
import TestSupport
import Testing

@testable import RelayCore
@testable import RelayHTTP

/// The outbound client over OpenSSL: verified, host-checked, and never sending to an
/// upstream it cannot trust.
@Suite struct TLSUpstreamTests {
    @Test func idleClientConnectionsGiveTheirBuffersBack() throws {
        let factory = try TLSClientFactory()
        let modes = SSL_CTX_ctrl(factory.context, SSL_CTRL_MODE, 0, nil)
        #expect(modes & Int(SSL_MODE_RELEASE_BUFFERS) != 0)
        #expect(modes & Int(SSL_MODE_ENABLE_PARTIAL_WRITE) != 0)
    }

    func request(_ port: Int, host: String = "localhost") -> HTTPClientRequest {
        HTTPClientRequest(
            endpoint: HTTPEndpoint(isTLS: true, host: host, port: port), target: HappyTalkUpstream.path,
            body: Array(#"{"token":"t","uuid":"u","room_id":"r"}"#.utf8))
    }

    @Test func trustedUpstreamByNameAndByAddress() async throws {
        let server = try TLSTestServer(certificate: "localhost")
        let client = try HTTPClient(tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        let byName = try await client.execute(request(server.port))
        #expect(byName.status == 200)
        #expect(String(decoding: byName.body, as: UTF8.self) == #"{"result":"success"}"#)
        let byAddress = try await client.execute(request(server.port, host: "127.0.0.1"))
        #expect(byAddress.status == 200)
        #expect(server.receivedBodies == [#"{"token":"t","uuid":"u","room_id":"r"}"#, #"{"token":"t","uuid":"u","room_id":"r"}"#])
        client.shutdown()
    }

    /// A new connection resumes the session the upstream gave on the last one to the same host
    /// (this server closes each connection after its answer): one full handshake, then
    /// resumptions, each with a session of its own; a host's session is never offered to another.
    @Test func aNewConnectionResumesTheLastSessionOfItsHost() async throws {
        let server = try TLSTestServer(certificate: "localhost")
        let factory = try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem"))
        let client = try HTTPClient(tls: factory)
        defer { client.shutdown() }
        for _ in 0..<3 {
            #expect(try await client.execute(request(server.port)).status == 200)
        }
        #expect(server.completedHandshakes == 3)
        #expect(server.resumedHandshakes == 2)
        // Counted by the client too (`happyrelay_upstream_tls_sessions_resumed_total`).
        #expect(factory.resumedSessions == 2)
        #expect(try await client.execute(request(server.port, host: "127.0.0.1")).status == 200)
        #expect(server.completedHandshakes == 4)
        #expect(server.resumedHandshakes == 2)
        #expect(server.receivedBodies.count == 4)
    }

    /// The client makes a connection's TLS transport before the address answers, and drops it
    /// when the address refuses (as `localhost`'s `::1` does where the server listens on
    /// 127.0.0.1 only, on a machine whose `/etc/hosts` names both): the host's session must
    /// stay for the address that answers, or no new connection to such a host ever resumes.
    @Test func anAddressThatRefusesLeavesTheSessionForTheNext() async throws {
        let server = try TLSTestServer(certificate: "localhost")
        let factory = try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem"))
        let client = try HTTPClient(tls: factory)
        defer { client.shutdown() }
        #expect(try await client.execute(request(server.port)).status == 200)
        #expect(factory.resumedSessions == 0)
        // The client's own way through a name's addresses. Nothing listens on 127.0.0.2: the
        // first is refused, the second answers.
        let addresses = [
            try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.2", port: server.port))),
            try #require(SocketAddress.numeric(HostAndPort(host: "127.0.0.1", port: server.port))),
        ]
        let connection = try await client.connect(
            to: HTTPEndpoint(isTLS: true, host: "localhost", port: server.port), trying: addresses, factory: factory,
            deadline: monotonicNanoseconds() + 5_000_000_000)
        connection.discard()
        // What `happyrelay_upstream_tls_sessions_resumed_total` counts.
        #expect(factory.resumedSessions == 1)
    }

    /// An upstream that ends its TLS session right behind a keep-alive answer (close_notify in
    /// the same segment, the TCP connection left open): the client read the alert ahead with the
    /// answer, and its socket will not signal it. The ended session is not pooled: each request
    /// goes on a new connection and is answered.
    @Test func aSessionEndedBehindItsAnswerIsNotReused() async throws {
        let server = try TLSTestServer(certificate: "localhost", closesBehindAnswers: true)
        let client = try HTTPClient(tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        defer { client.shutdown() }
        for _ in 0..<3 {
            let answer = try await client.execute(request(server.port))
            #expect(answer.status == 200)
        }
        #expect(server.completedHandshakes == 3)
        #expect(server.receivedBodies.count == 3)
    }

    /// The same upstream with requests waiting for its one connection: each waiter gets a new
    /// connection, not the ended session (which it would write to, fail on and retry).
    @Test func aWaiterIsNotHandedAnEndedSession() async throws {
        let server = try TLSTestServer(certificate: "localhost", closesBehindAnswers: true)
        let client = try HTTPClient(
            configuration: .init(maxConnectionsPerEndpoint: 1), tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        defer { client.shutdown() }
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<3 { group.addTask { try await client.execute(self.request(server.port)).status } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == [200, 200, 200])
        #expect(server.completedHandshakes == 3)
        #expect(client.statistics.reused == 0, "a request went out on an ended session")
    }

    /// Expects the client to refuse the server's certificate with a reason containing `reason`, sending nothing.
    func expectRefused(certificate: String, reason expected: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let server = try TLSTestServer(certificate: certificate)
        let client = try HTTPClient(tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        do {
            _ = try await client.execute(request(server.port))
            Issue.record("an untrusted upstream was accepted", sourceLocation: sourceLocation)
        } catch {
            if case .connectFailed(let reason) = error {
                #expect(expected.contains { reason.contains($0) }, "\(reason)", sourceLocation: sourceLocation)
            } else {
                Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
            }
        }
        #expect(server.receivedBodies.isEmpty, sourceLocation: sourceLocation)
        client.shutdown()
    }

    @Test func unknownCertificateAuthorityIsRefusedAndNothingIsSent() async throws {
        try await expectRefused(certificate: "unknown-ca", reason: ["certificate of localhost is not trusted"])
    }

    @Test func certificateForAnotherHostIsRefused() async throws {
        try await expectRefused(certificate: "wrong", reason: ["Hostname mismatch", "hostname mismatch"])
    }

    /// Runs the relay against a TLS server (with or without the CA file) and posts one webhook.
    func relayPost(caFile: Bool) async throws -> (response: RawConnection.Response, server: TLSTestServer, log: String) {
        let server = try TLSTestServer(certificate: "localhost")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try RelayHarness.route("/sync", verify: #"{ "scheme": "none" }"#).write(to: folder.appendingPathComponent("sync.json"), atomically: false, encoding: .utf8)
        let response = try await offPool {
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path, "--upstream", "https://localhost:\(server.port)",
                 "--data-dir", folder.appendingPathComponent("data").path]
                    + (caFile ? ["--upstream-ca-file", TLSTestServer.fixture("ca.pem")] : []),
                environment: ["HAPPYTALK_TOKEN": "tls-token"])
            let port = try relay.waitForPort()
            let connection = try RawConnection(port: port)
            try connection.send("POST /sync HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: \(RelayHarness.body.utf8.count)\r\n\r\n\(RelayHarness.body)")
            let response = try connection.readResponse()
            _ = try relay.stop()
            return Box((response, relay.log))
        }
        try? FileManager.default.removeItem(at: folder)
        return (response.value.0, server, response.value.1)
    }

    /// What an operator sees: the relay's TLS connections to HappyTalk (this server closes
    /// each after its answer) resume their sessions, and `/metrics` counts them.
    @Test func theRelayCountsResumedSessionsInItsMetrics() async throws {
        let server = try TLSTestServer(certificate: "localhost")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try RelayHarness.route("/sync", verify: #"{ "scheme": "none" }"#).write(to: folder.appendingPathComponent("sync.json"), atomically: false, encoding: .utf8)
        let metrics = try await offPool {
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path, "--upstream", "https://localhost:\(server.port)",
                 "--upstream-ca-file", TLSTestServer.fixture("ca.pem"), "--data-dir", folder.appendingPathComponent("data").path],
                environment: ["HAPPYTALK_TOKEN": "tls-token"])
            defer { _ = try? relay.stop() }
            let port = try relay.waitForPort()
            for _ in 0..<3 {
                #expect(try RawConnection.request(port: port, "POST", "/sync", body: RelayHarness.body, headers: [("Content-Type", "application/json")]).status == 200)
            }
            return Box(try RawConnection.request(port: port, "GET", "/metrics").text)
        }
        #expect(server.completedHandshakes == 3)
        #expect(server.resumedHandshakes == 2)
        #expect(metrics.value.contains("\nhappyrelay_upstream_tls_sessions_resumed_total 2\n"), "\(metrics.value)")
    }

    @Test func relaySendsOverTLSWithTheCAFile() async throws {
        let (response, server, _) = try await relayPost(caFile: true)
        #expect(response.status == 200, "\(response.text)")
        #expect(server.receivedBodies == [#"{"token":"tls-token","uuid":"u-1","room_id":"r-1"}"#])
    }

    @Test func relayWithoutTheCAFileRefusesTheUpstream() async throws {
        let (response, server, log) = try await relayPost(caFile: false)
        #expect(response.status == 502)
        // The sender learns only that HappyTalk could not be reached; the log says why.
        #expect(response.text == #"{"result":"fail","error":"upstream_unreachable","message":"HappyTalk could not be reached"}"#)
        #expect(log.contains("is not trusted"), "\(log)")
        #expect(server.receivedBodies.isEmpty)
    }
}

