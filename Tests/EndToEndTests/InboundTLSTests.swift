import Foundation
import RelayHTTP
import TestSupport
import Testing

@testable import RelayCore

/// The relay as an HTTPS front door: webhooks over TLS 1.2+, the certificate reloaded on SIGHUP.
@Suite struct InboundTLSTests {
    static let async = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#

    func post(_ client: HTTPClient, port: Int, path: String, body: String) async throws -> HTTPClientResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return try await client.execute(
            HTTPClientRequest(endpoint: HTTPEndpoint(isTLS: true, host: "localhost", port: port), target: path, headers: headers, body: Array(body.utf8)))
    }

    @Test func webhooksArriveOverTLSAndTheCertificateIsReloadedOnSighup() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-tls-in-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificate = folder.appendingPathComponent("cert.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        try FileManager.default.copyItem(atPath: TLSTestServer.fixture("localhost.pem"), toPath: certificate)
        try FileManager.default.copyItem(atPath: TLSTestServer.fixture("localhost.key"), toPath: key)
        let relay = try RelayHarness(mappings: ["async.json": Self.async], relayArguments: ["--tls-cert", certificate, "--tls-key", key])
        #expect(relay.relay.log.contains(#""tls":true"#))
        let client = try HTTPClient(tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        defer { client.shutdown() }

        let response = try await post(client, port: relay.relayPort, path: "/async", body: RelayHarness.body)
        #expect(response.status == 202, "\(String(decoding: response.body, as: UTF8.self))")
        // Keep-alive over the same session, then a second webhook.
        #expect(try await post(client, port: relay.relayPort, path: "/async", body: RelayHarness.body).status == 202)
        #expect(relay.waitForCalls(2).count == 2)

        // Plain HTTP to the TLS port gets no answer in clear text.
        try await offPool {
            let plain = try RawConnection(port: relay.relayPort, timeout: 5)
            try plain.send("GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n")
            #expect(throws: (any Error).self) { _ = try plain.readResponse() }
        }

        // A new certificate (for another name) after SIGHUP: new sessions get it, and this
        // client, which checks the name, refuses it.
        try FileManager.default.removeItem(atPath: certificate)
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: TLSTestServer.fixture("wrong.pem"), toPath: certificate)
        try FileManager.default.copyItem(atPath: TLSTestServer.fixture("wrong.key"), toPath: key)
        kill(relay.relay.process.processIdentifier, SIGHUP)
        _ = try await offPool { relay.relay.waitForLog { $0.contains("reloaded mappings") } }
        let fresh = try HTTPClient(tls: try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")))
        defer { fresh.shutdown() }
        await #expect(throws: HTTPClientError.self) { _ = try await post(fresh, port: relay.relayPort, path: "/async", body: RelayHarness.body) }

        // A broken key file is refused; the loaded certificate stays in service.
        try "not a key".write(toFile: key, atomically: false, encoding: .utf8)
        kill(relay.relay.process.processIdentifier, SIGHUP)
        let log = try await offPool { relay.relay.waitForLog { $0.contains("TLS certificate not reloaded") } }
        #expect(log.contains("--tls-key: cannot load a PEM private key from \(key)"), "\(log)")
        #expect(relay.relay.process.isRunning)
    }

    /// A TLS session to the relay over a blocking socket (5 s receive timeout), handshake done;
    /// the session owns a duplicate of the socket's descriptor.
    static func session(port: Int) throws -> (socket: RawConnection, transport: any Transport) {
        let socket = try RawConnection(port: port, timeout: 5)
        let transport = try TLSClientFactory(caFile: TLSTestServer.fixture("ca.pem")).makeTransport(fd: dup(socket.fd), host: "localhost")
        #expect(try transport.handshake() == .count(0))
        return (socket, transport)
    }

    /// Two requests sent as two TLS records in one segment, before the relay reads either:
    /// it reads both at once (read-ahead), answers the first, and finds the second in
    /// OpenSSL's buffer, where the socket never signals it.
    @Test func pipelinedRequestsInRecordsReadTogetherAreBothAnswered() async throws {
        let relay = try RelayHarness(
            mappings: ["async.json": Self.async],
            relayArguments: ["--tls-cert", TLSTestServer.fixture("localhost.pem"), "--tls-key", TLSTestServer.fixture("localhost.key")])
        try await offPool {
            let (socket, transport) = try Self.session(port: relay.relayPort)
            defer { transport.close() }
            let request = Array(
                "POST /async HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: \(RelayHarness.body.utf8.count)\r\n\r\n\(RelayHarness.body)".utf8)
            // Corked: both records leave in one segment, so that one read takes both.
            var on: Int32 = 1
            setsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_CORK, &on, socklen_t(MemoryLayout<Int32>.size))
            for _ in 0..<2 { #expect(try request.withUnsafeBytes { try transport.write($0) } == .count(request.count)) }
            var off: Int32 = 0
            setsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_CORK, &off, socklen_t(MemoryLayout<Int32>.size))

            var received = ""
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while received.components(separatedBy: #""result":"accepted""#).count - 1 < 2 {
                let result = try buffer.withUnsafeMutableBytes { try transport.read(into: $0) }
                guard case .count(let count) = result else {
                    Issue.record("no second answer (\(result)) after: \(received)")
                    return
                }
                received += String(decoding: buffer[0..<count], as: UTF8.self)
            }
            #expect(received.components(separatedBy: "HTTP/1.1 202 Accepted\r\n").count - 1 == 2, "\(received)")
        }
        #expect(relay.waitForCalls(2).count == 2)
    }

    /// A TLS record is read whole (read-ahead), not as its 5-byte header and then its body:
    /// about one read system call per request on a kept-alive connection, not two.
    @Test func aRecordIsReadInOneSystemCall() async throws {
        let relay = try RelayHarness(
            mappings: ["async.json": Self.async],
            relayArguments: ["--tls-cert", TLSTestServer.fixture("localhost.pem"), "--tls-key", TLSTestServer.fixture("localhost.key")])
        let pid = relay.relay.process.processIdentifier
        @Sendable func readCalls() throws -> Int {
            let io = try String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8)
            return try #require(io.split(separator: "\n").first { $0.hasPrefix("syscr:") }.flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) })
        }
        try await offPool {
            let (_, transport) = try Self.session(port: relay.relayPort)
            defer { transport.close() }
            let request = Array("GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n".utf8)
            var buffer = [UInt8](repeating: 0, count: 16_384)
            func exchange() throws {
                _ = try request.withUnsafeBytes { try transport.write($0) }
                var answer = ""
                while !answer.contains("\r\n\r\n") || !answer.hasSuffix("}") {
                    guard case .count(let count) = try buffer.withUnsafeMutableBytes({ try transport.read(into: $0) }) else {
                        Issue.record("no answer: \(answer)")
                        return
                    }
                    answer += String(decoding: buffer[0..<count], as: UTF8.self)
                }
                #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(answer)")
            }
            try exchange()
            let before = try readCalls()
            for _ in 0..<50 { try exchange() }
            let perRequest = Double(try readCalls() - before) / 50
            #expect(perRequest < 1.5, "\(perRequest) read system calls per request")
        }
    }

    @Test func aStalledHandshakeMeetsTheHeaderTimeout() async throws {
        try await offPool {
            let relay = try RelayHarness(
                mappings: ["async.json": Self.async],
                relayArguments: ["--tls-cert", TLSTestServer.fixture("localhost.pem"), "--tls-key", TLSTestServer.fixture("localhost.key"), "--header-timeout", "1"])
            // Connects, says nothing: closed after about the header timeout, not the idle timeout (60 s).
            let silent = try RawConnection(port: relay.relayPort, timeout: 10)
            let started = Date()
            #expect(throws: (any Error).self) { _ = try silent.readResponse() }
            let waited = Date().timeIntervalSince(started)
            #expect(waited > 0.8 && waited < 5, "closed after \(waited) s")
        }
    }

    @Test func tlsSettingsAreCheckedAtStartUp() async throws {
        try await offPool {
            let missingKey = try RelayProcess.run(["serve", "--listen", "127.0.0.1:0", "--tls-cert", TLSTestServer.fixture("localhost.pem")])
            #expect(missingKey.status == 1 && missingKey.output.contains("--tls-cert needs --tls-key too"), "\(missingKey.output)")
            let mismatched = try RelayProcess.run(
                ["serve", "--listen", "127.0.0.1:0", "--tls-cert", TLSTestServer.fixture("localhost.pem"), "--tls-key", TLSTestServer.fixture("wrong.key")])
            #expect(mismatched.status == 1 && mismatched.output.contains("--tls-key: cannot load a PEM private key") && mismatched.output.contains("key values mismatch"), "\(mismatched.output)")
        }
    }
}
