import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// Resolves host names on a thread of its own, never on an event loop or the cooperative
/// pool (`getaddrinfo` blocks), and keeps answers for a while. Numeric addresses are parsed
/// in place.
final class Resolver: Sendable {
    private typealias Waiter = @Sendable (Result<[SocketAddress], SystemError>) -> Void

    private struct State {
        var cache: [String: (addresses: [SocketAddress], expires: UInt64)] = [:]
        var queue: [(target: HostAndPort, waiter: Waiter)] = []
        var isRunning = false
        var isStopped = false
    }

    /// How long an answer is kept.
    let timeToLive: Duration
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    init(timeToLive: Duration = .seconds(60)) {
        self.timeToLive = timeToLive
    }

    /// Every address of `target`, in the resolver's order.
    func resolve(_ target: HostAndPort) async throws(SystemError) -> [SocketAddress] {
        let result: Result<[SocketAddress], SystemError> = await withCheckedContinuation { continuation in
            resolve(target) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Resolves `target`; `completion` runs at once (a number or a cached answer) or later on
    /// the resolver's thread.
    func resolve(_ target: HostAndPort, completion: @escaping @Sendable (Result<[SocketAddress], SystemError>) -> Void) {
        if let numeric = SocketAddress.numeric(target) {
            completion(.success([numeric]))
            return
        }
        let key = target.description
        let now = monotonicNanoseconds()
        let (cached, isFirstLookup, stopped) = state.withLock { state -> ([SocketAddress]?, Bool, Bool) in
            if state.isStopped { return (nil, false, true) }
            if let entry = state.cache[key], entry.expires > now { return (entry.addresses, false, false) }
            state.queue.append((target, completion))
            defer { state.isRunning = true }
            return (nil, !state.isRunning, false)
        }
        if stopped {
            completion(.failure(SystemError(code: ECANCELED, call: "getaddrinfo \(target.host)")))
            return
        }
        if let cached {
            completion(.success(cached))
            return
        }
        if isFirstLookup {
            startThread(named: "happyrelay-resolver") { [self] in run() }
        }
        wake.signal()
    }

    /// Stops the resolver thread; pending and later lookups fail.
    func shutdown() {
        let waiters = state.withLock { state in
            state.isStopped = true
            defer { state.queue = [] }
            return state.queue.map(\.waiter)
        }
        for waiter in waiters { waiter(.failure(SystemError(code: ECANCELED, call: "getaddrinfo"))) }
        wake.signal()
    }

    private func run() {
        while true {
            wake.wait()
            while let job = state.withLock({ state in state.isStopped ? nil : (state.queue.isEmpty ? nil : state.queue.removeFirst()) }) {
                let result: Result<[SocketAddress], SystemError>
                do {
                    let addresses = try SocketAddress.resolve(job.target)
                    result = addresses.isEmpty ? .failure(SystemError(code: EHOSTUNREACH, call: "getaddrinfo \(job.target.host)")) : .success(addresses)
                } catch {
                    result = .failure(error)
                }
                if case .success(let addresses) = result {
                    let expires = monotonicNanoseconds() + timeToLive.nanoseconds
                    state.withLock { $0.cache[job.target.description] = (addresses, expires) }
                }
                job.waiter(result)
            }
            if state.withLock({ $0.isStopped }) { return }
        }
    }
}
