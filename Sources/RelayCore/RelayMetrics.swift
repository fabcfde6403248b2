import RelayMapping
import RelayStore
import Synchronization

/// How a webhook was answered: the `outcome` of its log line and of its metrics.
package enum WebhookOutcome: String, CaseIterable, Sendable {
    /// Queued (async), delivered (sync), or would have been (dry run).
    case accepted
    /// No rule matched, or a ping.
    case ignored
    /// Its dedupe key was seen before.
    case duplicate
    /// The matching rule only stored a binding.
    case bound
    /// Refused before mapping: address, signature, body or media type.
    case rejected
    /// A mapping, upstream or queue failure.
    case failed
}

/// The series of one route, made at start-up so that counting a webhook takes neither a lock
/// nor an allocation.
package final class RouteMetrics: Sendable {
    let path: String
    let scheme: String
    private let outcomes: [MetricCounter]
    let verificationFailures = MetricCounter()
    let ackLatency = MetricHistogram(bounds: RelayMetrics.ackBounds)

    init(path: String, scheme: String) {
        self.path = path
        self.scheme = scheme
        outcomes = WebhookOutcome.allCases.map { _ in MetricCounter() }
    }

    /// Counts an answered webhook and the time it took to answer.
    func answered(_ outcome: WebhookOutcome, after duration: Duration) {
        outcomes[Self.index(of: outcome)].increment()
        ackLatency.observe(duration)
    }

    func count(_ outcome: WebhookOutcome) -> Int { outcomes[Self.index(of: outcome)].value }

    private static func index(of outcome: WebhookOutcome) -> Int {
        switch outcome {
        case .accepted: 0
        case .ignored: 1
        case .duplicate: 2
        case .bound: 3
        case .rejected: 4
        case .failed: 5
        }
    }
}

