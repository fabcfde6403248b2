import COpenSSL
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TLS server for tests: answers each request with HappyTalk's success and
/// records the bodies it received. Clients that reject its certificate are just closed.
final class TLSTestServer: @unchecked Sendable {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tls")
    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    let port: Int
    private let listener: RawListener
    private let context: OpaquePointer
    private let bodies = Mutex<[String]>([])
    private let handshakes = Atomic<Int>(0)
    private let resumptions = Atomic<Int>(0)

    /// Whether each answer keeps the connection alive and is followed, in the same TCP segment,
    /// by TLS's close_notify, the TCP connection left open: a client that reads ahead holds the
    /// end of the session in its buffer, and its socket never signals it.
    private let closesBehindAnswers: Bool

    /// Serves with `certificate` (`localhost`, `wrong` or `unknown-ca`).
    init(certificate: String, closesBehindAnswers: Bool = false) throws {
        self.closesBehindAnswers = closesBehindAnswers
        listener = try RawListener()
        port = listener.port
        context = SSL_CTX_new(TLS_server_method())!
        let pem = certificate == "unknown-ca" ? "unknown-ca.pem" : "\(certificate).pem"
        guard SSL_CTX_use_certificate_file(context, Self.fixture(pem), SSL_FILETYPE_PEM) == 1,
            SSL_CTX_use_PrivateKey_file(context, Self.fixture("\(certificate).key"), SSL_FILETYPE_PEM) == 1
        else { throw RawConnection.Failure(description: "cannot load the test certificate") }
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// Bodies of the requests that completed a handshake, in order.
    var receivedBodies: [String] { bodies.withLock { $0 } }
    var completedHandshakes: Int { handshakes.load(ordering: .relaxed) }
    /// Handshakes that resumed a session this server gave before.
    var resumedHandshakes: Int { resumptions.load(ordering: .relaxed) }

    private func serve() {
        // Sessions ended with close_notify whose TCP connections stay open.
        var leftOpen: [(ssl: OpaquePointer, fd: Int32)] = []
        defer {
            for (ssl, fd) in leftOpen {
                SSL_free(ssl)
                close(fd)
            }
        }
        while true {
            guard let fd = try? listener.acceptOne() else { return }
            let ssl = SSL_new(context)!
            SSL_set_fd(ssl, fd)
            var keepsOpen = false
            defer {
                if keepsOpen {
                    leftOpen.append((ssl, fd))
                } else {
                    SSL_free(ssl)
                    close(fd)
                }
            }
            guard SSL_accept(ssl) == 1 else { continue }
            handshakes.wrappingAdd(1, ordering: .relaxed)
            if SSL_session_reused(ssl) == 1 { resumptions.wrappingAdd(1, ordering: .relaxed) }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16384)
            var bodyStart: Int?
            var length = 0
            while true {
                let count = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
                if count <= 0 { break }
                received += buffer[0..<Int(count)]
                if bodyStart == nil, let end = received.indices.dropLast(3).first(where: { received[$0] == 13 && received[$0 + 1] == 10 && received[$0 + 2] == 13 && received[$0 + 3] == 10 }) {
                    bodyStart = end + 4
                    let head = String(decoding: received[..<end], as: UTF8.self).lowercased()
                    length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                }
                if let bodyStart, received.count >= bodyStart + length {
                    bodies.withLock { $0.append(String(decoding: received[bodyStart..<(bodyStart + length)], as: UTF8.self)) }
                    let connection = closesBehindAnswers ? "" : "Connection: close\r\n"
                    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\(connection)\r\n{\"result\":\"success\"}"
                    // Corked, the answer's record and the alert leave in one segment.
                    var cork: Int32 = 1
                    if closesBehindAnswers { setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &cork, socklen_t(MemoryLayout<Int32>.size)) }
                    _ = reply.withCString { SSL_write(ssl, $0, Int32(strlen($0))) }
                    if closesBehindAnswers {
                        _ = SSL_shutdown(ssl)
                        cork = 0
                        setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &cork, socklen_t(MemoryLayout<Int32>.size))
                        keepsOpen = true
                    }
                    break
                }
            }
        }
    }
}
