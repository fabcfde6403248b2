import Testing

@testable import RelayHTTP

/// The connection's protocol without sockets: events in, actions out.
@Suite struct ServerConnectionStateMachineTests {
    static let second: UInt64 = 1_000_000_000

    func machine(now: UInt64 = 0) -> ServerConnectionStateMachine {
        ServerConnectionStateMachine(
            limits: .init(), timeouts: .init(header: 10 * Self.second, request: 30 * Self.second, idle: 60 * Self.second), now: now)
    }

    func feed(_ machine: inout ServerConnectionStateMachine, _ text: String, now: UInt64 = 0) -> [String] {
        Array(text.utf8).withUnsafeBytes { describe(machine.received($0, now: now)) }
    }

    func describe(_ actions: [ServerConnectionStateMachine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .dispatch(let request): "dispatch \(request.head.method) \(request.head.target) \(String(decoding: request.body, as: UTF8.self))"
            case .send(let response, _, _, let closing): "send \(response.status.code)\(closing ? " closing" : "")"
            case .sendContinue: "continue"
            case .shutdownWrite: "shutdown write"
            case .close: "close"
            }
        }
    }

    /// A request carries the client's X-Request-Id when it is safe to log and echo, and an id
    /// of the server's otherwise (marked so, as only those may name stored records).
    @Test func aRequestTakesTheClientsIDOnlyWhenSafe() {
        func dispatched(_ header: String) -> HTTPRequest? {
            var machine = machine()
            let actions = Array("POST /a HTTP/1.1\r\nHost: h\r\n\(header)Content-Length: 0\r\n\r\n".utf8).withUnsafeBytes {
                machine.received($0, now: 0)
            }
            guard case .dispatch(let request)? = actions.first else { return nil }
            return request
        }
        let given = dispatched("X-Request-Id: shop-req-42\r\n")
        #expect(given?.id == "shop-req-42" && given?.hasGeneratedID == false)
        for header in ["X-Request-Id: a b\r\n", ""] {
            let made = dispatched(header)
            #expect(made?.hasGeneratedID == true && made?.id.utf8.count == RequestID.length)
        }
    }

    @Test func pipelinedRequestsAreAnsweredOneAtATimeInOrder() {
        var machine = machine()
        #expect(feed(&machine, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi") == ["dispatch GET /a "])
        #expect(describe(machine.responseReady(HTTPResponse(status: .ok), isDraining: false, hasPendingOutput: false)) == ["send 200", "dispatch POST /b hi"])
        #expect(describe(machine.responseReady(HTTPResponse(status: .accepted), isDraining: false, hasPendingOutput: true)) == ["send 202"])
        #expect(machine.isIdle)
    }

    @Test func aFramingErrorIsAnsweredAfterTheRequestsBeforeIt() {
        var machine = machine()
        #expect(feed(&machine, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\nHost: h\r\n\r\n") == ["dispatch GET /a "])
        #expect(!machine.wantsToRead)
        #expect(describe(machine.responseReady(HTTPResponse(status: .ok), isDraining: false, hasPendingOutput: false)) == ["send 200", "send 400 closing"])
        #expect(describe(machine.outputFlushed(now: 1)) == ["shutdown write"])
        #expect(machine.phase == .lingering(since: 1))
        #expect(describe(machine.tick(now: 3 * Self.second, hasPendingOutput: false)) == ["close"])
    }

    @Test func aHeldBackBodyIsAskedForOnce() {
        var machine = machine()
        #expect(feed(&machine, "POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n") == ["continue"])
        #expect(feed(&machine, "o") == [])
        #expect(feed(&machine, "k") == ["dispatch POST /a ok"])
    }

    @Test func theAnswerClosesWhenTheClientAsksOrThePeerIsDoneOrTheServerDrains() {
        var asked = machine()
        _ = feed(&asked, "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        #expect(describe(asked.responseReady(HTTPResponse(), isDraining: false, hasPendingOutput: false)) == ["send 200 closing"])
        var done = machine()
        _ = feed(&done, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(describe(done.peerClosed(hasPendingOutput: false)) == [])
        #expect(describe(done.responseReady(HTTPResponse(), isDraining: false, hasPendingOutput: false)) == ["send 200 closing"])
        #expect(describe(done.outputFlushed(now: 0)) == ["close"])
        var draining = machine()
        _ = feed(&draining, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(describe(draining.drain(force: false, hasPendingOutput: false)) == [])
        #expect(describe(draining.responseReady(HTTPResponse(), isDraining: true, hasPendingOutput: false)) == ["send 200 closing"])
        var idle = machine()
        #expect(describe(idle.drain(force: false, hasPendingOutput: false)) == ["close"])
        #expect(describe(idle.peerClosed(hasPendingOutput: false)) == [])
    }

    @Test func deadlinesRunFromARequestsFirstByte() {
        var slowHead = machine()
        _ = feed(&slowHead, "GET /a HTTP/1.1\r\n", now: 5 * Self.second)
        #expect(describe(slowHead.tick(now: 14 * Self.second, hasPendingOutput: false)) == [])
        #expect(describe(slowHead.tick(now: 16 * Self.second, hasPendingOutput: false)) == ["send 408 closing"])
        // A body that keeps dripping still meets the whole-request deadline.
        var slowBody = machine()
        _ = feed(&slowBody, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", now: 0)
        for second in 1...29 { _ = feed(&slowBody, "x", now: UInt64(second) * Self.second) }
        #expect(describe(slowBody.tick(now: 29 * Self.second, hasPendingOutput: false)) == [])
        _ = feed(&slowBody, "x", now: 31 * Self.second)
        #expect(describe(slowBody.tick(now: 31 * Self.second, hasPendingOutput: false)) == ["send 408 closing"])
        // Empty lines are part of the request: they do not hold the header deadline open.
        var blank = machine()
        for second in stride(from: 0, through: 10, by: 2) { _ = feed(&blank, "\r\n", now: UInt64(second) * Self.second) }
        #expect(describe(blank.tick(now: 11 * Self.second, hasPendingOutput: false)) == ["send 408 closing"])
        // An idle keep-alive connection is closed; a request being handled is never timed out.
        var idle = machine()
        _ = feed(&idle, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", now: 0)
        #expect(describe(idle.tick(now: 100 * Self.second, hasPendingOutput: false)) == [])
        _ = idle.responseReady(HTTPResponse(), isDraining: false, hasPendingOutput: false)
        _ = idle.outputFlushed(now: 100 * Self.second)
        #expect(describe(idle.tick(now: 161 * Self.second, hasPendingOutput: false)) == ["close"])
    }
}
