import RelayHTTP

/// The endpoints every relay serves besides its webhook routes (interface.md).
package enum OperationalRoutes {
    /// Adds `GET /healthz` and `GET /readyz`. `readiness` returns nil when ready, else the reason.
    package static func add(to router: inout Router, readiness: @escaping @Sendable () -> String?) {
        router.add(.get, "/healthz", .immediate { _ in .json(.ok, "{\"status\":\"ok\"}") })
        router.add(
            .get, "/readyz",
            .immediate { _ in
                if let reason = readiness() {
                    return .json(.serviceUnavailable, "{\"status\":\"unavailable\",\"reason\":\"\(JSONText.escaped(reason))\"}")
                }
                return .json(.ok, "{\"status\":\"ready\"}")
            })
    }
}
