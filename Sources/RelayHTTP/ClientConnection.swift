import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One outbound connection: connect, handshake, then one request at a time. Runs on its
/// loop; `isReusable` and `discard` may be called from any thread.
final class ClientConnection: EventLoopHandler, @unchecked Sendable {
    private enum Phase {
        case connecting
        case handshaking
        case idle
        case exchanging
        case closed
    }

    /// The reason given when a pooled connection was already closed when a request came.
    static let closedBeforeUse = "closed before use"

    let loop: EventLoop
    private let transport: any Transport
    private let idleTimeout: UInt64
    private let reusable = Atomic<Bool>(true)
    // Loop-confined state below.
    private var token: UInt64 = 0
    private var interest = Interest.none
    private var phase = Phase.connecting
    private var deadline: UInt64 = 0
    private var idleSince: UInt64 = 0
    private var connectCompletion: ((Result<Void, HTTPClientError>) -> Void)?
    /// When the TCP connect counts as slow, and whom that is told (once; nil once connected).
    private var slowAt: UInt64 = .max
    private var onSlow: (() -> Void)?
    private var completion: ((Result<HTTPResponseParser.Response, HTTPClientError>) -> Void)?
    private var output: [UInt8] = []
    private var outputOffset = 0
    private var parser = HTTPResponseParser()

    init(transport: any Transport, loop: EventLoop, idleTimeout: UInt64) {
        self.transport = transport
        self.loop = loop
        self.idleTimeout = idleTimeout
    }

    /// False once the peer closed the connection or it failed.
    var isReusable: Bool { reusable.load(ordering: .acquiring) }

    /// Registers and waits for the connect (and handshake) to finish. If the TCP connect has
    /// not finished at `slowAt`, `onSlow` runs once (on the loop's tick, within 100 ms of it).
    func start(
        deadline: UInt64, slowAt: UInt64 = .max, onSlow: (() -> Void)? = nil, completion: @escaping (Result<Void, HTTPClientError>) -> Void
    ) {
        self.deadline = deadline
        self.slowAt = slowAt
        self.onSlow = onSlow
        connectCompletion = completion
        do {
            token = try loop.register(transport.fd, interest: Interest.write, handler: self)
            interest = Interest.write
        } catch {
            finishConnect(.failure(.connectFailed("\(error)")))
        }
    }

    /// Writes a serialized request and calls `completion` with the response.
    func send(
        _ wire: [UInt8], isHead: Bool, deadline: UInt64,
        completion: @escaping (Result<HTTPResponseParser.Response, HTTPClientError>) -> Void
    ) {
        guard phase == .idle else {
            completion(.failure(.connectionClosed(Self.closedBeforeUse)))
            return
        }
        phase = .exchanging
        self.deadline = deadline
        self.completion = completion
        output = wire
        outputOffset = 0
        parser = HTTPResponseParser(isHeadRequest: isHead)
        flush()
        // The answer cannot be there yet: the loop reads when the socket says so. Reading now
        // cost a system call per request that found nothing. Only bytes a TLS session already
        // holds (read ahead, or decrypted and not yet returned) are never signalled by the socket.
        if phase == .exchanging && transport.hasBufferedInput { readAvailable() }
    }

    /// Closes the connection from any thread.
    func discard() {
        reusable.store(false, ordering: .releasing)
        loop.execute { [self] in close() }
    }

