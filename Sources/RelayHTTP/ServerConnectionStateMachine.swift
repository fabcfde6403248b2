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

/// One server connection's protocol, without I/O (as swift-nio's HTTP server pipeline handler
/// keeps its state): events go in — bytes read, the peer's end of input, an answer ready, the
/// output flushed, a tick, a drain — and actions come out for the connection to carry out.
/// Requests are answered one at a time, in the order they arrived (pipelining).
struct ServerConnectionStateMachine {
    /// What the connection does next.
    enum Action {
        /// Hand a complete request to its handler.
        case dispatch(HTTPRequest)
        /// Write an answer; `closing` marks it the last on this connection.
        case send(HTTPResponse, version: HTTPVersion, isHead: Bool, closing: Bool)
        /// RFC 9110 §10.1.1: tell the client to send the body it is holding back.
        case sendContinue
        /// Everything is written: shut the write side and read until the peer closes, so that
        /// unread request bytes do not turn the close into a reset that destroys the answer.
        case shutdownWrite
        case close
    }

    /// Where the connection is in its life.
    enum Phase: Equatable {
        /// Reading and answering requests.
        case open
        /// The last answer is queued: nothing more is read or dispatched; once it is written,
        /// the write side is shut.
        case finishing
        /// The write side is shut; input is read and dropped until the peer closes or a short
        /// deadline passes.
        case lingering(since: UInt64)
        case closed
    }

    /// Deadlines, in nanoseconds.
    struct Timeouts {
        /// A request's head must arrive within this of its first byte.
        var header: UInt64
        /// A whole request must arrive within this of its first byte.
        var request: UInt64
        /// A connection with nothing to do, or a peer that stopped reading, is closed after this.
        var idle: UInt64
        /// How long a lingering close waits for the peer.
        var linger: UInt64 = 2_000_000_000
    }

    /// Requests received and not yet answered beyond which reading pauses.
    static let maxQueuedRequests = 16

    private(set) var phase = Phase.open
    private var parser: HTTPRequestParser
    private let timeouts: Timeouts
    /// The request whose head has arrived and whose body is arriving.
    private var partial: HTTPRequest?
    private var continueSent = false
    /// Complete requests waiting their turn.
    private var queued: [HTTPRequest] = []
    /// The request being handled.
    private var handling: Exchange?
    /// A framing error, answered once the requests before it are.
    private var parseError: HTTPParseError?
    /// The peer shut its side: no more requests will come.
    private var peerFinished = false
    private var hasReceivedRequest = false
    /// When the first byte of the request being read arrived.
    private var requestStarted: UInt64
    private var lastActivity: UInt64
    /// Reused for every read, so that parsing allocates no event list.
    private var events: [HTTPRequestParser.Event] = []

    init(limits: HTTPRequestParser.Limits, timeouts: Timeouts, now: UInt64) {
        parser = HTTPRequestParser(limits: limits)
        self.timeouts = timeouts
        requestStarted = now
        lastActivity = now
    }

    /// Whether the connection should read: open, not backlogged, and the peer still sending
    /// (or lingering, when input is read and dropped).
    var wantsToRead: Bool {
        switch phase {
        case .open: !peerFinished && parseError == nil && queued.count < Self.maxQueuedRequests
        case .lingering: true
        case .finishing, .closed: false
        }
    }

    /// Whether nothing is in progress: no request being received, handled or waiting.
    var isIdle: Bool { handling == nil && queued.isEmpty && parser.isIdle }

    // MARK: Events

