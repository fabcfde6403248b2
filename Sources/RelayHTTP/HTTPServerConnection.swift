#if canImport(Glibc)
import Glibc
#endif

/// What answering a request needs to know of it: small and free of references, so it is
/// cheap to carry to wherever the answer is made.
struct Exchange: Sendable {
    let version: HTTPVersion
    let isHead: Bool
    let keepAlive: Bool

    init(_ head: HTTPRequestHead) {
        version = head.version
        isHead = head.method == .head
        keepAlive = head.keepAlive
    }
}

/// One accepted connection: reads, parses, dispatches requests in order, writes responses,
/// and enforces its deadlines. Lives on one loop and is touched only there.
final class HTTPServerConnection: EventLoopHandler {
    private static let maxQueuedRequests = 16
    private static let maxBufferedOutput = 1 << 20
    private static let lingerTimeout: UInt64 = 2_000_000_000

    private let fd: Int32
    private let remoteAddress: String
    // Strong: the loop drops its reference when the connection closes, which ends the cycle.
    private let loop: EventLoop
    private let context: ServerContext
    private var token: UInt64 = 0
    private var interest = Interest.read

    private var parser: HTTPRequestParser
    /// Reused for every read, so parsing allocates no event list.
    private var events: [HTTPRequestParser.Event] = []
    private var partialHead: HTTPRequestHead?
    private var partialBody: [UInt8] = []
    private var continueSent = false
    private var queued: [HTTPRequest] = []
    private var isHandling = false
    private var parseError: HTTPParseError?
    private var peerFinishedSending = false
    private var hasReceivedRequest = false

    private var output: [UInt8] = []
    private var outputOffset = 0
    private var closeAfterWrite = false
    private var isLingering = false
    private var isClosed = false

    /// When the first byte of the request being read arrived.
    private var requestStarted: UInt64
    private var lastActivity: UInt64

    init(fd: Int32, remoteAddress: String, loop: EventLoop, context: ServerContext) {
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.loop = loop
        self.context = context
        parser = HTTPRequestParser(limits: context.configuration.limits)
        let now = loop.now
        requestStarted = now
        lastActivity = now
    }

