import Foundation
import RelayHTTP
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Starts a server on 127.0.0.1:0 with test routes: `/healthz` (on the loop), `/echo`
/// (async, answers the body it got), `/slow` (async, waits for `gate`).
func makeServer(
    gate: Latch = Latch(), entered: Latch = Latch(), _ configure: (inout HTTPServer.Configuration) -> Void = { _ in }
) throws -> HTTPServer {
    var configuration = HTTPServer.Configuration(address: HostAndPort(host: "127.0.0.1", port: 0), loopCount: 2)
    configure(&configuration)
    var router = Router()
    router.add(.get, "/healthz", .immediate { _ in .json(.ok, "{\"status\":\"ok\"}") })
    // Answered on the loop: these tests are about the connection, and a loaded test process's
    // task pool (shared with every other test running) must not decide whether they pass.
    router.add(.post, "/echo", .deferred { request, responder in responder.respond(HTTPResponse(status: .ok, body: request.body)) })
    router.add(.post, "/async-echo", .async { request in HTTPResponse(status: .ok, body: request.body) })
    router.add(.post, "/inline", .deferred { request, responder in responder.respond(HTTPResponse(status: .ok, body: request.body)) })
    router.add(
        .post, "/later",
        .deferred { request, responder in
            // Answered from another thread, after the handler has returned.
            Thread { responder.respond(HTTPResponse(status: .accepted, body: request.body)) }.start()
        })
    router.add(.get, "/forgotten", .deferred { _, _ in })
    router.add(
        .get, "/slow",
        .async { _ in
            entered.open()
            await gate.wait()
            return .json(.ok, "{\"slow\":true}")
        })
    return try HTTPServer(configuration: configuration, router: router)
}

