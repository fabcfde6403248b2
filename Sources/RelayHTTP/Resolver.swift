import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// Resolves host names on a thread of its own, never on an event loop or the cooperative
/// pool (`getaddrinfo` blocks), and keeps answers for a while. Numeric addresses are parsed
/// in place.
///
/// The address of a name that last answered a connect is given first, ahead of the order
/// `getaddrinfo` returns, until a connect to it fails: new connections go first to an address
/// known to answer, not to one that drops packets (an IPv6 address without a route, say).
final class Resolver: Sendable {
    /// Every address of a host and port, in the system's order (`getaddrinfo`).
    typealias Lookup = @Sendable (HostAndPort) throws(SystemError) -> [SocketAddress]
    private typealias Waiter = @Sendable (Result<[SocketAddress], SystemError>) -> Void

    private struct State {
        var cache: [String: (addresses: [SocketAddress], expires: UInt64)] = [:]
        /// Per target, the address that last answered a connect.
        var answered: [String: SocketAddress] = [:]
        var queue: [(target: HostAndPort, waiter: Waiter)] = []
        var isRunning = false
        var isStopped = false

        /// `addresses` in the order to try them: the one that last answered for `key` first,
        /// when it is among them; then the families taking turns (RFC 8305, section 4), so that
        /// a family whose every address is silent holds the other back by one attempt delay,
        /// not one per address.
        func ordered(_ addresses: [SocketAddress], for key: String) -> [SocketAddress] {
            var ordered = addresses
            if let preferred = answered[key], let index = ordered.firstIndex(of: preferred), index > 0 {
                ordered.insert(ordered.remove(at: index), at: 0)
            }
            return Self.alternatingFamilies(ordered)
        }

        /// The addresses with the first one's family and the other taking turns, each family's
        /// in the order given.
        static func alternatingFamilies(_ addresses: [SocketAddress]) -> [SocketAddress] {
            guard let first = addresses.first, addresses.contains(where: { $0.family != first.family }) else { return addresses }
            let same = addresses.filter { $0.family == first.family }
            let other = addresses.filter { $0.family != first.family }
            var result: [SocketAddress] = []
            result.reserveCapacity(addresses.count)
            for index in 0..<max(same.count, other.count) {
                if index < same.count { result.append(same[index]) }
                if index < other.count { result.append(other[index]) }
            }
            return result
        }
    }

    /// How long an answer is kept.
    let timeToLive: Duration
    private let lookup: Lookup
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    /// A resolver that keeps answers for `timeToLive`; `lookup` asks the system (a test gives
    /// names addresses of its own).
    init(timeToLive: Duration = .seconds(60), lookup: @escaping Lookup = SocketAddress.resolve) {
        self.timeToLive = timeToLive
        self.lookup = lookup
    }

    /// Notes that a connect to `address`, one of `target`'s, answered: it is given first from now on.
    func noteAnswered(_ address: SocketAddress, for target: HostAndPort) {
        state.withLock { $0.answered[target.description] = address }
    }

    /// Notes that a connect to `address` failed: if it was the one given first, the system's
    /// order comes back.
    func noteFailed(_ address: SocketAddress, for target: HostAndPort) {
        state.withLock { state in
            let key = target.description
            if state.answered[key] == address { state.answered[key] = nil }
        }
    }

    /// Every address of `target`, the one that last answered first.
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
            if let entry = state.cache[key], entry.expires > now { return (state.ordered(entry.addresses, for: key), false, false) }
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
                    let addresses = try lookup(job.target)
                    result = addresses.isEmpty ? .failure(SystemError(code: EHOSTUNREACH, call: "getaddrinfo \(job.target.host)")) : .success(addresses)
                } catch {
                    result = .failure(error)
                }
                if case .success(let addresses) = result {
                    let expires = monotonicNanoseconds() + timeToLive.nanoseconds
                    let key = job.target.description
                    let ordered = state.withLock { state in
                        state.cache[key] = (addresses, expires)
                        return state.ordered(addresses, for: key)
                    }
                    job.waiter(.success(ordered))
                } else {
                    job.waiter(result)
                }
            }
            if state.withLock({ $0.isStopped }) { return }
        }
    }
}
