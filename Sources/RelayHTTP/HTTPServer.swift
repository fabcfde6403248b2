import CSystem
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking HTTP/1.1 server: one epoll loop per core. The first loop accepts and deals
/// connections out round robin, so load spreads evenly whatever the arrival pattern; each
/// loop answers its connections on its own thread.
package final class HTTPServer: Sendable {
    /// Limits and timeouts; the defaults are interface.md's.
    package struct Configuration: Sendable {
        package var address: HostAndPort
        package var limits: HTTPRequestParser.Limits
        /// A request head must arrive within this (408 after).
        package var headerTimeout: Duration
        /// A keep-alive connection with nothing to do is closed after this.
        package var idleTimeout: Duration
        /// Connections beyond this are answered 503 and closed.
        package var maxConnections: Int
        /// On shutdown, in-flight requests get this long to finish.
        package var drainTimeout: Duration
        /// Event loop threads; 0 means one per core.
        package var loopCount: Int

        package init(
            address: HostAndPort = HostAndPort(host: "127.0.0.1", port: 8080),
            limits: HTTPRequestParser.Limits = .init(), headerTimeout: Duration = .seconds(10),
            idleTimeout: Duration = .seconds(60), maxConnections: Int = 4096, drainTimeout: Duration = .seconds(10),
            loopCount: Int = 0
        ) {
            self.address = address
            self.limits = limits
            self.headerTimeout = headerTimeout
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
            self.drainTimeout = drainTimeout
            self.loopCount = loopCount
        }
    }

    /// The configuration the server runs with.
    package let configuration: Configuration
    /// The port really bound (useful with port 0).
    package let port: Int
    private let context: ServerContext
    private let group: EventLoopGroup
    private let acceptor: LoopBound<Acceptor>
    private let isStopped = Mutex(false)

    /// Binds the address and starts serving `router` at once.
    package init(configuration: Configuration, router: Router) throws {
        self.configuration = configuration
        let loopCount = configuration.loopCount > 0 ? configuration.loopCount : ProcessInfo.processInfo.activeProcessorCount
        let (fd, port) = try SocketFactory.listen(on: configuration.address)
        do {
            group = try EventLoopGroup(count: loopCount, name: "happyrelay-http")
        } catch {
            Syscall.close(fd)
            throw error
        }
        self.port = port
        let context = ServerContext(configuration: configuration, router: router)
        self.context = context
        let acceptor = LoopBound(value: Acceptor(loop: group.loops[0], listenFD: fd, group: group, context: context))
        self.acceptor = acceptor
        acceptor.value.loop.execute { acceptor.value.start() }
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
            loop.execute { loop.drainConnections(force: true) }
        }
        group.shutdown()
    }
}

/// State shared by every loop of one server.
final class ServerContext: Sendable {
    let configuration: HTTPServer.Configuration
    let router: Router
    let activeConnections = Atomic<Int>(0)
    let isDraining = Atomic<Bool>(false)
    let headerTimeout: UInt64
    let idleTimeout: UInt64

    init(configuration: HTTPServer.Configuration, router: Router) {
        self.configuration = configuration
        self.router = router
        headerTimeout = configuration.headerTimeout.nanoseconds
        idleTimeout = configuration.idleTimeout.nanoseconds
    }
}

extension Duration {
    var nanoseconds: UInt64 {
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
final class Acceptor: EventLoopHandler {
    let loop: EventLoop
    private let listenFD: Int32
    private let group: EventLoopGroup
    private let context: ServerContext
    private var token: UInt64 = 0
    private var hostBuffer = [CChar](repeating: 0, count: 64)

    init(loop: EventLoop, listenFD: Int32, group: EventLoopGroup, context: ServerContext) {
        self.loop = loop
        self.listenFD = listenFD
        self.group = group
        self.context = context
    }

    func start() {
        token = (try? loop.register(listenFD, interest: UInt32(csystem_epollin), handler: self)) ?? 0
    }

    /// Stops accepting and closes the listening socket.
    func stop() {
        if token != 0 { loop.deregister(listenFD, token: token) }
        token = 0
        Syscall.close(listenFD)
    }

    func handleEvents(_ events: UInt32) {
        for _ in 0..<64 {
            let fd = hostBuffer.withUnsafeMutableBufferPointer { csystem_accept(listenFD, $0.baseAddress, 64) }
            if fd < 0 { return }
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

    /// Starts serving an accepted socket on its loop (called on that loop).
    static func open(_ fd: Int32, remote: String, on loop: EventLoop, context: ServerContext) {
        let connection = HTTPServerConnection(fd: fd, remoteAddress: remote, loop: loop, context: context)
        do {
            try connection.register()
        } catch {
            context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
            Syscall.close(fd)
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

    func handleTick(now: UInt64) {}
}
