import RelayCore
import RelayHTTP

/// The endpoints every relay serves besides its webhook routes (docs/interface.md).
package enum OperationalRoutes {
    /// Adds `GET /healthz`, `GET /readyz` and `GET /metrics`. `readiness` returns nil when
    /// ready, else the reason; `metrics` returns the exposition (it may read the database, so it
    /// runs on `metricsWorkers`).
    package static func add(
        to router: inout Router, readiness: @escaping @Sendable () -> String?, metrics: @escaping @Sendable () -> String,
        metricsWorkers: BlockingWorkers
    ) {
        router.add(.get, "/healthz", .immediate { _ in .json(.ok, "{\"status\":\"ok\"}") })
        router.add(
            .get, "/readyz",
            .immediate { _ in
                if let reason = readiness() {
                    return .json(.serviceUnavailable, "{\"status\":\"unavailable\",\"reason\":\"\(JSONText.escaped(reason))\"}")
                }
                return .json(.ok, "{\"status\":\"ready\"}")
            })
        router.add(
            .get, "/metrics",
            metricsWorkers.handler { _ in
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: MetricsExposition.contentType)
                return HTTPResponse(status: .ok, headers: headers, body: Array(metrics().utf8))
            })
    }
}