    func register() throws(SystemError) {
        token = try loop.register(fd, interest: interest, handler: self)
    }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        if events & Interest.write != 0 { flush() }
        if isClosed { return }
        if events & Interest.readable != 0 {
            readAvailable()
        }
    }

    private func readAvailable() {
        for _ in 0..<8 {
            if isClosed || interest & Interest.read == 0 { return }
            let result: IOResult
            do {
                result = try Syscall.read(fd, loop.readBuffer)
            } catch {
                close()
                return
            }
            switch result {
            case .count(let count):
                lastActivity = loop.now
                if isLingering { continue }
                // These bytes start a request: its header and request deadlines run from here.
                if parser.isIdle { requestStarted = lastActivity }
                received(UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count]))
                if count < loop.readBuffer.count { return }
            case .wouldBlock:
                return
            case .eof:
                peerFinishedSending = true
                if isLingering || (!isHandling && queued.isEmpty && outputOffset == output.count) {
                    close()
                } else {
                    updateInterest()
                }
                return
            }
        }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard parseError == nil else { return }
        events.removeAll(keepingCapacity: true)
        do {
            try parser.feed(bytes, into: &events)
        } catch {
            parseError = error
            updateInterest()
            processQueue()
            return
        }
        parseError = parser.error
        for event in events {
            switch event {
            case .head(let head):
                hasReceivedRequest = true
                partialHead = head
                partialBody = []
                continueSent = false
            case .body(let bytes):
                if partialBody.isEmpty { partialBody = bytes } else { partialBody.append(contentsOf: bytes) }
            case .end:
                if let head = partialHead {
                    queued.append(HTTPRequest(head: head, body: partialBody, remoteAddress: remoteAddress))
                }
                partialHead = nil
                partialBody = []
            }
        }
        // The rest of this read began the next (pipelined) request.
        if case .end? = events.last, !parser.isIdle { requestStarted = lastActivity }
        processQueue()
    }

    // MARK: Dispatch

    /// Answers queued requests in order, one at a time; then any parse error; then a pending 100-continue.
    private func processQueue() {
        while !isHandling && !closeAfterWrite && !isClosed {
            if !queued.isEmpty {
                dispatch(queued.removeFirst())
                continue
            }
            if let error = parseError {
                send(
                    HTTPErrorBody.response(error.status, message: error.message), version: .http1_1, isHead: false,
                    closing: true)
                return
            }
            if let head = partialHead, head.expectsContinue, !continueSent, partialBody.isEmpty {
                // RFC 9110 §10.1.1: tell the client to send the body it is holding back.
                continueSent = true
                output.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8)
                flush()
            }
            if peerFinishedSending && parser.isIdle && outputOffset == output.count {
                close()
            }
            break
        }
        updateInterest()
    }

    private func dispatch(_ request: HTTPRequest) {
        let exchange = Exchange(request.head)
        switch context.router.match(method: request.head.method, path: request.head.path) {
        case .notFound:
            respond(HTTPErrorBody.response(.notFound, message: "no route for \(request.head.path)"), to: exchange)
        case .methodNotAllowed(let allowed):
            var response = HTTPErrorBody.response(.methodNotAllowed, message: "method \(request.head.method) is not allowed")
            response.headers.add(name: "allow", value: allowed.map(\.rawValue).joined(separator: ", "))
            respond(response, to: exchange)
        case .handler(.immediate(let handler)):
            respond(handler(request), to: exchange)
        case .handler(.deferred(let handler)):
            isHandling = true
            isInsideHandler = true
            handler(request, HTTPResponder(connection: self, loop: loop, exchange: exchange))
            isInsideHandler = false
            if let response = inlineResponse {
                inlineResponse = nil
                isHandling = false
                respond(response, to: exchange)
            }
        case .handler(.async(let handler)):
            isHandling = true
            let responder = HTTPResponder(connection: self, loop: loop, exchange: exchange)
            Task { responder.respond(await handler(request)) }
        }
    }

    /// True while a deferred handler runs on this thread: a response given then is written
    /// without a hop through the loop's queue.
    private(set) var isInsideHandler = false
    private var inlineResponse: HTTPResponse?

    /// Called by `HTTPResponder` on the loop thread.
    func deliver(_ response: HTTPResponse, for exchange: Exchange) {
        if isInsideHandler {
            inlineResponse = response
        } else {
            finishHandling(response, for: exchange)
        }
    }

    private func finishHandling(_ response: HTTPResponse, for exchange: Exchange) {
        isHandling = false
        guard !isClosed else { return }
        respond(response, to: exchange)
        processQueue()
    }

    private func respond(_ response: HTTPResponse, to exchange: Exchange) {
        let closing =
            !exchange.keepAlive || context.isDraining.load(ordering: .relaxed)
            || (peerFinishedSending && queued.isEmpty && parser.isIdle) || response.headers["connection"] == "close"
        send(response, version: exchange.version, isHead: exchange.isHead, closing: closing)
    }

    private func send(_ response: HTTPResponse, version: HTTPVersion, isHead: Bool, closing: Bool) {
        HTTPResponseWriter.write(
            response, to: &output, isHead: isHead, closing: closing, version: version, date: loop.dateCache.text)
        if closing { closeAfterWrite = true }
        flush()
    }

    // MARK: Output

    private func flush() {
        while outputOffset < output.count && !isClosed {
            let result: IOResult
            do {
                result = try output.withUnsafeBytes { raw throws(SystemError) in
                    try Syscall.write(fd, UnsafeRawBufferPointer(rebasing: raw[outputOffset...]))
                }
            } catch {
                close()
                return
            }
            switch result {
            case .count(let count):
                outputOffset += count
                lastActivity = loop.now
            case .wouldBlock, .eof:
                updateInterest()
                return
            }
        }
        if isClosed { return }
        output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
        outputOffset = 0
        if closeAfterWrite && !isLingering { beginLingeringClose() }
        updateInterest()
    }

    /// Half-closes and reads until the peer closes (or a short deadline), so that unread
    /// request bytes do not turn the close into a reset that destroys the answer.
    private func beginLingeringClose() {
        isLingering = true
        lastActivity = loop.now
        shutdown(fd, Int32(SHUT_WR))
        if peerFinishedSending { close() }
    }

    private func updateInterest() {
        guard !isClosed else { return }
        var wanted = Interest.none
        let backlogged = queued.count >= Self.maxQueuedRequests || output.count - outputOffset > Self.maxBufferedOutput
        if isLingering || (!peerFinishedSending && parseError == nil && !backlogged && !closeAfterWrite) {
            wanted |= Interest.read
        }
        if outputOffset < output.count { wanted |= Interest.write }
        if wanted != interest {
            interest = wanted
            loop.modify(fd, token: token, interest: wanted)
        }
    }

    // MARK: Deadlines and closing

    /// Nanoseconds from `start` to `now`, never negative.
    private func elapsed(_ now: UInt64, since start: UInt64) -> UInt64 { now > start ? now - start : 0 }

    func handleTick(now: UInt64) {
        guard !isClosed else { return }
        if isLingering {
            if elapsed(now, since: lastActivity) > Self.lingerTimeout { close() }
            return
        }
        if outputOffset < output.count {
            // A peer that stopped reading our answer.
            if elapsed(now, since: lastActivity) > context.idleTimeout { close() }
            return
        }
        if isHandling || !queued.isEmpty || closeAfterWrite { return }
        if parser.isReadingHead || (!hasReceivedRequest && parser.isIdle) {
            if elapsed(now, since: requestStarted) > context.headerTimeout { timeOut() }
        } else if !parser.isIdle {
            // A body that arrives too slowly, or stopped arriving.
            if elapsed(now, since: requestStarted) > context.requestTimeout || elapsed(now, since: lastActivity) > context.idleTimeout {
                timeOut()
            }
        } else if elapsed(now, since: lastActivity) > context.idleTimeout {
            close()
        }
    }

    private func timeOut() {
        parseError = nil
        partialHead = nil
        send(
            HTTPErrorBody.response(.requestTimeout, message: "request not received in time"), version: .http1_1,
            isHead: false, closing: true)
        updateInterest()
    }

    /// On shutdown: close now when nothing is in progress (or when forced); otherwise the
    /// response being prepared is the last.
    func drain(force: Bool) {
        if force || (!isHandling && queued.isEmpty && parser.isIdle && outputOffset == output.count) {
            close()
        }
    }

    private func close() {
        guard !isClosed else { return }
        isClosed = true
        // Counted out before the peer can see the close, so the count is never behind what a
        // client observes.
        context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
        loop.deregister(fd, token: token)
        Syscall.close(fd)
    }
}
