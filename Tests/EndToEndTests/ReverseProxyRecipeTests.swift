import Foundation
import TestSupport
import Testing

/// deploy/nginx/happyrelay.conf, run by a real nginx in front of the real relay: HTTPS in,
/// the client's address forwarded to `allow_ips`, request ids passed through.
@Suite struct ReverseProxyRecipeTests {
    static let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let curl = ["/usr/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func freePort() throws -> Int {
        let listener = try RawListener()
        return listener.port
    }

    @Test(.enabled(if: nginx != nil && curl != nil, "nginx and curl are installed by deploy/install-build-deps --tests"))
    func theNginxRecipeForwardsHTTPSAndTheClientAddress() async throws {
        try await offPool {
            // Only 127.0.0.2 may send; the test's curl speaks from 127.0.0.2 or 127.0.0.3.
            let mapping = #"{ "route": "/shop", "verify": { "scheme": "none", "allow_ips": ["127.0.0.2/32"] }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#
            let relay = try RelayHarness(mappings: ["shop.json": mapping], relayArguments: ["--trusted-proxies", "127.0.0.1/32"])
            let prefix = relay.directory.appendingPathComponent("nginx")
            try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
            let port = try Self.freePort()
            let recipe = try String(contentsOf: MappingCommandTests.root.appendingPathComponent("deploy/nginx/happyrelay.conf"), encoding: .utf8)
            let site = recipe
                .replacingOccurrences(of: "listen 443 ssl;", with: "listen 127.0.0.1:\(port) ssl;")
                .replacingOccurrences(of: "server 127.0.0.1:8080;", with: "server 127.0.0.1:\(relay.relayPort);")
                .replacingOccurrences(of: "/etc/ssl/happyrelay/fullchain.pem", with: TLSTestServer.fixture("localhost.pem"))
                .replacingOccurrences(of: "/etc/ssl/happyrelay/privkey.pem", with: TLSTestServer.fixture("localhost.key"))
            #expect(site != recipe)
            try site.write(to: prefix.appendingPathComponent("site.conf"), atomically: false, encoding: .utf8)
            try """
            daemon off;
            pid \(prefix.path)/nginx.pid;
            error_log stderr warn;
            events {}
            http {
                access_log off;
                client_body_temp_path \(prefix.path)/body;
                proxy_temp_path \(prefix.path)/proxy;
                include \(prefix.path)/site.conf;
            }
            """.write(to: prefix.appendingPathComponent("nginx.conf"), atomically: false, encoding: .utf8)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: Self.nginx!)
            server.arguments = ["-p", prefix.path, "-c", prefix.appendingPathComponent("nginx.conf").path]
            server.standardError = FileHandle.nullDevice
            try server.run()
            defer {
                server.terminate()
                server.waitUntilExit()
            }

            func send(from source: String, headers: [String] = []) throws -> (status: String, requestID: String) {
                let curl = Process()
                curl.executableURL = URL(fileURLWithPath: Self.curl!)
                curl.arguments = [
                    "-sS", "--retry", "20", "--retry-connrefused", "--retry-delay", "0", "--interface", source,
                    "--cacert", TLSTestServer.fixture("ca.pem"), "--resolve", "localhost:\(port):127.0.0.1",
                    "-o", "/dev/null", "-D", "-", "-w", "%{http_code}",
                    "-H", "Content-Type: application/json", "--data", RelayHarness.body, "https://localhost:\(port)/shop",
                ] + headers.flatMap { ["-H", $0] }
                let output = Pipe()
                curl.standardOutput = output
                try curl.run()
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                curl.waitUntilExit()
                let requestID = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-request-id:") }.map {
                    $0.dropFirst("x-request-id:".count).trimmingCharacters(in: .whitespaces)
                }
                return (String(text.suffix(3)), requestID ?? "")
            }

            // A header the client made up is not believed: nginx appends the address it saw.
            let allowed = try send(from: "127.0.0.2", headers: ["X-Forwarded-For: 127.0.0.3", "X-Request-Id: via-nginx-1"])
            #expect(allowed.status == "202")
            #expect(allowed.requestID == "via-nginx-1")
            #expect(try send(from: "127.0.0.3", headers: ["X-Forwarded-For: 127.0.0.2"]).status == "403")
            let generated = try send(from: "127.0.0.2")
            #expect(generated.status == "202" && generated.requestID.count == 32, "nginx made the id: \(generated.requestID)")
            #expect(relay.waitForCalls(2).count == 2)
            let log = relay.relay.waitForLog { $0.contains(#""request_id":"via-nginx-1""#) }
            #expect(log.contains(#""client":"127.0.0.2","request_id":"via-nginx-1""#), "\(log)")
        }
    }
}
