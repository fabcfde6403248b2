import Foundation
import RelayHTTP
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct HTTPClientTests {
    func endpoint(_ port: Int) -> HTTPEndpoint { HTTPEndpoint(isTLS: false, host: "127.0.0.1", port: port) }

    @Test func keepAliveConnectionsAreReused() async throws {
        // Idle timeouts longer than any test run, on both ends: in a loaded full suite this task
        // may resume more than the defaults (the client's 30 s, the server's 60 s) after a
        // response, and the connection would then rightly be retired. (Seen under
        // ThreadSanitizer: the five requests took 115 s and the server closed the connection.)
        let server = try makeServer { $0.idleTimeout = .seconds(600) }
        let client = try HTTPClient(configuration: .init(idleTimeout: .seconds(600)))
        for index in 0..<5 {
            let response = try await client.execute(
                HTTPClientRequest(endpoint: endpoint(server.port), target: "/echo", body: Array("n\(index)".utf8)))
            #expect(response.status == 200)
            #expect(response.body == Array("n\(index)".utf8))
        }
        #expect(client.statistics.opened == 1)
        #expect(client.statistics.reused == 4)
        client.shutdown()
        await server.shutdown()
    }

    @Test func concurrentRequestsOpenAtMostTheCapAndQueueTheRest() async throws {
        let gate = Latch()
        let server = try makeServer(gate: gate)
        let client = try HTTPClient(configuration: .init(maxConnectionsPerEndpoint: 2))
        let target = endpoint(server.port)
        let statuses = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await client.execute(HTTPClientRequest(method: .get, endpoint: target, target: "/slow")).status
                    }
                }
                var statuses: [Int] = []
                for try await status in group { statuses.append(status) }
                return statuses
            }
        }
        // Wait until two connections are held open by the slow handler, then release it.
        while server.connectionCount < 2 { await Task.yield() }
        gate.open()
        #expect(try await statuses.value == Array(repeating: 200, count: 6))
        #expect(client.statistics.opened == 2)
        #expect(server.connectionCount <= 2)
        client.shutdown()
        await server.shutdown()
    }

    @Test func slowServerTimesOut() async throws {
        let gate = Latch()
        let server = try makeServer(gate: gate)
        let client = try HTTPClient()
        await #expect(throws: HTTPClientError.timedOut) {
            _ = try await client.execute(
                HTTPClientRequest(method: .get, endpoint: endpoint(server.port), target: "/slow"),
                timeout: .milliseconds(300))
        }
        gate.open()
        client.shutdown()
        await server.shutdown()
    }

    @Test func refusedConnectionIsAConnectFailure() async throws {
        // Bind a port, then close it: nothing listens there.
        let server = try makeServer()
        let port = server.port
        await server.shutdown()
        let client = try HTTPClient()
        do {
            _ = try await client.execute(HTTPClientRequest(method: .get, endpoint: endpoint(port), target: "/"))
            Issue.record("expected a failure")
        } catch {
            guard case .connectFailed(let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(reason.contains("refused"))
        }
        client.shutdown()
    }

    @Test func closeDelimitedResponseFromARawServer() async throws {
        let listener = try RawListener()
        let port = listener.port
        let serverDone = Task {
            try await offPool {
                let fd = try listener.acceptOne()
                defer { close(fd) }
                _ = listener.readRequestHead(fd)
                let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"result\":\"success\"}"
                _ = reply.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            }
        }
        let client = try HTTPClient()
        let response = try await client.execute(
            HTTPClientRequest(endpoint: endpoint(port), target: "/user/api/set_user_info/format/json", body: [123, 125]))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "{\"result\":\"success\"}")
        try await serverDone.value
        client.shutdown()
    }

    /// The response is read when the socket signals it, not tried right after the request is
    /// written (a read that finds nothing: a system call per request wasted).
    @Test func responsesAreReadWhenSignalledNotTriedAfterWriting() async throws {
        let server = try makeServer()
        let counting = CountingTransportFactory()
        // The counting factory stands where TLS would: an https endpoint over plain TCP.
        let client = try HTTPClient(configuration: .init(idleTimeout: .seconds(600)), tls: counting)
        for index in 0..<20 {
            let response = try await client.execute(
                HTTPClientRequest(endpoint: HTTPEndpoint(isTLS: true, host: "127.0.0.1", port: server.port), target: "/echo", body: Array("n\(index)".utf8)))
            #expect(response.body == Array("n\(index)".utf8))
        }
        #expect(client.statistics.opened == 1)
        let (reads, empty) = counting.counts
        #expect(reads >= 20)
        #expect(empty == 0, "\(empty) of \(reads) reads found nothing")
        client.shutdown()
        await server.shutdown()
    }

    @Test func httpsWithoutTLSConfiguredIsRefused() async throws {
        let client = try HTTPClient()
        await #expect(throws: HTTPClientError.invalidURL("https://127.0.0.1:1: https is not configured")) {
            _ = try await client.execute(
                HTTPClientRequest(endpoint: HTTPEndpoint(isTLS: true, host: "127.0.0.1", port: 1), target: "/"))
        }
        client.shutdown()
    }
}

/// A blocking one-connection-at-a-time listener for scripted responses.
final class RawListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0, listen(fd, 16) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw RawConnection.Failure(description: "listen failed") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    func acceptOne() throws -> Int32 {
        let client = accept(fd, nil, nil)
        guard client >= 0 else { throw RawConnection.Failure(description: "accept failed") }
        return client
    }

    /// Reads until the end of a request head and any Content-Length body.
    func readRequestHead(_ client: Int32) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
            let text = String(decoding: received, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound].lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                if received.count >= text.utf8.distance(from: text.startIndex, to: end.upperBound) + length { break }
            }
        }
        return String(decoding: received, as: UTF8.self)
    }
}

/// Plain TCP whose reads are counted: those that returned bytes or the end, and those that
/// found nothing to read.
final class CountingTransportFactory: TransportFactory {
    private let reads = Mutex((all: 0, empty: 0))

    var counts: (all: Int, empty: Int) { reads.withLock { $0 } }

    func makeTransport(fd: Int32, host: String) throws -> any Transport { CountingTransport(PlainTransport(fd: fd), counts: self) }

    fileprivate func count(_ result: TransportResult) {
        reads.withLock {
            $0.all += 1
            if result == .wantRead { $0.empty += 1 }
        }
    }
}

private final class CountingTransport: Transport {
    private let plain: PlainTransport
    private let counts: CountingTransportFactory

    init(_ plain: PlainTransport, counts: CountingTransportFactory) {
        self.plain = plain
        self.counts = counts
    }

    var fd: Int32 { plain.fd }
    func handshake() throws -> TransportResult { try plain.handshake() }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TransportResult {
        let result = try plain.read(into: buffer)
        counts.count(result)
        return result
    }
    func write(_ bytes: UnsafeRawBufferPointer) throws -> TransportResult { try plain.write(bytes) }
    func close() { plain.close() }
    var hasBufferedInput: Bool { plain.hasBufferedInput }
}