    /// Fails whatever is in progress and closes.
    func fail(_ error: HTTPClientError) {
        reusable.store(false, ordering: .releasing)
        onSlow = nil
        if let connectCompletion {
            self.connectCompletion = nil
            connectCompletion(.failure(error))
        }
        if let completion {
            self.completion = nil
            completion(.failure(error))
        }
        close()
    }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        switch phase {
        case .connecting:
            let code = SocketFactory.pendingError(transport.fd)
            if code != 0 {
                fail(.connectFailed(String(cString: strerror(code))))
                return
            }
            phase = .handshaking
            onSlow = nil
            advanceHandshake()
        case .handshaking:
            advanceHandshake()
        case .idle:
            readWhileIdle()
        case .exchanging:
            if events & Interest.write != 0 && outputOffset < output.count { flush() }
            if phase == .exchanging { readAvailable() }
        case .closed:
            return
        }
    }

    func handleTick(now: UInt64) {
        switch phase {
        case .connecting:
            if now > deadline {
                fail(.connectTimedOut)
            } else if now >= slowAt, let onSlow {
                self.onSlow = nil
                onSlow()
            }
        case .handshaking:
            if now > deadline { fail(.connectTimedOut) }
        case .exchanging:
            if now > deadline { fail(.timedOut) }
        case .idle:
            // `now` is read once per loop iteration and may be older than idleSince.
            if now > idleSince && now - idleSince > idleTimeout {
                reusable.store(false, ordering: .releasing)
            }
        case .closed:
            return
        }
    }

    /// Input while idle: TLS session tickets arrive this way after a handshake; data or the end
    /// of the stream means the server closed the connection or broke the protocol.
    private func readWhileIdle() {
        do {
            switch try transport.read(into: loop.readBuffer) {
            case .wantRead, .wantWrite: return
            case .count, .eof: fail(.connectionClosed("closed while idle"))
            }
        } catch {
            fail(.connectionClosed("\(error)"))
        }
    }

    private func advanceHandshake() {
        do {
            switch try transport.handshake() {
            case .count:
                phase = .idle
                idleSince = monotonicNanoseconds()
                setInterest(Interest.read)
                finishConnect(.success(()))
            case .wantRead: setInterest(Interest.read)
            case .wantWrite: setInterest(Interest.write)
            case .eof: fail(.connectFailed("closed during the TLS handshake"))
            }
        } catch {
            fail(.connectFailed("\(error)"))
        }
    }

    private func finishConnect(_ result: Result<Void, HTTPClientError>) {
        guard let connectCompletion else { return }
        self.connectCompletion = nil
        connectCompletion(result)
    }

    private func flush() {
        while outputOffset < output.count {
            let result: TransportResult
            do {
                result = try output.withUnsafeBytes { raw in
                    try transport.write(UnsafeRawBufferPointer(rebasing: raw[outputOffset...]))
                }
            } catch {
                fail(.connectionClosed("\(error)"))
                return
            }
            switch result {
            case .count(let count): outputOffset += count
            case .wantWrite:
                setInterest(Interest.read | Interest.write)
                return
            case .wantRead:
                setInterest(Interest.read)
                return
            case .eof:
                fail(.connectionClosed("peer closed while sending"))
                return
            }
        }
        setInterest(Interest.read)
    }

    private func readAvailable() {
        while phase == .exchanging {
            let result: TransportResult
            do {
                result = try transport.read(into: loop.readBuffer)
            } catch {
                fail(.connectionClosed("\(error)"))
                return
            }
            switch result {
            case .count(let count):
                do {
                    if let response = try parser.feed(UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count])) {
                        complete(response)
                    }
                } catch {
                    fail(.invalidResponse(error.message))
                }
            case .wantRead:
                return
            case .wantWrite:
                setInterest(Interest.read | Interest.write)
                return
            case .eof:
                do {
                    complete(try parser.finish())
                } catch {
                    fail(.connectionClosed(parser.hasStarted ? "response truncated" : "closed before responding"))
                }
                return
            }
        }
    }

    private func complete(_ response: HTTPResponseParser.Response) {
        guard let completion else { return }
        self.completion = nil
        output = []
        if response.keepAlive {
            phase = .idle
            idleSince = monotonicNanoseconds()
            // What a TLS session read ahead behind the answer (a close_notify that ends it, say)
            // the socket will never signal.
            if transport.hasBufferedInput { readWhileIdle() }
        } else {
            reusable.store(false, ordering: .releasing)
            close()
        }
        completion(.success(response))
    }

    private func setInterest(_ wanted: UInt32) {
        guard wanted != interest, phase != .closed else { return }
        interest = wanted
        loop.modify(transport.fd, token: token, interest: wanted)
    }

    private func close() {
        guard phase != .closed else { return }
        phase = .closed
        reusable.store(false, ordering: .releasing)
        if token != 0 { loop.deregister(transport.fd, token: token) }
        transport.close()
    }
}
