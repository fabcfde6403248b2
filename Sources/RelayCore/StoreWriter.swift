import Dispatch
import FoundationEssentials
import RelayHTTP
import RelayStore
import Synchronization

/// The thread that owns the store: it commits the writes of webhooks that arrive together in
/// one transaction (group commit) before they are answered, records the outcomes of sends,
/// and starts the deliveries that are due (asking the `DispatchScheduler`, handing them to the
/// `DeliveryWorker`). Committed webhooks are answered with one wake-up per event loop per
/// commit.
///
/// The outcome of a send is kept in memory until it is committed, and its room stays busy
/// until then: a delivery is never sent again because its outcome could not be written. While
/// the store cannot be written nothing more is sent; the write is tried again with a backoff,
/// and the failure is logged once per interval.
package final class StoreWriter: Sendable {
    package struct Configuration: Sendable {
        /// Pending deliveries at most; beyond it webhooks are answered 503 (the sender retries).
        package var maxPending = 100_000
        /// Delivered records are deleted after this.
        package var retention: Duration = .seconds(7 * 86_400)
        /// Dead records (which hold personal data) are deleted after this.
        package var deadRetention: Duration = .seconds(30 * 86_400)
        /// A failing store is logged at most once per this interval.
        package var failureLogInterval: Duration = .seconds(10)
        /// Records of each kind one purge deletes at most (about 6 ms of the writer's time on
        /// SQLite, 28 µs a delivery), so that webhooks wait no longer when much is due at once;
        /// while more is due, purges follow each other between commits.
        package var purgeLimit = 200

        package init() {}
    }

    package typealias Completion = @Sendable (Result<StoreOutcome, StoreError>) -> Void

    private struct PendingWrite {
        var write: WebhookWrite
        /// Where the completion runs (nil: on the store thread).
        var loop: EventLoop?
        var completion: Completion
    }

    private enum Job {
        case write(PendingWrite)
        case outcome(DeliveryOutcome)
    }

    private struct Shared {
        var jobs: [Job] = []
        var isStopping = false
    }

    /// How the store's writes are going, on the store thread.
    private struct WriteHealth {
        var failingSince: UnixMilliseconds?
        var lastLogged: UnixMilliseconds?
        var suppressed = 0
        var retryAt: UnixMilliseconds = 0
        var backoff = 0
    }

    private let configuration: Configuration
    private let worker: DeliveryWorker?
    private let logger: Logger
    private let clock: @Sendable () -> UnixMilliseconds
    private let shared = Mutex(Shared())
    private let pending = Atomic<Int>(0)
    private let commitCount = Atomic<Int>(0)
    /// Why writes fail now (nil once one succeeds); a size limit or a deleted file.
    private let failure = Mutex<String?>(nil)
    private let refusal = Mutex<StoreError?>(nil)
    private let wake = DispatchSemaphore(value: 0)
    /// A wake-up is signalled and not yet taken: thousands of webhooks arriving during one
    /// commit signal once, not once each (the thread would then spin through a claim and a
    /// due-time query per stored signal long after the load).
    private let wakeSignalled = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    // Touched by the store thread only, once it runs.
    private let confined: ThreadConfined<(store: any DeliveryStore, scheduler: DispatchScheduler)>

    /// A writer for `store` (touched from now on by the writer's thread only); `worker` sends
    /// due deliveries (nil: nothing is sent, as in tests of the store alone).
    package init(
        store: any DeliveryStore, scheduler: DispatchScheduler, worker: DeliveryWorker?, configuration: Configuration = Configuration(),
        logger: Logger, clock: @escaping @Sendable () -> UnixMilliseconds = currentUnixMilliseconds
    ) {
        confined = ThreadConfined((store, scheduler))
        self.worker = worker
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    /// Transactions committed so far (webhooks that arrive together share one).
    package var commits: Int { commitCount.load(ordering: .relaxed) }

    /// Why new webhooks cannot be accepted now (the queue is full or cannot be written), or nil.
    package var unavailableReason: String? {
        if let refusal = refusal.withLock({ $0 }) { return refusal.description }
        if let failure = failure.withLock({ $0 }) { return "the queue cannot be written: \(failure)" }
        if pending.load(ordering: .relaxed) >= configuration.maxPending { return "the queue is full (\(configuration.maxPending) pending)" }
        return nil
    }

    /// Stores one webhook's writes; `completion` runs once they are committed (or refused), on
    /// `loop` when given.
    package func submit(_ write: WebhookWrite, on loop: EventLoop? = nil, completion: @escaping Completion) {
        let newPending = write.pendingCount
        if newPending > 0 && pending.load(ordering: .relaxed) + newPending > configuration.maxPending {
            completion(.failure(.full("the queue is full")))
            return
        }
        let accepted = shared.withLock { shared -> Bool in
            guard !shared.isStopping else { return false }
            shared.jobs.append(.write(PendingWrite(write: write, loop: loop, completion: completion)))
            return true
        }
        if accepted { wakeUp() } else { completion(.failure(.stopping)) }
    }

    /// Wakes the store thread, unless a wake-up is already on its way.
    private func wakeUp() {
        if !wakeSignalled.exchange(true, ordering: .sequentiallyConsistent) { wake.signal() }
    }

    /// Starts the store thread.
    package func start() {
        startThread(named: "happyrelay-store") { [self] in run() }
    }

    /// Stops taking writes and starting sends, waits up to `drain` for sends in flight, records
    /// their outcomes, and ends the store thread.
    package func shutdown(drain: Duration) async {
        shared.withLock { $0.isStopping = true }
        wake.signal()
        let deadline = DispatchTime.now() + .milliseconds(drain.wholeMilliseconds)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [stopped] in
                _ = stopped.wait(timeout: deadline + .seconds(1))
                continuation.resume()
            }
        }
    }

    // MARK: The store thread

    private func run() {
        let store = confined.value.store
        var scheduler = confined.value.scheduler
        var unrecorded: [DeliveryOutcome] = []
        var health = WriteHealth()
        recountPending(store)
        var lastPurge = 0
        var isPurgeUnfinished = false
        // Dead deliveries deleted by the purge under way (one log line for all its steps).
        var deadPurged = 0
        var stopRequestedAt: UnixMilliseconds?
        while true {
            let now = clock()
            if health.failingSince == nil && (isPurgeUnfinished || now - lastPurge > 60_000) {
                lastPurge = now
                do throws(StoreError) {
                    let purged = try store.purge(
                        now: now, deliveredBefore: now.addingSaturating(-configuration.retention.wholeMilliseconds),
                        deadBefore: now.addingSaturating(-configuration.deadRetention.wholeMilliseconds), limit: configuration.purgeLimit)
                    isPurgeUnfinished = !purged.isComplete
                    deadPurged += purged.deadDeleted
                    if !isPurgeUnfinished && deadPurged > 0 {
                        logger.info("deleted dead deliveries past --dead-retention", ["count": deadPurged])
                        deadPurged = 0
                    }
                } catch {
                    isPurgeUnfinished = false
                    logger.warning("cannot delete old delivered and dead records", ["error": error.description])
                }
            }
            // Another process (`deliveries replay`, say) changed the queue: count again.
            if store.changedElsewhere() { recountPending(store) }
            let (jobs, isStopping) = shared.withLock { shared in
                defer { shared.jobs.removeAll(keepingCapacity: true) }
                return (shared.jobs, shared.isStopping)
            }
            var writes: [PendingWrite] = []
            for job in jobs {
                switch job {
                case .write(let write): writes.append(write)
                case .outcome(let outcome): unrecorded.append(outcome)
                }
            }
            let isFailing = health.failingSince != nil
            if !writes.isEmpty || (!unrecorded.isEmpty && (!isFailing || now >= health.retryAt)) || (isFailing && now >= health.retryAt) {
                commit(writes, outcomes: &unrecorded, scheduler: &scheduler, health: &health, store: store)
            }
            if isStopping {
                stopRequestedAt = stopRequestedAt ?? now
                let idle = scheduler.busy.isEmpty && unrecorded.isEmpty && shared.withLock { $0.jobs.isEmpty }
                if idle { break }
                if health.failingSince != nil && scheduler.busy.count == unrecorded.count {
                    logger.error(
                        "stopping with outcomes of sends not recorded: those deliveries will be sent again",
                        ["count": unrecorded.count])
                    break
                }
            }
            // While outcomes cannot be recorded nothing more is sent; nor once stopping.
            var wait = 1000
            if health.failingSince != nil {
                wait = max(1, min(health.retryAt - clock(), 1000))
            } else if !isStopping {
                do throws(StoreError) {
                    wait = try dispatch(store: store, scheduler: &scheduler)
                } catch {
                    // A store that cannot be read (a database gone away) is failing as one that
                    // cannot be written: not ready, and probed until it answers.
                    noteFailure("the queue cannot be read: \(error.description)", now: clock(), health: &health)
                    wait = max(1, min(health.retryAt - clock(), 1000))
                }
            }
            // An unfinished purge goes on at once, after the writes that came meanwhile (not
            // while the store fails: then it waits with the rest).
            if isPurgeUnfinished && !isStopping && health.failingSince == nil { wait = 0 }
            _ = wake.wait(timeout: .now() + .milliseconds(wait))
            // Cleared before the jobs are taken: a job added after this signals again.
            wakeSignalled.store(false, ordering: .sequentiallyConsistent)
        }
        stopped.signal()
    }

    /// Starts the deliveries that are due and may go; returns how long to sleep (milliseconds)
    /// before looking again when nothing wakes the thread: until the next room is due, the rate
    /// window turns, or a second passes (so that a replay written by another process is picked
    /// up). A finished send, a webhook or a replay noticed on the next look wakes it sooner.
    private func dispatch(store: any DeliveryStore, scheduler: inout DispatchScheduler) throws(StoreError) -> Int {
        guard let worker else { return 1000 }
        let now = clock()
        let capacity = scheduler.capacity(now: now)
        if capacity > 0 {
            let due = try store.claimDue(limit: capacity, now: now, busy: scheduler.busy)
            for delivery in due {
                scheduler.started(delivery.room, now: now)
                worker.send(delivery) { [self] outcome in
                    shared.withLock { $0.jobs.append(.outcome(outcome)) }
                    wakeUp()
                }
            }
        }
        var wait = 1000
        if let next = try? store.nextDueTime(after: now) { wait = min(wait, max(next - now, 1)) }
        if let turn = scheduler.nextRateWindow(now: now) { wait = min(wait, max(turn - now, 1)) }
        if let probe = scheduler.nextProbe(now: now) { wait = min(wait, max(probe - now, 1)) }
        return wait
    }

    private func recountPending(_ store: any DeliveryStore) {
        if let count = try? store.pendingCount() { pending.store(count, ordering: .relaxed) }
    }

    /// One transaction for the writes and outcomes at hand; answers the webhooks.
    private func commit(
        _ writes: [PendingWrite], outcomes unrecorded: inout [DeliveryOutcome], scheduler: inout DispatchScheduler,
        health: inout WriteHealth, store: any DeliveryStore
    ) {
        let now = clock()
        let results: [Result<StoreOutcome, StoreError>]
        do throws(StoreError) {
            if unrecorded.isEmpty && writes.isEmpty {
                // Nothing else to write while the store is failing: a probe tells when it works again.
                try store.probe(now: now)
                results = []
            } else {
                results = try store.commit(writes.map(\.write), outcomes: unrecorded, now: now)
            }
        } catch {
            // Nothing of the transaction stands: the outcomes stay in memory (their rooms stay
            // busy, so nothing is sent again) and are written again after a backoff.
            noteFailure(error.description, now: now, health: &health)
            refusal.withLock { $0 = store.refusal() }
            answer(writes, with: writes.map { _ in .failure(error) })
            return
        }
        commitCount.wrappingAdd(1, ordering: .relaxed)
        var pendingChange = 0
        let wasProbing = scheduler.isProbing
        for outcome in unrecorded {
            scheduler.finished(outcome.room)
            if case .retry = outcome.disposition {
                scheduler.noteResult(retried: true, now: now)
                continue
            }
            scheduler.noteResult(retried: false, now: now)
            pendingChange -= 1
        }
        if scheduler.isProbing != wasProbing {
            if scheduler.isProbing {
                logger.warning("HappyTalk looks down: one delivery at a time probes it until it answers", ["failures_in_a_row": scheduler.failuresToProbe])
            } else {
                logger.info("HappyTalk answers again: every waiting room is sent")
            }
        }
        unrecorded.removeAll(keepingCapacity: true)
        var faulted = false
        for (write, result) in zip(writes, results) {
            switch result {
            case .success(.stored): pendingChange += write.write.pendingCount
            case .failure(let error) where error.isStorageFault: faulted = true
            default: break
            }
        }
        pending.wrappingAdd(pendingChange, ordering: .relaxed)
        refusal.withLock { $0 = store.refusal() }
        if faulted {
            noteFailure("a webhook's writes failed", now: now, health: &health)
        } else if let since = health.failingSince {
            logger.info("the queue can be written again", ["failed_for_ms": now - since])
            health = WriteHealth()
            failure.withLock { $0 = nil }
        }
        answer(writes, with: results)
    }

    /// Runs the completions, batched per event loop: one wake-up of each loop per commit.
    private func answer(_ writes: [PendingWrite], with results: [Result<StoreOutcome, StoreError>]) {
        var perLoop: [ObjectIdentifier: (loop: EventLoop, completions: [@Sendable () -> Void])] = [:]
        for (write, result) in zip(writes, results) {
            let completion = write.completion
            guard let loop = write.loop else {
                completion(result)
                continue
            }
            perLoop[ObjectIdentifier(loop), default: (loop, [])].completions.append { completion(result) }
        }
        for (loop, completions) in perLoop.values {
            loop.execute { for completion in completions { completion() } }
        }
    }

    /// Records a failing write for readiness, schedules the next try, and logs it once per interval.
    private func noteFailure(_ reason: String, now: UnixMilliseconds, health: inout WriteHealth) {
        failure.withLock { $0 = reason }
        if health.failingSince == nil { health.failingSince = now }
        health.backoff = min(max(health.backoff * 2, 100), 5000)
        health.retryAt = now + health.backoff
        let interval = configuration.failureLogInterval.wholeMilliseconds
        if health.lastLogged.map({ now - $0 >= interval }) ?? true {
            if health.suppressed > 0 {
                logger.error("the queue cannot be written", ["error": reason, "repeated": health.suppressed])
            } else {
                logger.error("the queue cannot be written", ["error": reason])
            }
            health.lastLogged = now
            health.suppressed = 0
        } else {
            health.suppressed += 1
        }
    }
}

/// A value touched only by one thread once that thread runs.
final class ThreadConfined<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}
