import FoundationEssentials
import RelayCrypto
import RelayHTTP
import Synchronization

/// The console's sign-in sessions, in memory (a restart signs everyone out): a random id in
/// an `HttpOnly`, `SameSite=Strict` cookie, a CSRF token the page must send back with every
/// change, an absolute expiry. Wrong tokens are counted per client address: after
/// `maxFailures` within `failureWindow` that client is refused until the window ends.
package final class ConsoleSessions: Sendable {
    package struct Session: Sendable {
        package let csrf: String
        package let expiresAt: Date
    }

    /// The cookie's name.
    package static let cookieName = "happyrelay_session"
    package static let lifetime: TimeInterval = 8 * 3600
    static let maxFailures = 5
    static let failureWindow: TimeInterval = 300

    private let sessions = Mutex<[String: Session]>([:])
    private let failures = Mutex<[String: (count: Int, since: Date)]>([:])
    private let now: @Sendable () -> Date

    package init(now: @escaping @Sendable () -> Date = { Date() }) {
        self.now = now
    }

    /// A new session: its id (for the cookie) and the session.
    package func open() -> (id: String, session: Session) {
        let id = Self.randomHex(32)
        let session = Session(csrf: Self.randomHex(32), expiresAt: now().addingTimeInterval(Self.lifetime))
        sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expiresAt > now() }
            sessions[id] = session
        }
        return (id, session)
    }

    /// The live session a request's cookie names, with its id.
    package func session(for request: HTTPRequest) -> (id: String, session: Session)? {
        guard let id = Self.cookie(in: request) else { return nil }
        return sessions.withLock { sessions in
            guard let session = sessions[id] else { return nil }
            guard session.expiresAt > now() else {
                sessions[id] = nil
                return nil
            }
            return (id, session)
        }
    }

    package func close(_ id: String) {
        sessions.withLock { $0[id] = nil }
    }

    /// Seconds until `client` may try again, or nil when it may now.
    package func refusal(for client: String) -> Int? {
        failures.withLock { failures in
            guard let entry = failures[client] else { return nil }
            let elapsed = now().timeIntervalSince(entry.since)
            if elapsed >= Self.failureWindow {
                failures[client] = nil
                return nil
            }
            return entry.count >= Self.maxFailures ? Int((Self.failureWindow - elapsed).rounded(.up)) : nil
        }
    }

    /// Counts a wrong token from `client`; returns the count in the current window.
    @discardableResult
    package func noteFailure(from client: String) -> Int {
        failures.withLock { failures in
            // Many addresses guessing at once must not grow the table without bound.
            if failures.count >= 10_000 { failures = failures.filter { now().timeIntervalSince($0.value.since) < Self.failureWindow } }
            var entry = failures[client] ?? (0, now())
            if now().timeIntervalSince(entry.since) >= Self.failureWindow { entry = (0, now()) }
            entry.count += 1
            failures[client] = entry
            return entry.count
        }
    }

    package func noteSuccess(from client: String) {
        failures.withLock { $0[client] = nil }
    }

    /// The session cookie's value in a request.
    static func cookie(in request: HTTPRequest) -> String? {
        for field in request.headers.fields where field.name == "cookie" {
            for part in field.value.split(separator: ";") {
                let pair = part.trimmingWhitespace()
                if pair.hasPrefix(cookieName + "=") { return String(pair.dropFirst(cookieName.count + 1)) }
            }
        }
        return nil
    }

    /// `Set-Cookie` for a session (or, with nil, one that removes it).
    package static func setCookie(_ id: String?, secure: Bool) -> String {
        var cookie = "\(cookieName)=\(id ?? ""); Path=/admin/; HttpOnly; SameSite=Strict; Max-Age=\(id == nil ? 0 : Int(lifetime))"
        if secure { cookie += "; Secure" }
        return cookie
    }

    static func randomHex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return ByteEncoding.hex((0..<bytes).map { _ in generator.next() as UInt8 })
    }
}

/// Webhooks per route over the last minutes, sampled every `interval` seconds for the
/// console's chart.
package final class TrafficHistory: Sendable {
    package let interval: Int
    private let samples = Mutex<[(at: Date, totals: [String: Int])]>([])
    private let capacity: Int

    /// A history whose first sample is `totals`, taken now: the routes' totals when serving
    /// starts. (A first sample left to the timer could be taken after the first webhooks, which
    /// would then count as the baseline and never show.)
    package init(totals: [String: Int], interval: Int = 10, minutes: Int = 5) {
        self.interval = interval
        capacity = minutes * 60 / interval + 1
        record(totals)
    }

    /// Records the routes' totals now.
    package func record(_ totals: [String: Int]) {
        samples.withLock { samples in
            samples.append((Date(), totals))
            if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
        }
    }

    /// How many intervals the chart spans.
    package var slots: Int { capacity - 1 }

    /// Webhooks per route in each interval, oldest first; the last is the interval under way
    /// (from the last sample to `current`, the totals now).
    package func perInterval(current: [String: Int]) -> [String: [Int]] {
        let samples = samples.withLock { $0 } + [(at: Date(), totals: current)]
        var series: [String: [Int]] = [:]
        for (previous, next) in zip(samples, samples.dropFirst()) {
            for (route, total) in next.totals {
                series[route, default: []].append(max(0, total - (previous.totals[route] ?? 0)))
            }
        }
        return series.mapValues { Array($0.suffix(slots)) }
    }
}
