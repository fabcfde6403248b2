import Foundation
import RelayHTTP
import Testing

@testable import RelayCore

/// The outbound client over OpenSSL: verified, host-checked, and never sending to an
/// upstream it cannot trust.
@Suite struct TLSUpstreamTests {
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

    @Test func unknownCertificateAuthorityIsRefusedAndNothingIsSent() async throws {
        let server = try TLSTestServer(certificate: "unknown-ca")
        let client = try HTTPClient(tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        do {
            _ = try await client.execute(request(server.port))
            Issue.record("an untrusted upstream was accepted")
        } catch {
            guard case .connectFailed(let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(reason.contains("certificate of localhost is not trusted"), "\(reason)")
        }
        #expect(server.receivedBodies.isEmpty)
        client.shutdown()
    }

    @Test func certificateForAnotherHostIsRefused() async throws {
        let server = try TLSTestServer(certificate: "wrong")
        let client = try HTTPClient(tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        do {
            _ = try await client.execute(request(server.port))
            Issue.record("a certificate for another host was accepted")
        } catch {
            guard case .connectFailed(let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(reason.contains("Hostname mismatch") || reason.contains("hostname mismatch"), "\(reason)")
        }
        #expect(server.receivedBodies.isEmpty)
        client.shutdown()
    }

    @Test func relaySendsOverTLSWithTheCAFile() async throws {
        let server = try TLSTestServer(certificate: "localhost")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try RelayHarness.route("/sync", verify: #"{ "scheme": "none" }"#).write(to: folder.appendingPathComponent("sync.json"), atomically: true, encoding: .utf8)
        try await offPool {
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path, "--upstream", "https://localhost:\(server.port)",
                 "--upstream-ca-file", TLSTestServer.fixture("ca.pem"), "--data-dir", folder.appendingPathComponent("data").path],
                environment: ["HAPPYTALK_TOKEN": "tls-token"])
            let port = try relay.waitForPort()
            let connection = try RawConnection(port: port)
            try connection.send("POST /sync HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: \(RelayHarness.body.utf8.count)\r\n\r\n\(RelayHarness.body)")
            let response = try connection.readResponse()
            #expect(response.status == 200, "\(response.text)")
            #expect(server.receivedBodies == [#"{"token":"tls-token","uuid":"u-1","room_id":"r-1"}"#])
            _ = try relay.stop()
        }
    }

    @Test func relayWithoutTheCAFileRefusesTheUpstream() async throws {
        let server = try TLSTestServer(certificate: "localhost")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try RelayHarness.route("/sync", verify: #"{ "scheme": "none" }"#).write(to: folder.appendingPathComponent("sync.json"), atomically: true, encoding: .utf8)
        try await offPool {
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path, "--upstream", "https://localhost:\(server.port)", "--data-dir", folder.appendingPathComponent("data").path],
                environment: ["HAPPYTALK_TOKEN": "tls-token"])
            let port = try relay.waitForPort()
            let connection = try RawConnection(port: port)
            try connection.send("POST /sync HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: \(RelayHarness.body.utf8.count)\r\n\r\n\(RelayHarness.body)")
            let response = try connection.readResponse()
            #expect(response.status == 502)
            #expect(response.text.contains("is not trusted"), "\(response.text)")
            #expect(server.receivedBodies.isEmpty)
            _ = try relay.stop()
        }
    }
}
