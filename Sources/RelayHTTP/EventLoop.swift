import CSystem
import Dispatch
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Something registered with an event loop: told when its descriptor is ready, and ticked
/// periodically so it can enforce its deadlines. Called only on the loop's thread.
protocol EventLoopHandler: AnyObject {
    func handleEvents(_ events: UInt32)
    func handleTick(now: UInt64)
}

/// Readiness interest bits, as epoll names them.
enum Interest {
    static let read = UInt32(csystem_epollin) | UInt32(csystem_epollrdhup)
    static let write = UInt32(csystem_epollout)
    static let none: UInt32 = 0
    /// Any event that a read should look at: data, end of stream, hang-up or error.
    static let readable =
        UInt32(csystem_epollin) | UInt32(csystem_epollrdhup) | UInt32(csystem_epollhup) | UInt32(csystem_epollerr)
}

/// One epoll reactor on its own thread. Handlers registered with it are touched only on that
/// thread; other threads hand it work with `execute`.
package final class EventLoop: @unchecked Sendable {
    /// How often handlers are ticked for their deadlines.
    static let tickInterval: UInt64 = 100_000_000

    private let epollFD: Int32
    private let wakeFD: Int32
    private let inbox = Mutex<[@Sendable () -> Void]>([])
    private let isStopping = Atomic<Bool>(false)
    private let loopThread = Atomic<UInt>(0)

    /// Whether the caller runs on this loop's thread.
    var isCurrentThread: Bool { loopThread.load(ordering: .acquiring) == UInt(pthread_self()) }
    // Loop-confined state below: only the loop thread reads or writes it.
    private var handlers: [UInt64: any EventLoopHandler] = [:]
    private var nextToken: UInt64 = 1
    private var lastTick: UInt64 = 0
    /// Scratch space for reads, shared by every connection of this loop.
    let readBuffer: UnsafeMutableRawBufferPointer
    var dateCache = HTTPDateCache()
    /// Monotonic nanoseconds, read once per loop iteration (deadlines need no finer grain).
    private(set) var now: UInt64 = monotonicNanoseconds()

    init() throws(SystemError) {
        epollFD = try Syscall.check("epoll_create1") { csystem_epoll_create() }
        wakeFD = try Syscall.check("eventfd") { csystem_eventfd() }
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        _ = try Syscall.check("epoll_ctl") {
            csystem_epoll_add(epollFD, wakeFD, UInt32(csystem_epollin), 0)
        }
    }

    deinit {
        Syscall.close(wakeFD)
        Syscall.close(epollFD)
        readBuffer.deallocate()
    }

    /// Runs `work` on the loop thread soon. Safe from any thread.
    package func execute(_ work: @escaping @Sendable () -> Void) {
        let wasEmpty = inbox.withLock { queue in
            queue.append(work)
            return queue.count == 1
        }
        if wasEmpty { _ = csystem_eventfd_signal(wakeFD) }
    }

    /// Runs `work` on the loop thread and waits for it.
    func submit(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            execute {
                work()
                continuation.resume()
            }
        }
    }

    /// Asks the loop to return from `run` after its current iteration.
    func stop() {
        isStopping.store(true, ordering: .releasing)
        _ = csystem_eventfd_signal(wakeFD)
    }

    func register(_ fd: Int32, interest: UInt32, handler: any EventLoopHandler) throws(SystemError) -> UInt64 {
        let token = nextToken
        nextToken += 1
        _ = try Syscall.check("epoll_ctl") { csystem_epoll_add(epollFD, fd, interest, token) }
        handlers[token] = handler
        return token
    }

    func modify(_ fd: Int32, token: UInt64, interest: UInt32) {
        _ = csystem_epoll_modify(epollFD, fd, interest, token)
    }

    func deregister(_ fd: Int32, token: UInt64) {
        _ = csystem_epoll_remove(epollFD, fd)
        handlers[token] = nil
    }

    /// The handlers currently registered, for sweeps such as a drain.
    var registeredHandlers: [any EventLoopHandler] { Array(handlers.values) }

    /// The reactor: waits for readiness, dispatches, runs queued work, ticks deadlines.
    func run() {
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
        let capacity = 256
        let events = UnsafeMutablePointer<csystem_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !isStopping.load(ordering: .acquiring) {
            let count = csystem_epoll_wait(epollFD, events, Int32(capacity), 100)
            now = monotonicNanoseconds()
            if count > 0 {
                for index in 0..<Int(count) {
                    let event = events[index]
                    if event.token == 0 {
                        csystem_eventfd_drain(wakeFD)
                        runInbox()
                    } else if let handler = handlers[event.token] {
                        handler.handleEvents(event.events)
                    }
                }
            }
            if now &- lastTick >= Self.tickInterval {
                lastTick = now
                dateCache.refresh()
                for handler in handlers.values { handler.handleTick(now: now) }
            }
        }
        runInbox()
    }

    private func runInbox() {
        let work = inbox.withLock { queue in
            let taken = queue
            queue.removeAll(keepingCapacity: true)
            return taken
        }
        for item in work { item() }
    }
}

/// A fixed set of event loops, each on its own thread.
package final class EventLoopGroup: Sendable {
    /// The loops, one per thread.
    package let loops: [EventLoop]
    private let finished: [DispatchSemaphore]
    private let nextIndex = Atomic<Int>(0)

    /// Starts `count` loops (one per core is the usual choice).
    package init(count: Int, name: String = "happyrelay-loop") throws {
        var loops: [EventLoop] = []
        for _ in 0..<max(1, count) { loops.append(try EventLoop()) }
        self.loops = loops
        let finished = loops.map { _ in DispatchSemaphore(value: 0) }
        self.finished = finished
        for (index, loop) in loops.enumerated() {
            let done = finished[index]
            startThread(named: "\(name)-\(index)", stackSize: 1 << 20) {
                loop.run()
                done.signal()
            }
        }
    }

    /// The next loop, round robin.
    package func next() -> EventLoop {
        let index = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
        return loops[index % loops.count]
    }

    /// Stops every loop and waits for its thread to finish.
    package func shutdown() {
        for loop in loops { loop.stop() }
        for done in finished { done.wait() }
    }
}

/// A value handed to a closure that runs on the loop that owns it; the loop's confinement,
/// not the type system, makes that safe.
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
}