/// What the relay counts, exposed at `GET /metrics`. Labels carry route paths, scheme names,
/// mapping field names and HappyTalk codes: never a secret or a payload value.
package final class RelayMetrics: Sendable {
    static let ackBounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let deliveryBounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21_600, 86_400]

    /// What a send to HappyTalk led to.
    package enum DeliveryOutcome: String, Sendable {
        /// HappyTalk answered success.
        case delivered
        /// Async: it will be tried again.
        case retried
        /// Async: kept as a dead delivery.
        case dead
        /// Sync: the failure was answered to the caller.
        case failed
    }

    private let routes = Mutex<[RouteMetrics]>([])
    /// Labels: route, field.
    private let mappingFailures = LabeledCounters()
    /// Labels: delivery (sync, async), outcome, result, code.
    private let deliveries = LabeledCounters()
    private let syncDeliveryLatency = MetricHistogram(bounds: deliveryBounds)
    private let asyncDeliveryLatency = MetricHistogram(bounds: deliveryBounds)
    /// The series nearly every send counts into, resolved once: a successful delivery is
    /// counted without a lock.
    private let syncDelivered: MetricCounter
    private let asyncDelivered: MetricCounter

    package init() {
        syncDelivered = deliveries.series(["sync", DeliveryOutcome.delivered.rawValue, "success", "none"])
        asyncDelivered = deliveries.series(["async", DeliveryOutcome.delivered.rawValue, "success", "none"])
    }

    /// Labels: status (404, 405).
    private let unrouted = LabeledCounters()
    private let reloadFailures = MetricCounter()
    private let redeliveries = MetricCounter()

    /// The series of a route served at `path`, verified by `scheme`: the same series again
    /// after a reload, so that counters never go back.
    func route(_ path: String, scheme: String) -> RouteMetrics {
        routes.withLock { routes in
            if let existing = routes.first(where: { $0.path == path && $0.scheme == scheme }) { return existing }
            let metrics = RouteMetrics(path: path, scheme: scheme)
            routes.append(metrics)
            return metrics
        }
    }

    /// Counts a request that no route takes (404, 405).
    package func unrouted(status: Int) {
        unrouted.increment([String(status)])
    }

    /// Counts a reload refused for errors in the mappings.
    package func reloadFailed() {
        reloadFailures.increment()
    }

    /// Counts a delivery taken over from a replica that stopped while sending it.
    func redelivered() {
        redeliveries.increment()
    }

    func mappingFailed(route: String, field: String) {
        mappingFailures.increment([route, field])
    }

    /// Counts one send to HappyTalk; `latency` (for delivered calls) runs from acceptance.
    func delivery(sync: Bool, _ outcome: DeliveryOutcome, result: UpstreamResult, latency: Duration?) {
        if let latency { (sync ? syncDeliveryLatency : asyncDeliveryLatency).observe(latency) }
        if outcome == .delivered, result == .success {
            (sync ? syncDelivered : asyncDelivered).increment()
            return
        }
        let (kind, code): (String, String)
        switch result {
        case .success: (kind, code) = ("success", "none")
        case .failed(let failureCode, _, _): (kind, code) = ("fail", String(failureCode))
        case .unavailable: (kind, code) = ("unavailable", "none")
        case .transient: (kind, code) = ("transient", "none")
        case .timedOut: (kind, code) = ("timeout", "none")
        }
        deliveries.increment([sync ? "sync" : "async", outcome.rawValue, kind, code])
    }

    /// Webhooks answered per route and outcome, and sends to HappyTalk per mode, outcome,
    /// result and code: what the console's overview shows.
    package struct Snapshot: Sendable {
        package var webhooks: [(route: String, outcome: String, count: Int)]
        package var deliveries: [(labels: [String], count: Int)]

        /// Webhooks answered per route, whatever the outcome.
        package var webhooksByRoute: [String: Int] {
            webhooks.reduce(into: [:]) { totals, row in totals[row.route, default: 0] += row.count }
        }
    }

    package func snapshot() -> Snapshot {
        let routes = routes.withLock { $0 }
        var webhooks: [(route: String, outcome: String, count: Int)] = []
        for route in routes {
            for outcome in WebhookOutcome.allCases { webhooks.append((route.path, outcome.rawValue, route.count(outcome))) }
        }
        return Snapshot(webhooks: webhooks, deliveries: deliveries.snapshot.map { ($0.labels, $0.value) })
    }

    /// Read at scrape time from the queue and the upstream client.
    package struct Gauges: Sendable {
        package var queue: QueueGauges?
        package var upstreamConnectionsOpened = 0
        package var upstreamRequestsReused = 0
        package var upstreamTLSSessionsResumed = 0
        package var isDryRun = false
        /// The loaded set of mappings: 1 at start, one more per successful reload.
        package var mappingsGeneration = 1

        package init() {}
    }

    /// The exposition (format 0.0.4) of every metric.
    package func exposition(_ gauges: Gauges, version: String) -> String {
        var out = MetricsExposition()
        let routes = routes.withLock { $0 }
        out.family("happyrelay_build_info", "gauge", help: "Always 1; the version and mode of the running relay.")
        out.sample("happyrelay_build_info", [("version", version), ("dry_run", gauges.isDryRun ? "true" : "false")], 1)

        out.family("happyrelay_webhooks_total", "counter", help: "Webhooks answered, by route and outcome.")
        for route in routes {
            for outcome in WebhookOutcome.allCases {
                out.sample("happyrelay_webhooks_total", [("route", route.path), ("outcome", outcome.rawValue)], route.count(outcome))
            }
        }
        out.family("happyrelay_verification_failures_total", "counter", help: "Webhooks refused by signature or secret verification, by route and scheme.")
        for route in routes where route.scheme != "none" {
            out.sample("happyrelay_verification_failures_total", [("route", route.path), ("scheme", route.scheme)], route.verificationFailures.value)
        }
        out.family("happyrelay_mapping_failures_total", "counter", help: "Rules that matched but made an invalid call, by route and field.")
        for (labels, value) in mappingFailures.snapshot {
            out.sample("happyrelay_mapping_failures_total", [("route", labels[0]), ("field", labels[1])], value)
        }
        out.family(
            "happyrelay_deliveries_total", "counter",
            help: "Sends to HappyTalk by delivery mode, outcome (delivered, retried, dead, failed), result and HappyTalk code.")
        for (labels, value) in deliveries.snapshot {
            out.sample(
                "happyrelay_deliveries_total", [("delivery", labels[0]), ("outcome", labels[1]), ("result", labels[2]), ("code", labels[3])], value)
        }
        out.family(
            "happyrelay_redeliveries_total", "counter",
            help: "Deliveries sent again because the replica that was sending them stopped answering (HappyTalk may have had them twice).")
        out.sample("happyrelay_redeliveries_total", [], redeliveries.value)
        out.family("happyrelay_ack_latency_seconds", "histogram", help: "Time from a webhook's arrival to its answer, by route.")
        for route in routes {
            out.histogram("happyrelay_ack_latency_seconds", [("route", route.path)], route.ackLatency)
        }
        out.family(
            "happyrelay_delivery_latency_seconds", "histogram",
            help: "Time from a webhook's acceptance to HappyTalk's success (async, retries included) or of the call (sync).")
        out.histogram("happyrelay_delivery_latency_seconds", [("delivery", "async")], asyncDeliveryLatency)
        out.histogram("happyrelay_delivery_latency_seconds", [("delivery", "sync")], syncDeliveryLatency)
        if let queue = gauges.queue {
            out.family("happyrelay_queue_pending", "gauge", help: "Async deliveries waiting to be sent or retried.")
            out.sample("happyrelay_queue_pending", [], queue.pending)
            out.family("happyrelay_queue_oldest_pending_age_seconds", "gauge", help: "Age of the oldest pending delivery (0 when none).")
            out.sample("happyrelay_queue_oldest_pending_age_seconds", [], queue.oldestPendingAge)
            out.family("happyrelay_dead_letters", "gauge", help: "Dead deliveries kept for replay.")
            out.sample("happyrelay_dead_letters", [], queue.dead)
            out.family("happyrelay_dead_letters_by_route", "gauge", help: "Dead deliveries kept for replay, by route.")
            for (route, count) in queue.deadByRoute {
                out.sample("happyrelay_dead_letters_by_route", [("route", route)], count)
            }
        }
        out.family("happyrelay_http_unrouted_total", "counter", help: "Requests no route takes, by status (404 unknown path, 405 wrong method).")
        for (labels, value) in unrouted.snapshot {
            out.sample("happyrelay_http_unrouted_total", [("status", labels[0])], value)
        }
        out.family("happyrelay_mappings_generation", "gauge", help: "The loaded set of mapping files: 1 at start, one more per reload.")
        out.sample("happyrelay_mappings_generation", [], gauges.mappingsGeneration)
        out.family("happyrelay_mappings_reload_failures_total", "counter", help: "Reloads refused because the mapping files had errors.")
        out.sample("happyrelay_mappings_reload_failures_total", [], reloadFailures.value)
        out.family("happyrelay_upstream_connections_opened_total", "counter", help: "Connections opened to HappyTalk.")
        out.sample("happyrelay_upstream_connections_opened_total", [], gauges.upstreamConnectionsOpened)
        out.family("happyrelay_upstream_requests_reused_total", "counter", help: "Calls to HappyTalk sent on an already open connection.")
        out.sample("happyrelay_upstream_requests_reused_total", [], gauges.upstreamRequestsReused)
        out.family(
            "happyrelay_upstream_tls_sessions_resumed_total", "counter",
            help: "New TLS connections to HappyTalk that resumed a session instead of a full handshake.")
        out.sample("happyrelay_upstream_tls_sessions_resumed_total", [], gauges.upstreamTLSSessionsResumed)
        ProcessMetrics.read().write(to: &out)
        return out.text
    }
}
