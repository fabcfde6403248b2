import Foundation
import Synchronization

/// Runs blocking work (processes, sockets, libpq) on a thread of its own, off the cooperative
/// pool: a pool thread blocked for seconds starves every other test of the run (the pool has
/// as many threads as the machine has cores). The work stays in the calling task (a task
/// executor of its own), so an `#expect` inside it is recorded against the test that runs it.
package func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    let executor = ThreadExecutor()
    defer { executor.stop() }
    return try await withTaskExecutorPreference(executor) { try body() }
}

/// A task executor that runs its jobs on one thread of its own, until stopped.
private final class ThreadExecutor: TaskExecutor, Sendable {
    private let jobs = Mutex<(queue: [UnownedJob], isStopped: Bool)>(([], false))
    private let available = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [self] in run() }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func enqueue(_ job: UnownedJob) {
        jobs.withLock { $0.queue.append(job) }
        available.signal()
    }

    func stop() {
        jobs.withLock { $0.isStopped = true }
        available.signal()
    }

    private func run() {
        while true {
            available.wait()
            let next: UnownedJob?? = jobs.withLock { jobs in
                if !jobs.queue.isEmpty { return jobs.queue.removeFirst() }
                return jobs.isStopped ? .some(nil) : nil
            }
            switch next {
            case .some(.some(let job)): job.runSynchronously(on: asUnownedTaskExecutor())
            case .some(.none): return
            case .none: continue
            }
        }
    }
}