@Suite(.serialized) struct HTTPServerTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            for index in 0..<3 {
                try connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n\(index)")
                let response = try connection.readResponse()
                #expect(response.status == 200)
                #expect(response.text == "\(index)")
                #expect(response.header("connection") == nil)
            }
        }
        await server.shutdown()
    }

    @Test func asyncHandlersAnswerFromATask() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            for index in 0..<2 {
                try connection.send("POST /async-echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n\(index)")
                #expect(try connection.readResponse().text == "\(index)")
            }
        }
        await server.shutdown()
    }

    @Test func threePipelinedRequestsInOneWriteAreAnsweredInOrder() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send(
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst"
                    + "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthird\r\n0\r\n\r\n")
            #expect(try connection.readResponse().text == "first")
            #expect(try connection.readResponse().text == "{\"status\":\"ok\"}")
            #expect(try connection.readResponse().text == "third")
        }
        await server.shutdown()
    }

    @Test func deferredHandlersAnswerInlineOrLaterInOrder() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send(
                "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nA"
                    + "POST /inline HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nB"
                    + "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nC")
            let first = try connection.readResponse()
            let second = try connection.readResponse()
            let third = try connection.readResponse()
            let statuses: [Int] = [first.status, second.status, third.status]
            let texts: [String] = [first.text, second.text, third.text]
            #expect(statuses == [202, 200, 202])
            #expect(texts == ["A", "B", "C"])
        }
        await server.shutdown()
    }

    @Test func aRequestLeftUnansweredGets500() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("GET /forgotten HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try connection.readResponse().status == 500)
            #expect(try connection.readResponse().status == 200)
        }
        await server.shutdown()
    }

    @Test func chunkedBodyWithExtensionsAndTrailersIsReassembled() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send(
                "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n")
            try connection.send("4\r\n:12}\r\n0\r\nX-Checksum: abc\r\n\r\n")
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "{\"a\":12}")
        }
        await server.shutdown()
    }

    @Test func expectContinueGetsInterimResponseBeforeTheBody() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            let interim = try connection.readResponse()
            #expect(interim.status == 100)
            try connection.send("body")
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "body")
        }
        await server.shutdown()
    }

    @Test func headAnswersWithoutABody() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try connection.readResponse(isHead: true)
            #expect(head.status == 200)
            #expect(head.header("content-length") == "15")
            let get = try connection.readResponse()
            #expect(get.text == "{\"status\":\"ok\"}")
        }
        await server.shutdown()
    }

    @Test func http10ClientIsAnsweredAndClosed() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("GET /healthz HTTP/1.0\r\n\r\n")
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.header("connection") == "close")
            #expect(connection.isClosedByPeer())
        }
        await server.shutdown()
    }

    @Test func connectionCloseIsHonoured() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(try connection.readResponse().header("connection") == "close")
            #expect(connection.isClosedByPeer())
        }
        await server.shutdown()
    }

    @Test func unknownPathAndWrongMethodGetJSONErrors() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("GET /nope HTTP/1.1\r\nHost: t\r\n\r\nDELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n")
            let missing = try connection.readResponse()
            #expect(missing.status == 404)
            #expect(missing.text.contains("\"error\":\"not_found\""))
            let wrong = try connection.readResponse()
            #expect(wrong.status == 405)
            #expect(wrong.header("allow") == "POST")
            #expect(wrong.text.contains("\"error\":\"method_not_allowed\""))
        }
        await server.shutdown()
    }

    struct MalformedCase: CustomTestStringConvertible, Sendable {
        let name: String
        let wire: String
        let status: Int
        var testDescription: String { name }
    }

    static let malformed: [MalformedCase] = [
        MalformedCase(name: "headers over the limit", wire: "GET /healthz HTTP/1.1\r\nHost: t\r\nX: \(String(repeating: "a", count: 2000))\r\n\r\n", status: 431),
        MalformedCase(name: "request line over the limit", wire: "GET /\(String(repeating: "a", count: 2000)) HTTP/1.1\r\n", status: 431),
        MalformedCase(name: "declared body over the limit", wire: "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", status: 413),
        MalformedCase(name: "Content-Length and Transfer-Encoding", wire: "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400),
        MalformedCase(name: "two Content-Lengths", wire: "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: 400),
        MalformedCase(name: "obs-fold", wire: "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n 2\r\n\r\n", status: 400),
        MalformedCase(name: "bare LF", wire: "GET /healthz HTTP/1.1\nHost: t\n\n", status: 400),
        MalformedCase(name: "control character", wire: "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: \u{7f}\r\n\r\n", status: 400),
        MalformedCase(name: "invalid method", wire: "GE@T /healthz HTTP/1.1\r\nHost: t\r\n\r\n", status: 400),
        MalformedCase(name: "invalid version", wire: "GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n", status: 400),
        MalformedCase(name: "unsupported transfer coding", wire: "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501),
    ]

    @Test(arguments: malformed)
    func malformedRequestGetsItsStatusAndTheConnectionCloses(_ testCase: MalformedCase) async throws {
        let server = try makeServer {
            $0.limits = .init(maxHeaderBytes: 1024, maxBodyBytes: 4096)
        }
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send(testCase.wire)
            let response = try connection.readResponse()
            #expect(response.status == testCase.status)
            #expect(response.header("connection") == "close")
            #expect(response.text.hasPrefix("{\"result\":\"fail\""))
            #expect(connection.isClosedByPeer())
        }
        await server.shutdown()
    }

    @Test func malformedRequestAfterAValidOneIsAnsweredInOrder() async throws {
        let server = try makeServer()
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\nHost: t\r\n\r\n")
            #expect(try connection.readResponse().text == "ok")
            #expect(try connection.readResponse().status == 400)
            #expect(connection.isClosedByPeer())
        }
        await server.shutdown()
    }

    @Test func slowHeadersGet408AfterTheHeaderDeadline() async throws {
        let server = try makeServer { $0.headerTimeout = .milliseconds(300) }
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("GET /healthz HTTP/1.1\r\nHost:")
            let started = Date()
            let response = try connection.readResponse()
            #expect(response.status == 408)
            #expect(Date().timeIntervalSince(started) < 2)
            #expect(connection.isClosedByPeer())
        }
        await server.shutdown()
    }

    @Test func idleKeepAliveConnectionIsClosedAfterTheIdleTimeout() async throws {
        let server = try makeServer { $0.idleTimeout = .milliseconds(300) }
        let port = server.port
        try await offPool {
            let connection = try RawConnection(port: port)
            try connection.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try connection.readResponse().status == 200)
            #expect(connection.isClosedByPeer(within: 3))
        }
        #expect(server.connectionCount == 0)
        await server.shutdown()
    }

    @Test func connectionsBeyondTheCapGet503() async throws {
        let server = try makeServer { $0.maxConnections = 2 }
        let port = server.port
        try await offPool {
            let first = try RawConnection(port: port)
            let second = try RawConnection(port: port)
            try first.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            try second.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try first.readResponse().status == 200)
            #expect(try second.readResponse().status == 200)
            let third = try RawConnection(port: port)
            let refused = try third.readResponse()
            #expect(refused.status == 503)
            #expect(third.isClosedByPeer())
            // The first two keep working.
            try first.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try first.readResponse().status == 200)
        }
        await server.shutdown()
    }

    @Test func slowlorisIsClosedWhileOthersAreServedQuickly() async throws {
        let server = try makeServer { $0.headerTimeout = .seconds(2) }
        let port = server.port
        try await offPool {
            let slow = try RawConnection(port: port)
            try slow.send("GET /healthz HTTP/1.1\r\n")
            let started = Date()
            // Each one is answered at once, not after the slow client's deadline (a loaded
            // two-core machine took 1.1 s for the fifty).
            var slowest = 0.0
            for _ in 0..<50 {
                let asked = Date()
                let other = try RawConnection(port: port)
                try other.send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                #expect(try other.readResponse().status == 200)
                slowest = max(slowest, Date().timeIntervalSince(asked))
            }
            #expect(slowest < 0.5)
            #expect(Date().timeIntervalSince(started) < 2)
            // Trickling headers does not move the deadline.
            try slow.send("X-Drip: 1\r\n")
            #expect(try slow.readResponse().status == 408)
            #expect(slow.isClosedByPeer())
            #expect(Date().timeIntervalSince(started) < 4)
        }
        await server.shutdown()
    }

    /// Empty lines are part of the request they precede: sending one now and then does not
    /// restart the header deadline.
    @Test func emptyLinesDoNotHoldAConnectionOpen() async throws {
        let server = try makeServer { $0.headerTimeout = .seconds(1) }
        let port = server.port
        try await offPool {
            let dripping = try RawConnection(port: port)
            let started = Date()
            var status: Int?
            for _ in 0..<20 {
                guard (try? dripping.send("\r\n")) != nil else { break }
                if dripping.hasBytesWithin(0.3) {
                    status = try dripping.readResponse().status
                    break
                }
            }
            #expect(status == 408)
            #expect(Date().timeIntervalSince(started) < 2.5)
            #expect(dripping.isClosedByPeer())
        }
        await server.shutdown()
    }

    /// A body sent a byte at a time gets the whole-request deadline, however steadily it drips.
    @Test func aSlowBodyMeetsTheRequestDeadline() async throws {
        let server = try makeServer { $0.requestTimeout = .seconds(1) }
        let port = server.port
        try await offPool {
            let slow = try RawConnection(port: port)
            try slow.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
            let started = Date()
            var status: Int?
            for _ in 0..<20 {
                guard (try? slow.send("x")) != nil else { break }
                if slow.hasBytesWithin(0.2) {
                    status = try slow.readResponse().status
                    break
                }
            }
            #expect(status == 408)
            #expect(Date().timeIntervalSince(started) < 2)
            #expect(slow.isClosedByPeer())
        }
        await server.shutdown()
    }

    @Test func thousandIdleConnectionsDoNotStopHealthChecks() async throws {
        raiseOpenFileLimit()
        let server = try makeServer()
        let port = server.port
        try await offPool {
            var idle: [RawConnection] = []
            for _ in 0..<1000 { idle.append(try RawConnection(port: port)) }
            let started = Date()
            let probe = try RawConnection(port: port)
            try probe.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try probe.readResponse().status == 200)
            #expect(Date().timeIntervalSince(started) < 1)
            #expect(server.connectionCount >= 1000)
            withExtendedLifetime(idle) {}
        }
        await server.shutdown()
    }

    @Test func gracefulShutdownCompletesTheInFlightRequest() async throws {
        let gate = Latch()
        let entered = Latch()
        let server = try makeServer(gate: gate, entered: entered)
        let port = server.port
        let connection = try await offPool { () -> Box<RawConnection> in
            let connection = try RawConnection(port: port)
            try connection.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            return Box<RawConnection>(connection)
        }
        await entered.wait()
        let stopped = Task { await server.shutdown() }
        // New connections are no longer accepted once shutdown begins.
        let refusedOrClosed = try await offPool { () -> Bool in
            for _ in 0..<200 {
                guard let late = try? RawConnection(port: port) else { return true }
                if late.isClosedByPeer(within: 0.05) { return true }
            }
            return false
        }
        #expect(refusedOrClosed)
        gate.open()
        let response = try await offPool { try connection.value.readResponse() }
        #expect(response.status == 200)
        #expect(response.text == "{\"slow\":true}")
        #expect(response.header("connection") == "close")
        await stopped.value
    }
}

