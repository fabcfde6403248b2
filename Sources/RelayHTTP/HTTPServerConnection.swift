#if canImport(Glibc)
import Glibc
#endif

/// One accepted connection: does the I/O that its state machine asks for — reads, writes,
/// dispatches to handlers, closes. Lives on one loop and is touched only there.
final class HTTPServerConnection: EventLoopHandler {
    private static let maxBufferedOutput = 1 << 20

    private let fd: Int32
    private let remoteAddress: String
    // Strong: the loop drops its reference when the connection closes, which ends the cycle.
    private let loop: EventLoop
    private let context: ServerContext
    private var token: UInt64 = 0
    private var interest = Interest.read
    private var machine: ServerConnectionStateMachine
    /// The byte stream: the plain socket, or a TLS session over it.
    private let transport: any Transport
    private var isHandshaking: Bool
    private let handshakeDeadline: UInt64
    /// What the transport asked to wait for before it can go on (TLS may need to write to read).
    private var transportWants = Interest.none

    private var output: [UInt8] = []
    private var outputOffset = 0
    private var isClosed = false
    /// Actions produced while others run (a handler that answers at once) wait here, so that
    /// they run in order and never re-enter the state machine.
    private var pendingActions: [ServerConnectionStateMachine.Action] = []
    private var isRunningActions = false
    /// The id of the request being answered, for its answer's `X-Request-Id`.
    private var currentRequestID: String?

    init(remoteAddress: String, loop: EventLoop, context: ServerContext, transport: any Transport) {
        fd = transport.fd
        self.transport = transport
        isHandshaking = !(transport is PlainTransport)
        handshakeDeadline = loop.now + context.headerTimeout
        self.remoteAddress = remoteAddress
        self.loop = loop
        self.context = context
        machine = ServerConnectionStateMachine(
            limits: context.configuration.limits,
            timeouts: .init(header: context.headerTimeout, request: context.requestTimeout, idle: context.idleTimeout), now: loop.now)
    }

    func register() throws(SystemError) {
        token = try loop.register(fd, interest: interest, handler: self)
    }

    private var hasPendingOutput: Bool { outputOffset < output.count }

    // MARK: Events

    /// Any event may be the one a pending handshake, read or write waited for: TLS may need
    /// to read in order to write, and the other way round.
    func handleEvents(_ events: UInt32) {
        let waited = transportWants
        transportWants = Interest.none
        if isHandshaking {
            do {
                switch try transport.handshake() {
                case .count: isHandshaking = false
                case .wantRead: transportWants = Interest.read
                case .wantWrite: transportWants = Interest.write
                case .eof:
                    close()
                    return
                }
            } catch {
                // A client that cannot speak TLS to us: nothing to answer it with.
                close()
                return
            }
            if isHandshaking {
                updateInterest()
                return
            }
        }
        if hasPendingOutput && (events & Interest.write != 0 || waited != Interest.none) { flush() }
        if isClosed { return }
        if events & Interest.readable != 0 || waited != Interest.none || transport.hasBufferedInput { readAvailable() }
        updateInterest()
    }

