/// When to try a delivery again: a pure function of the attempt's outcome and the clock,
/// so that tests drive it with a fake clock and a fixed random source.
package struct RetryPolicy: Sendable, Equatable {
    /// What the worker does next with a delivery.
    package enum Action: Sendable, Equatable {
        /// Delivered: done.
        case acknowledge
        /// Try again at this time (milliseconds since the epoch), never in the past.
        case retry(atMilliseconds: Int)
        /// Give up and keep the delivery as dead, with the reason.
        case deadLetter(reason: String)
    }

    /// The ceiling of the first retry's delay.
    package var firstDelay: Duration = .seconds(1)
    /// The largest delay between attempts.
    package var maxDelay: Duration = .seconds(600)
    /// After this long since acceptance a failing delivery is dead.
    package var giveUpAfter: Duration = .seconds(86_400)

    package init(firstDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(600), giveUpAfter: Duration = .seconds(86_400)) {
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self.giveUpAfter = giveUpAfter
    }

    /// Decides after attempt number `attempt` (1 for the first) of a delivery accepted at
    /// `acceptedAt`. `random` returns a value in [0, 1) for full jitter (AWS Architecture
    /// Blog, "Exponential Backoff And Jitter"): the delay is uniform in [0, min(cap, first·2^(n-1))].
    package func decide(
        _ result: UpstreamResult, attempt: Int, acceptedAt: Int, now: Int, retryAfter: Duration? = nil,
        random: () -> Double
    ) -> Action {
        switch result {
        case .success:
            return .acknowledge
        case .failed(let code, let message, false):
            return .deadLetter(reason: "HappyTalk refused the call: \(code) \(message)")
        default:
            break
        }
        let reason = Self.describe(result)
        // Stored values (acceptedAt, attempt) may be anything a damaged row holds: the
        // arithmetic saturates instead of trapping.
        let horizon = Self.adding(acceptedAt, Self.milliseconds(giveUpAfter))
        guard now < horizon else {
            return .deadLetter(reason: "gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"): \(reason)")
        }
        let ceiling = min(Self.milliseconds(maxDelay), Self.milliseconds(firstDelay) << (attempt > 1 ? min(attempt - 1, 30) : 0))
        var delay = Int(Double(ceiling) * min(max(random(), 0), 1))
        if let retryAfter { delay = max(delay, min(Self.milliseconds(retryAfter), Self.milliseconds(maxDelay))) }
        // The last attempt is placed at the horizon rather than skipped, so none is lost.
        return .retry(atMilliseconds: min(Self.adding(now, max(delay, 1)), max(horizon, Self.adding(now, 1))))
    }

    /// Whole milliseconds of a duration, saturating at `Int.max` for durations that do not fit.
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = Int(seconds).multipliedReportingOverflow(by: 1000)
        return overflow ? Int.max : adding(whole, Int(attoseconds / 1_000_000_000_000_000))
    }

    /// `a + b`, saturating instead of trapping.
    static func adding(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? Int.max : Int.min) : sum
    }

    /// The reason stored with a failed attempt.
    package static func describe(_ result: UpstreamResult) -> String {
        switch result {
        case .success: "delivered"
        case .failed(let code, let message, _): "HappyTalk answered \(code) \(message)"
        case .unavailable(let status): "HappyTalk answered HTTP \(status)"
        case .transient(let reason): reason
        case .timedOut: "HappyTalk did not answer in time"
        }
    }
}
