import CSystem
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking HTTP/1.1 server: one epoll loop per core, each accepting from the shared
/// listening socket and answering its connections on its own thread.
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
    private let acceptors: [LoopBound<Acceptor>]
    private let isStopped = Mutex(false)

    /// Binds the address and starts serving `router` at once.
    package init(configuration: Configuration, router: Router) throws {
        self.configuration = configuration
        let (fd, port) = try SocketFactory.listen(on: configuration.address)
        self.port = port
        let context = ServerContext(configuration: configuration, router: router, listenFD: fd)
        self.context = context
        let loops = configuration.loopCount > 0 ? configuration.loopCount : ProcessInfo.processInfo.activeProcessorCount
        do {
            group = try EventLoopGroup(count: loops, name: "happyrelay-http")
        } catch {
            Syscall.close(fd)
            throw error
        }
        var acceptors: [LoopBound<Acceptor>] = []
        for loop in group.loops {
            let acceptor = Acceptor(loop: loop, context: context)
            acceptors.append(LoopBound(value: acceptor))
        }
        self.acceptors = acceptors
        for acceptor in acceptors {
            acceptor.value.loop.execute { acceptor.value.start() }
        }
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
        for acceptor in acceptors {
            await acceptor.value.loop.submit {
                acceptor.value.stop()
                acceptor.value.loop.drainConnections(force: false)
            }
        }
        // Closed once no loop watches it, so that new connections are refused rather than
        // left waiting in the backlog.
        Syscall.close(context.listenFD)
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
    let listenFD: Int32
    let activeConnections = Atomic<Int>(0)
    let isDraining = Atomic<Bool>(false)
    let headerTimeout: UInt64
    let idleTimeout: UInt64

    init(configuration: HTTPServer.Configuration, router: Router, listenFD: Int32) {
        self.configuration = configuration
        self.router = router
        self.listenFD = listenFD
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

/// Accepts connections from the shared listening socket on one loop.
final class Acceptor: EventLoopHandler {
    let loop: EventLoop
    private let context: ServerContext
    private var token: UInt64 = 0
    private var hostBuffer = [CChar](repeating: 0, count: 64)

    init(loop: EventLoop, context: ServerContext) {
        self.loop = loop
        self.context = context
    }

    func start() {
        // EPOLLEXCLUSIVE: wake one loop per incoming connection, not all of them.
        token =
            (try? loop.register(
                context.listenFD, interest: UInt32(csystem_epollin) | UInt32(csystem_epollexclusive), handler: self))
            ?? 0
    }

    func stop() {
        if token != 0 { loop.deregister(context.listenFD, token: token) }
        token = 0
    }

    func handleEvents(_ events: UInt32) {
        for _ in 0..<64 {
            let fd = hostBuffer.withUnsafeMutableBufferPointer { csystem_accept(context.listenFD, $0.baseAddress, 64) }
            if fd < 0 { return }
            let remote = hostBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            SocketFactory.setNoDelay(fd)
            let active = context.activeConnections.wrappingAdd(1, ordering: .relaxed).newValue
            if active > context.configuration.maxConnections || context.isDraining.load(ordering: .relaxed) {
                refuse(fd)
                continue
            }
            let connection = HTTPServerConnection(fd: fd, remoteAddress: remote, loop: loop, context: context)
            do {
                try connection.register()
            } catch {
                context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
                Syscall.close(fd)
            }
        }
    }

    /// Beyond the connection cap: a best-effort 503 and close.
    private func refuse(_ fd: Int32) {
        var bytes: [UInt8] = []
        HTTPResponseWriter.write(
            HTTPErrorBody.response(.serviceUnavailable, message: "too many connections"), to: &bytes, closing: true,
            date: loop.dateCache.current())
        _ = bytes.withUnsafeBytes { try? Syscall.write(fd, $0) }
        shutdown(fd, Int32(SHUT_WR))
        Syscall.close(fd)
        context.activeConnections.wrappingSubtract(1, ordering: .relaxed)
    }

    func handleTick(now: UInt64) {}
}