    /// Reads until the socket has no more (a short read says so; TLS bytes already decrypted
    /// are picked up through `hasBufferedInput`), at most 8 reads at a time so that one
    /// connection does not hold the loop.
    private func readAvailable() {
        for _ in 0..<8 {
            if isClosed || !machine.wantsToRead { return }
            let result: TransportResult
            do {
                result = try transport.read(into: loop.readBuffer)
            } catch {
                close()
                return
            }
            switch result {
            case .count(let count):
                run(machine.received(UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count]), now: loop.now))
                if count < loop.readBuffer.count { return }
            case .wantRead:
                return
            case .wantWrite:
                transportWants |= Interest.write
                return
            case .eof:
                run(machine.peerClosed(hasPendingOutput: hasPendingOutput))
                return
            }
        }
    }

    /// Called by `HTTPResponder` on the loop thread.
    func deliver(_ response: HTTPResponse) {
        guard !isClosed else { return }
        run(machine.responseReady(response, isDraining: context.isDraining.load(ordering: .relaxed), hasPendingOutput: hasPendingOutput))
    }

    func handleTick(now: UInt64) {
        guard !isClosed else { return }
        // A TLS handshake gets the time a request's head gets: a client that connects and
        // stalls before HTTP does not hold a connection until the idle timeout.
        if isHandshaking && now >= handshakeDeadline {
            close()
            return
        }
        run(machine.tick(now: now, hasPendingOutput: hasPendingOutput))
    }

    /// On shutdown: close now when nothing is in progress (or when forced); otherwise the
    /// answer being prepared is the last.
    func drain(force: Bool) {
        guard !isClosed else { return }
        run(machine.drain(force: force, hasPendingOutput: hasPendingOutput))
    }

    // MARK: Actions

    private func run(_ actions: [ServerConnectionStateMachine.Action]) {
        pendingActions += actions
        guard !isRunningActions else { return }
        isRunningActions = true
        while !pendingActions.isEmpty && !isClosed {
            perform(pendingActions.removeFirst())
        }
        // Kept: a request's actions would otherwise allocate this list anew each time.
        pendingActions.removeAll(keepingCapacity: true)
        isRunningActions = false
        updateInterest()
    }

    private func perform(_ action: ServerConnectionStateMachine.Action) {
        switch action {
        case .dispatch(var request):
            request.remoteAddress = context.configuration.clientAddress?(remoteAddress, request.headers) ?? remoteAddress
            currentRequestID = request.id
            dispatch(request)
        case .send(var response, let version, let isHead, let closing):
            if response.headers["x-request-id"] == nil {
                response.headers.add(lowercasedName: "x-request-id", value: currentRequestID ?? RequestID.make())
            }
            currentRequestID = nil
            HTTPResponseWriter.write(response, to: &output, isHead: isHead, closing: closing, version: version, date: loop.dateCache.text)
            flush()
        case .sendContinue:
            output.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8)
            flush()
        case .shutdownWrite:
            shutdown(fd, Int32(SHUT_WR))
        case .close:
            close()
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        switch context.router.withLock({ $0.match(method: request.head.method, path: request.head.path) }) {
        case .notFound:
            context.configuration.unrouted(request, 404)
            deliver(HTTPErrorBody.response(.notFound, message: "no route for \(request.head.path)"))
        case .methodNotAllowed(let allowed):
            context.configuration.unrouted(request, 405)
            var response = HTTPErrorBody.response(.methodNotAllowed, message: "method \(request.head.method) is not allowed")
            response.headers.add(name: "allow", value: allowed.map(\.rawValue).joined(separator: ", "))
            deliver(response)
        case .handler(.immediate(let handler)):
            deliver(handler(request))
        case .handler(.deferred(let handler)):
            handler(request, HTTPResponder(connection: self, loop: loop))
        case .handler(.async(let handler)):
            let responder = HTTPResponder(connection: self, loop: loop)
            Task { responder.respond(await handler(request)) }
        }
    }

    // MARK: Output

    private func flush() {
        while outputOffset < output.count && !isClosed {
            let result: TransportResult
            do {
                result = try output.withUnsafeBytes { raw in try transport.write(UnsafeRawBufferPointer(rebasing: raw[outputOffset...])) }
            } catch {
                close()
                return
            }
            switch result {
            case .count(let count):
                outputOffset += count
                machine.wrote(now: loop.now)
            case .wantRead:
                transportWants |= Interest.read
                updateInterest()
                return
            case .wantWrite, .eof:
                updateInterest()
                return
            }
        }
        if isClosed { return }
        output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
        outputOffset = 0
        run(machine.outputFlushed(now: loop.now))
    }

    private func updateInterest() {
        guard !isClosed else { return }
        var wanted = transportWants
        if isHandshaking {
            if wanted == Interest.none { wanted = Interest.read }
        } else {
            if machine.wantsToRead && output.count - outputOffset <= Self.maxBufferedOutput { wanted |= Interest.read }
            if hasPendingOutput { wanted |= Interest.write }
            // Decrypted bytes already in the session (a pipelined request) raise no event.
            if machine.wantsToRead, transport.hasBufferedInput {
                let connection = LoopBound(value: self)
                loop.execute {
                    if !connection.value.isClosed { connection.value.handleEvents(0) }
                }
            }
        }
        if wanted != interest {
            interest = wanted
            loop.modify(fd, token: token, interest: wanted)
        }
    }

    private func close() {
        guard !isClosed else { return }
        isClosed = true
        // Counted out before the peer can see the close, so the count is never behind what a
        // client observes.
        context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
        loop.deregister(fd, token: token)
        transport.close()
    }
}
