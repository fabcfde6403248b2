import RelayHTTP
import RelayStore

/// Carries out one attempt of a due delivery: puts the token into the stored call, sends it
/// on an event loop, decides what follows with the retry policy, and reports the outcome.
/// It stores nothing itself: the outcome goes back to the store writer.
package final class DeliveryWorker: Sendable {
    private let upstream: HappyTalkUpstream
    private let credentials: Credentials
    private let group: EventLoopGroup
    private let policy: RetryPolicy
    private let sendTimeout: Duration
    private let logger: Logger
    private let metrics: RelayMetrics
    private let clock: @Sendable () -> UnixMilliseconds

    package init(
        upstream: HappyTalkUpstream, credentials: Credentials, group: EventLoopGroup, policy: RetryPolicy, sendTimeout: Duration,
        logger: Logger, metrics: RelayMetrics, clock: @escaping @Sendable () -> UnixMilliseconds
    ) {
        self.upstream = upstream
        self.credentials = credentials
        self.group = group
        self.policy = policy
        self.sendTimeout = sendTimeout
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
    }

    /// Sends `due` once; `completion` gets the outcome (on a loop thread, or at once when the
    /// delivery cannot be sent at all).
    package func send(_ due: DueDelivery, completion: @escaping @Sendable (DeliveryOutcome) -> Void) {
        // A damaged row must not stop the queue: its attempt count saturates, and a call that
        // is not a JSON object is dead at once, with the reason, instead of being sent.
        let attempt = due.attempts < Int.max ? max(due.attempts, 0) + 1 : Int.max
        guard due.call.first == UInt8(ascii: "{"), due.call.last == UInt8(ascii: "}") else {
            let reason = "the stored call cannot be read"
            logger.warning("delivery is dead", ["delivery.id": due.id, "route": due.route, "attempt": attempt, "reason": reason])
            completion(DeliveryOutcome(id: due.id, room: due.room, disposition: .dead(reason: reason), attempts: attempt, reason: reason))
            return
        }
        guard let prefix = credentials.tokenPrefix(storedName: due.room.credential) else {
            let name = due.room.credential.isEmpty ? nil : due.room.credential
            finish(due, attempt: attempt, result: .transient("\(Credentials.variable(for: name)) is not set"), retryAfter: nil, completion: completion)
            return
        }
        if due.isRedelivery {
            metrics.redelivered()
            logger.warning(
                "sending again a delivery whose replica stopped answering while it was in flight: HappyTalk may get it twice",
                ["delivery.id": due.id, "route": due.route, "attempt": attempt])
        }
        let body = HappyTalkUpstream.body(storedCall: due.call, prefix: prefix)
        let loop = group.next()
        loop.execute { [self] in
            upstream.send(body: body, on: loop, timeout: sendTimeout) { [self] result, retryAfter in
                finish(due, attempt: attempt, result: result, retryAfter: retryAfter, completion: completion)
            }
        }
    }

    private func finish(
        _ due: DueDelivery, attempt: Int, result: UpstreamResult, retryAfter: Duration?,
        completion: @escaping @Sendable (DeliveryOutcome) -> Void
    ) {
        let now = clock()
        let action = policy.decide(result, attempt: attempt, acceptedAt: due.acceptedAt, now: now, retryAfter: retryAfter) {
            Double.random(in: 0..<1)
        }
        if case .failed(let code, let message, true) = result {
            logger.error(
                "HappyTalk refused the relay's credential: check the token",
                ["delivery.id": due.id, "route": due.route, "code": code, "message": message])
        }
        let disposition: DeliveryOutcome.Disposition
        switch action {
        case .acknowledge:
            metrics.delivery(sync: false, .delivered, result: result, latency: now.subtractingIfFits(due.acceptedAt).map { .milliseconds(max($0, 0)) })
            logger.debug("delivered", ["delivery.id": due.id, "route": due.route, "attempt": attempt])
            disposition = .delivered
        case .retry(let at):
            metrics.delivery(sync: false, .retried, result: result, latency: nil)
            logger.info(
                "delivery will be retried",
                ["delivery.id": due.id, "route": due.route, "attempt": attempt, "reason": RetryPolicy.describe(result)])
            disposition = .retry(at: at)
        case .deadLetter(let reason):
            metrics.delivery(sync: false, .dead, result: result, latency: nil)
            logger.warning("delivery is dead", ["delivery.id": due.id, "route": due.route, "attempt": attempt, "reason": reason])
            disposition = .dead(reason: reason)
        }
        completion(
            DeliveryOutcome(
                id: due.id, room: due.room, disposition: disposition, attempts: attempt, reason: RetryPolicy.describe(result), attemptedAt: now,
                answer: result.answer))
    }
}
