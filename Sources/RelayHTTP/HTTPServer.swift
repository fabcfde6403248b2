import CSystem
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking HTTP/1.1 server: one epoll loop per core. The first loop accepts and deals
/// connections out round robin, so load spreads evenly whatever the arrival pattern; each
/// loop answers its connections on its own thread.
package final class HTTPServer: Sendable {
    /// Limits and timeouts; the defaults are docs/interface.md's.
    package struct Configuration: Sendable {
        package var address: HostAndPort
        package var limits: HTTPRequestParser.Limits
        /// A request head must arrive within this, from its first byte (408 after).
        package var headerTimeout: Duration
        /// A whole request (head and body) must arrive within this, from its first byte (408 after).
        package var requestTimeout: Duration
        /// A keep-alive connection with nothing to do is closed after this.
        package var idleTimeout: Duration
        /// Connections beyond this are answered 503 and closed.
        package var maxConnections: Int
        /// On shutdown, in-flight requests get this long to finish.
        package var drainTimeout: Duration
        /// Event loop threads; 0 means one per core.
        package var loopCount: Int
        /// Told (at most once per 10 s) when connections cannot be accepted, with the reason.
        package var acceptFailure: @Sendable (String) -> Void
        /// Told of each request no route takes, with its status (404 or 405).
        package var unrouted: @Sendable (HTTPRequest, Int) -> Void = { _, _ in }
        /// TLS for every accepted connection (nil: plain HTTP).
        package var tls: (any ServerTransportFactory)?
        /// The client's address given the peer's and the headers (a trusted proxy's
        /// `X-Forwarded-For`); nil: the peer's.
        package var clientAddress: (@Sendable (String, HTTPHeaders) -> String)?

        package init(
            address: HostAndPort = HostAndPort(host: "127.0.0.1", port: 8080),
            limits: HTTPRequestParser.Limits = .init(), headerTimeout: Duration = .seconds(10),
            requestTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60), maxConnections: Int = 4096,
            drainTimeout: Duration = .seconds(10), loopCount: Int = 0, acceptFailure: @escaping @Sendable (String) -> Void = { _ in },
            clientAddress: (@Sendable (String, HTTPHeaders) -> String)? = nil
        ) {
            self.clientAddress = clientAddress
            self.address = address
            self.limits = limits
            self.headerTimeout = headerTimeout
            self.requestTimeout = requestTimeout
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
            self.drainTimeout = drainTimeout
            self.loopCount = loopCount
            self.acceptFailure = acceptFailure
        }
    }

    /// The configuration the server runs with.
    package let configuration: Configuration
    /// The port really bound (useful with port 0).
    package let port: Int
    private let context: ServerContext
    /// The loops that serve connections (shared with an `HTTPClient` when given).
    package let group: EventLoopGroup
    private let ownsGroup: Bool
    private let acceptor: LoopBound<Acceptor>
    private let isStopped = Mutex(false)

    /// Binds the address and starts serving `router` at once, on `group`'s loops or on loops
    /// of its own (`configuration.loopCount`).
    package init(configuration: Configuration, router: Router, group: EventLoopGroup? = nil) throws {
        self.configuration = configuration
        let loopCount = configuration.loopCount > 0 ? configuration.loopCount : ProcessInfo.processInfo.activeProcessorCount
        let (fd, port) = try SocketFactory.listen(on: configuration.address)
        if let group {
            self.group = group
            ownsGroup = false
        } else {
            do {
                self.group = try EventLoopGroup(count: loopCount, name: "happyrelay-loop")
            } catch {
                Syscall.close(fd)
                throw error
            }
            ownsGroup = true
        }
        self.port = port
        let context = ServerContext(configuration: configuration, router: router)
        self.context = context
        let acceptor = LoopBound(value: Acceptor(loop: self.group.loops[0], listenFD: fd, group: self.group, context: context))
        self.acceptor = acceptor
        acceptor.value.loop.execute { acceptor.value.start() }
    }

    /// Serves `router` from now on; requests already dispatched finish with their handlers.
    package func replaceRouter(_ router: Router) {
        context.router.withLock { $0 = router }
    }

    /// Connections currently open.
    package var connectionCount: Int { context.activeConnections.load(ordering: .relaxed) }

    /// Stops accepting, lets in-flight requests finish (bounded by the drain timeout), then
    /// closes every connection and stops the loops.
    package func shutdown() async {
        let alreadyStopped = isStopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        if alreadyStopped { return }
        context.isDraining.store(true, ordering: .releasing)
        // The listening socket is closed at once, so that new connections are refused rather
        // than left waiting in the backlog.
        let acceptor = self.acceptor
        await acceptor.value.loop.submit { acceptor.value.stop() }
        for loop in group.loops {
            await loop.submit { loop.drainConnections(force: false) }
        }
        let deadline = ContinuousClock.now.advanced(by: configuration.drainTimeout)
        while context.activeConnections.load(ordering: .acquiring) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        for loop in group.loops {
            await loop.submit { loop.drainConnections(force: true) }
        }
        if ownsGroup { group.shutdown() }
    }
}

/// State shared by every loop of one server.
final class ServerContext: Sendable {
    let configuration: HTTPServer.Configuration
    let router: Mutex<Router>
    let activeConnections = Atomic<Int>(0)
    let isDraining = Atomic<Bool>(false)
    let headerTimeout: UInt64
    let requestTimeout: UInt64
    let idleTimeout: UInt64

