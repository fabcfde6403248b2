import Dispatch
import FoundationEssentials
import RelayHTTP
import Synchronization

/// A few threads for work that may block (reads of the relay's database), so that it never
/// runs on an event loop; the work hands its result back to the loop itself.
package final class BlockingWorkers: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var isStopped = false
    }

    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    private let threadCount: Int

    /// Starts `count` threads.
    package init(count: Int = 2, name: String = "happyrelay-lookup") {
        threadCount = max(1, count)
        for index in 0..<threadCount {
            startThread(named: "\(name)-\(index)") { [self] in run() }
        }
    }

    /// Runs `work` on one of the threads, soon.
    package func submit(_ work: @escaping @Sendable () -> Void) {
        state.withLock { $0.jobs.append(work) }
        available.signal()
    }

    /// A route handler that answers from one of these threads: for work that may block (the
    /// admin API's reads and writes, `/metrics`' gauges), never on an event loop nor on Swift's
    /// cooperative pool, whose few threads the shutdown's tasks need too.
    package func handler(_ answer: @escaping @Sendable (HTTPRequest) -> HTTPResponse) -> HTTPHandler {
        .deferred { [self] request, responder in
            submit { responder.respond(answer(request)) }
        }
    }

    /// Ends the threads once the work already submitted is done.
    package func shutdown() {
        state.withLock { $0.isStopped = true }
        for _ in 0..<threadCount { available.signal() }
    }

    private func run() {
        while true {
            available.wait()
            let (job, stop) = state.withLock { state -> ((@Sendable () -> Void)?, Bool) in
                if !state.jobs.isEmpty { return (state.jobs.removeFirst(), false) }
                return (nil, state.isStopped)
            }
            if let job { job() }
            if stop { return }
        }
    }
}