    /// Bytes arrived.
    mutating func received(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> [Action] {
        lastActivity = now
        switch phase {
        case .lingering, .finishing, .closed: return []
        case .open: break
        }
        guard parseError == nil else { return [] }
        // These bytes start a request: its header and request deadlines run from here.
        if parser.isIdle { requestStarted = now }
        events.removeAll(keepingCapacity: true)
        do {
            try parser.feed(bytes, into: &events)
            parseError = parser.error
        } catch {
            parseError = error
        }
        for event in events {
            switch event {
            case .head(let head):
                hasReceivedRequest = true
                // The client's X-Request-Id when safe to log and echo; otherwise the request makes one.
                partial = HTTPRequest(head: head, id: head.headers["x-request-id"].flatMap(RequestID.sanitized))
                continueSent = false
            case .body(let bytes):
                if partial?.body.isEmpty == true { partial?.body = bytes } else { partial?.body.append(contentsOf: bytes) }
            case .end:
                if let partial { queued.append(partial) }
                partial = nil
            }
        }
        // The rest of this read began the next (pipelined) request.
        if case .end? = events.last, !parser.isIdle { requestStarted = now }
        return advance(hasPendingOutput: false)
    }

    /// The peer closed its side (end of input).
    mutating func peerClosed(hasPendingOutput: Bool) -> [Action] {
        peerFinished = true
        switch phase {
        case .lingering: return [.close]
        case .open where isIdle && !hasPendingOutput: return [.close]
        default: return advance(hasPendingOutput: hasPendingOutput)
        }
    }

    /// The handler answered the request being handled.
    mutating func responseReady(_ response: HTTPResponse, isDraining: Bool, hasPendingOutput: Bool) -> [Action] {
        guard case .open = phase, let exchange = handling else { return [] }
        handling = nil
        let closing =
            !exchange.keepAlive || isDraining || (peerFinished && queued.isEmpty && parser.isIdle)
            || response.headers["connection"] == "close"
        var actions: [Action] = [.send(response, version: exchange.version, isHead: exchange.isHead, closing: closing)]
        if closing {
            phase = .finishing
            return actions
        }
        actions += advance(hasPendingOutput: true)
        return actions
    }

    /// Some output was written (the peer is reading).
    mutating func wrote(now: UInt64) {
        lastActivity = now
    }

    /// Every byte of output has been written.
    mutating func outputFlushed(now: UInt64) -> [Action] {
        lastActivity = now
        switch phase {
        case .finishing:
            phase = peerFinished ? .closed : .lingering(since: now)
            return peerFinished ? [.close] : [.shutdownWrite]
        case .open where peerFinished && isIdle:
            phase = .closed
            return [.close]
        default:
            return []
        }
    }

    /// The loop's periodic tick: enforce the deadlines.
    mutating func tick(now: UInt64, hasPendingOutput: Bool) -> [Action] {
        func elapsed(since start: UInt64) -> UInt64 { now > start ? now - start : 0 }
        switch phase {
        case .closed:
            return []
        case .lingering(let since):
            if elapsed(since: since) > timeouts.linger {
                phase = .closed
                return [.close]
            }
            return []
        case .open, .finishing:
            break
        }
        if hasPendingOutput {
            // A peer that stopped reading our answer.
            if elapsed(since: lastActivity) > timeouts.idle {
                phase = .closed
                return [.close]
            }
            return []
        }
        guard case .open = phase, handling == nil, queued.isEmpty else { return [] }
        if parser.isReadingHead || (!hasReceivedRequest && parser.isIdle) {
            if elapsed(since: requestStarted) > timeouts.header { return timeOut() }
        } else if !parser.isIdle {
            // A body that arrives too slowly, or stopped arriving.
            if elapsed(since: requestStarted) > timeouts.request || elapsed(since: lastActivity) > timeouts.idle { return timeOut() }
        } else if elapsed(since: lastActivity) > timeouts.idle {
            phase = .closed
            return [.close]
        }
        return []
    }

    /// On shutdown: close now when nothing is in progress (or when forced); otherwise the
    /// answer being prepared is the last (its `closing` comes from the drain).
    mutating func drain(force: Bool, hasPendingOutput: Bool) -> [Action] {
        guard phase != .closed else { return [] }
        if force || (isIdle && !hasPendingOutput) {
            phase = .closed
            return [.close]
        }
        return []
    }

    // MARK: Transitions

    /// Dispatches the next queued request when none is being handled; then answers a parse
    /// error, or asks for a held-back body.
    private mutating func advance(hasPendingOutput: Bool) -> [Action] {
        guard case .open = phase, handling == nil else { return [] }
        if !queued.isEmpty {
            let request = queued.removeFirst()
            handling = Exchange(request.head)
            return [.dispatch(request)]
        }
        if let error = parseError {
            phase = .finishing
            return [.send(HTTPErrorBody.response(error.status, message: error.message), version: .http1_1, isHead: false, closing: true)]
        }
        if let partial, partial.head.expectsContinue, !continueSent, partial.body.isEmpty {
            continueSent = true
            return [.sendContinue]
        }
        if peerFinished && parser.isIdle && !hasPendingOutput {
            phase = .closed
            return [.close]
        }
        return []
    }

    private mutating func timeOut() -> [Action] {
        parseError = nil
        partial = nil
        phase = .finishing
        return [.send(HTTPErrorBody.response(.requestTimeout, message: "request not received in time"), version: .http1_1, isHead: false, closing: true)]
    }
}