    init(configuration: HTTPServer.Configuration, router: Router) {
        self.configuration = configuration
        self.router = Mutex(router)
        headerTimeout = configuration.headerTimeout.nanoseconds
        requestTimeout = configuration.requestTimeout.nanoseconds
        idleTimeout = configuration.idleTimeout.nanoseconds
    }
}

extension Duration {
    /// Whole nanoseconds, 0 for negative durations.
    package var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

extension EventLoop {
    /// Closes idle connections (or, with `force`, every connection) on this loop.
    func drainConnections(force: Bool) {
        for case let connection as HTTPServerConnection in registeredHandlers {
            connection.drain(force: force)
        }
    }
}

/// Accepts connections on one loop and deals them out to every loop, round robin.
///
/// When descriptors run out (EMFILE, ENFILE) a pending connection cannot be taken, so epoll
/// reports the listener ready again at once: the acceptor sheds one connection with a
/// reserved descriptor (the client sees it closed instead of hanging), stops watching the
/// listener for a moment, and reports the failure at most once per interval.
final class Acceptor: EventLoopHandler {
    static let pauseOnExhaustion: UInt64 = 100_000_000
    static let reportInterval: UInt64 = 10_000_000_000

    let loop: EventLoop
    private let listenFD: Int32
    private let group: EventLoopGroup
    private let context: ServerContext
    private var token: UInt64 = 0
    private var hostBuffer = [CChar](repeating: 0, count: 64)
    /// A descriptor held back so that one connection can still be accepted (and closed) when
    /// the process has none left.
    private var reserveFD: Int32 = -1
    private var pausedUntil: UInt64?
    private var lastReport: UInt64?
    private var unreportedFailures = 0

    init(loop: EventLoop, listenFD: Int32, group: EventLoopGroup, context: ServerContext) {
        self.loop = loop
        self.listenFD = listenFD
        self.group = group
        self.context = context
    }

    func start() {
        reserveFD = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
        token = (try? loop.register(listenFD, interest: UInt32(csystem_epollin), handler: self)) ?? 0
    }

    /// Stops accepting and closes the listening socket.
    func stop() {
        if token != 0 { loop.deregister(listenFD, token: token) }
        token = 0
        Syscall.close(listenFD)
        if reserveFD >= 0 { Syscall.close(reserveFD) }
        reserveFD = -1
    }

    func handleEvents(_ events: UInt32) {
        guard pausedUntil == nil else { return }
        for _ in 0..<64 {
            let fd = hostBuffer.withUnsafeMutableBufferPointer { csystem_accept(listenFD, $0.baseAddress, 64) }
            if fd < 0 {
                let code = errno
                if code == EMFILE || code == ENFILE { exhausted(code) }
                return
            }
            let remote = hostBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            SocketFactory.setNoDelay(fd)
            let active = context.activeConnections.wrappingAdd(1, ordering: .relaxed).newValue
            if active > context.configuration.maxConnections || context.isDraining.load(ordering: .relaxed) {
                refuse(fd)
                continue
            }
            let target = group.next()
            if target === loop {
                Self.open(fd, remote: remote, on: target, context: context)
            } else {
                let context = context
                target.execute { Self.open(fd, remote: remote, on: target, context: context) }
            }
        }
    }

    /// Out of descriptors: shed one waiting connection, pause, report.
    private func exhausted(_ code: Int32) {
        if reserveFD >= 0 {
            Syscall.close(reserveFD)
            let shed = accept(listenFD, nil, nil)
            if shed >= 0 { Syscall.close(shed) }
            reserveFD = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
        }
        pausedUntil = loop.now + Self.pauseOnExhaustion
        if token != 0 { loop.modify(listenFD, token: token, interest: Interest.none) }
        unreportedFailures += 1
        if lastReport.map({ loop.now - $0 >= Self.reportInterval }) ?? true {
            let repeated = unreportedFailures > 1 ? " (\(unreportedFailures) times since the last report)" : ""
            context.configuration.acceptFailure(
                "cannot accept connections: \(String(cString: strerror(code)))\(repeated); raise the open-file limit or lower --max-connections")
            lastReport = loop.now
            unreportedFailures = 0
        }
    }

    /// Starts serving an accepted socket on its loop (called on that loop).
    static func open(_ fd: Int32, remote: String, on loop: EventLoop, context: ServerContext) {
        let transport: any Transport
        do {
            transport = try context.configuration.tls?.makeServerTransport(fd: fd) ?? PlainTransport(fd: fd)
        } catch {
            context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
            Syscall.close(fd)
            return
        }
        let connection = HTTPServerConnection(remoteAddress: remote, loop: loop, context: context, transport: transport)
        do {
            try connection.register()
        } catch {
            context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
            transport.close()
        }
    }

    /// Beyond the connection cap: a best-effort 503 and close.
    private func refuse(_ fd: Int32) {
        var bytes: [UInt8] = []
        HTTPResponseWriter.write(
            HTTPErrorBody.response(.serviceUnavailable, message: "too many connections"), to: &bytes, closing: true,
            date: loop.dateCache.text)
        _ = bytes.withUnsafeBytes { try? Syscall.write(fd, $0) }
        shutdown(fd, Int32(SHUT_WR))
        Syscall.close(fd)
        context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
    }

    func handleTick(now: UInt64) {
        guard let until = pausedUntil, now >= until else { return }
        pausedUntil = nil
        if token != 0 { loop.modify(listenFD, token: token, interest: UInt32(csystem_epollin)) }
        handleEvents(UInt32(csystem_epollin))
    }
}
