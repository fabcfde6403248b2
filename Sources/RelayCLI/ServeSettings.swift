import FoundationEssentials
import RelayMapping
import RelayCore
import RelayHTTP
import RelayStore

/// The settings of `happyrelay serve`, from flags and environment (docs/interface.md).
package struct ServeSettings: Sendable {
    package var listen = HostAndPort(host: "127.0.0.1", port: 8080)
    package var mappings = "mappings"
    package var upstream = UpstreamURL.production
    package var isDryRun = false
    package var upstreamCAFile: String?
    package var dataDirectory = "data"
    /// A PostgreSQL database several relays share (nil: SQLite in `dataDirectory`).
    package var databaseURL: String?
    /// How long a replica's claim on a room holds before another replica may take it over.
    package var claimTimeout = Duration.seconds(30)
    package var upstreamConcurrency = 64
    package var queueLimit = 100_000
    package var upstreamRate: Int?
    package var queueMaxBytes: Int?
    package var retention = Duration.seconds(7 * 86_400)
    /// Dead deliveries hold personal data: deleted after this.
    package var deadRetention = Duration.seconds(30 * 86_400)
    /// Inbound TLS: the PEM certificate chain and key (both or neither).
    package var tlsCertificate: String?
    package var tlsKey: String?
    /// Peers whose forwarded-for headers name the client (nil: none).
    package var trustedProxies: TrustedProxies?
    /// The longest wait between two attempts of a failing delivery.
    package var retryMaxDelay = RetryPolicy().maxDelay
    /// Nil: text on a terminal, JSON otherwise.
    package var logFormat: Logger.Format?
    package var logLevel = Logger.Level.info
    package var maxBody = 1_048_576
    package var maxHeaderBytes = 65_536
    package var headerTimeout = Duration.seconds(10)
    package var requestTimeout = Duration.seconds(30)
    package var idleTimeout = Duration.seconds(60)
    package var maxConnections = 4096
    package var drainTimeout = Duration.seconds(10)
    /// `--print-config`: print the effective settings and exit.
    package var printConfig = false
    /// Flag → the flag or environment variable that set it (absent: the default).
    package var origins: [String: String] = [:]

    package init() {}

    /// Every option `serve` takes.
    package static let options: [CommandLineOption] = [
        CommandLineOption("--listen", environment: "HAPPYRELAY_LISTEN", value: "HOST:PORT", help: "address to listen on (default 127.0.0.1:8080; port 0 picks a free one)"),
        .mappings,
        CommandLineOption("--data-dir", environment: "HAPPYRELAY_DATA_DIR", value: "DIR", help: "where the delivery queue lives (default data, created if missing)"),
        .databaseURL,
        CommandLineOption("--claim-timeout", environment: "HAPPYRELAY_CLAIM_TIMEOUT", value: "DURATION", help: "with --database-url: a replica that stops answering has its rooms taken over after this (default 30s; more than the 10 s send timeout)"),
        CommandLineOption("--upstream-concurrency", environment: "HAPPYRELAY_UPSTREAM_CONCURRENCY", value: "N", help: "async calls in flight toward HappyTalk at most (default 64)"),
        CommandLineOption("--upstream-rate", environment: "HAPPYRELAY_UPSTREAM_RATE", value: "N", help: "async calls per second at most toward HappyTalk (default: no limit)"),
        CommandLineOption("--queue-limit", environment: "HAPPYRELAY_QUEUE_LIMIT", value: "N", help: "pending deliveries at most; beyond it webhooks get 503 (default 100000)"),
        CommandLineOption("--queue-max-bytes", environment: "HAPPYRELAY_QUEUE_MAX_BYTES", value: "BYTES", help: "the queue database may grow to about this size; beyond it webhooks get 503 (default: no limit)"),
        CommandLineOption("--retention", environment: "HAPPYRELAY_RETENTION", value: "SECONDS", help: "delivered records are deleted after this (default 604800, 7 days)"),
        CommandLineOption("--dead-retention", environment: "HAPPYRELAY_DEAD_RETENTION", value: "DURATION", help: "dead deliveries, which hold customers' personal data, are deleted after this (default 30d; seconds or 12h, 30d)"),
        CommandLineOption("--tls-cert", environment: "HAPPYRELAY_TLS_CERT", value: "FILE", help: "serve HTTPS (TLS 1.2+) with this PEM certificate chain; reloaded on SIGHUP (default: plain HTTP)"),
        CommandLineOption("--tls-key", environment: "HAPPYRELAY_TLS_KEY", value: "FILE", help: "the PEM private key of --tls-cert"),
        CommandLineOption("--trusted-proxies", environment: "HAPPYRELAY_TRUSTED_PROXIES", value: "CIDR,...", help: "proxies whose X-Forwarded-For / Forwarded header names the client for allow_ips, logs and metrics (default: none; the peer is the client)"),
        CommandLineOption("--retry-max-delay", environment: "HAPPYRELAY_RETRY_MAX_DELAY", value: "SECONDS", help: "longest wait between two attempts of a failing async delivery (default 600)"),
        CommandLineOption("--upstream", environment: "HAPPYTALK_BASE_URL", value: "URL", help: "HappyTalk base URL (default https://customer.happytalk.io)"),
        CommandLineOption("--upstream-ca-file", environment: "HAPPYRELAY_UPSTREAM_CA_FILE", value: "FILE", help: "also trust the CA certificates in this PEM file for https:// upstreams (verification stays on)"),
        CommandLineOption("--dry-run", environment: "HAPPYRELAY_DRY_RUN", help: "map and log calls, send nothing (also the mode when no HAPPYTALK_TOKEN is set)"),
        CommandLineOption("--log-format", environment: "HAPPYRELAY_LOG_FORMAT", value: "json|text", help: "log line format (default: text on a terminal, json otherwise)"),
        CommandLineOption("--log-level", environment: "HAPPYRELAY_LOG_LEVEL", value: "LEVEL", help: "trace, debug, info, warning or error (default info)"),
        CommandLineOption("--max-body", environment: "HAPPYRELAY_MAX_BODY", value: "BYTES", help: "largest request body (default 1048576)"),
        CommandLineOption("--max-header-bytes", environment: "HAPPYRELAY_MAX_HEADER_BYTES", value: "BYTES", help: "largest request line plus headers (default 65536)"),
        CommandLineOption("--header-timeout", environment: "HAPPYRELAY_HEADER_TIMEOUT", value: "SECONDS", help: "time allowed for a request's headers to arrive (default 10)"),
        CommandLineOption("--request-timeout", environment: "HAPPYRELAY_REQUEST_TIMEOUT", value: "SECONDS", help: "time allowed for a whole request, head and body, to arrive (default 30)"),
        CommandLineOption("--idle-timeout", environment: "HAPPYRELAY_IDLE_TIMEOUT", value: "SECONDS", help: "idle keep-alive connections are closed after this (default 60)"),
        CommandLineOption("--max-connections", environment: "HAPPYRELAY_MAX_CONNECTIONS", value: "N", help: "open connections beyond this are answered 503 (default 4096)"),
        CommandLineOption("--drain-timeout", environment: "HAPPYRELAY_DRAIN_TIMEOUT", value: "SECONDS", help: "on SIGTERM/SIGINT, time for in-flight requests to finish (default 10)"),
        CommandLineOption("--print-config", help: "print the effective settings (secrets redacted) and exit"),
        .help,
    ]

    /// Parses and validates the settings; the flag wins over the environment.
    package static func parse(_ arguments: [String], environment: [String: String]) throws(SettingsError) -> ServeSettings {
        let parsed = try ParsedOptions(arguments, options: options, environment: environment)
        if let extra = parsed.positional.first {
            throw SettingsError("unexpected argument \(extra)", isUsageError: true)
        }
        var settings = ServeSettings()
        if let text = parsed.value("--listen") {
            guard let address = HostAndPort(parsing: text) else {
                throw SettingsError("\(parsed.source("--listen")): \"\(text)\" is not HOST:PORT with a port in 0...65535")
            }
            settings.listen = address
        }
        if let text = parsed.value("--mappings") { settings.mappings = text }
        if let text = parsed.value("--upstream") {
            guard let url = UpstreamURL(text) else {
                throw SettingsError("\(parsed.source("--upstream")): \"\(text)\" is not an http:// or https:// URL")
            }
            settings.upstream = url
        }
        settings.isDryRun = try parsed.strictSwitch("--dry-run")
        settings.printConfig = parsed.isOn("--print-config")
        settings.upstreamCAFile = parsed.value("--upstream-ca-file")
        if let text = parsed.value("--data-dir") { settings.dataDirectory = text }
        if case .postgres(let url) = try parsed.storeLocation(defaultDirectory: settings.dataDirectory) { settings.databaseURL = url }
        settings.claimTimeout = try parsed.seconds("--claim-timeout", default: settings.claimTimeout)
        // A claim must outlive a send (10 s at most) or a live replica's room would be taken over.
        guard settings.claimTimeout > .seconds(10) else {
            throw SettingsError("\(parsed.source("--claim-timeout")): must be more than 10 seconds, the longest a send may take")
        }
        settings.upstreamConcurrency = try parsed.integer("--upstream-concurrency", default: 64, range: 1...4096)
        if parsed.value("--upstream-rate") != nil {
            settings.upstreamRate = try parsed.integer("--upstream-rate", default: 0, range: 1...1_000_000)
        }
        if parsed.value("--queue-max-bytes") != nil {
            settings.queueMaxBytes = try parsed.integer("--queue-max-bytes", default: 0, range: 65_536...(1 << 50))
        }
        settings.queueLimit = try parsed.integer("--queue-limit", default: 100_000, range: 1...100_000_000)
        settings.retention = try parsed.seconds("--retention", default: settings.retention)
        settings.tlsCertificate = parsed.value("--tls-cert")
        settings.tlsKey = parsed.value("--tls-key")
        if (settings.tlsCertificate == nil) != (settings.tlsKey == nil) {
            throw SettingsError(
                settings.tlsCertificate == nil ? "\(parsed.source("--tls-key")) needs --tls-cert too" : "\(parsed.source("--tls-cert")) needs --tls-key too")
        }
        settings.deadRetention = try parsed.seconds("--dead-retention", default: settings.deadRetention)
        if let text = parsed.value("--trusted-proxies") {
            do {
                settings.trustedProxies = try TrustedProxies(parsing: text)
            } catch {
                throw SettingsError(error.message.replacing("--trusted-proxies", with: parsed.source("--trusted-proxies")))
            }
        }
        settings.retryMaxDelay = try parsed.seconds("--retry-max-delay", default: settings.retryMaxDelay)
        if let text = parsed.value("--log-format") {
            guard let format = Logger.Format(rawValue: text) else {
                throw SettingsError("\(parsed.source("--log-format")): \"\(text)\" is not json or text")
            }
            settings.logFormat = format
        }
        if let text = parsed.value("--log-level") {
            guard let level = Logger.Level(name: text) else {
                throw SettingsError("\(parsed.source("--log-level")): \"\(text)\" is not trace, debug, info, warning or error")
            }
            settings.logLevel = level
        }
        settings.maxBody = try parsed.integer("--max-body", default: settings.maxBody, range: 1...(1 << 30))
        settings.maxHeaderBytes = try parsed.integer(
            "--max-header-bytes", default: settings.maxHeaderBytes, range: 256...(16 << 20))
        settings.headerTimeout = try parsed.seconds("--header-timeout", default: settings.headerTimeout)
        settings.requestTimeout = try parsed.seconds("--request-timeout", default: settings.requestTimeout)
        settings.idleTimeout = try parsed.seconds("--idle-timeout", default: settings.idleTimeout)
        settings.maxConnections = try parsed.integer(
            "--max-connections", default: settings.maxConnections, range: 1...1_000_000)
        settings.drainTimeout = try parsed.seconds("--drain-timeout", default: settings.drainTimeout)
        for option in options {
            if let origin = parsed.origin(option.flag) { settings.origins[option.flag] = origin }
        }
        return settings
    }

    /// Where the store is: the database when one is set, else the data directory.
    package var store: StoreLocation {
        databaseURL.map { .postgres(url: $0) } ?? .sqlite(directory: dataDirectory)
    }

    /// The HTTP server configuration these settings describe.
    package var serverConfiguration: HTTPServer.Configuration {
        var clientAddress: (@Sendable (String, HTTPHeaders) -> String)?
        if let proxies = trustedProxies {
            clientAddress = { peer, headers in proxies.clientAddress(peer: peer, headers: headers) }
        }
        return HTTPServer.Configuration(
            address: listen,
            limits: HTTPRequestParser.Limits(maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBody),
            headerTimeout: headerTimeout, requestTimeout: requestTimeout, idleTimeout: idleTimeout, maxConnections: maxConnections,
            drainTimeout: drainTimeout, clientAddress: clientAddress)
    }
}

extension ServeSettings {
    /// Fails unless the mappings folder can be listed (checked before any file is read, so the
    /// message names the setting).
    package func checkMappingsFolder() throws(SettingsError) {
        guard let isDirectory = FilePath.isDirectory(mappings) else {
            throw SettingsError("\(origins["--mappings"] ?? "--mappings"): the folder \(mappings) does not exist")
        }
        guard isDirectory, (try? FileManager.default.contentsOfDirectory(atPath: mappings)) != nil else {
            throw SettingsError("\(origins["--mappings"] ?? "--mappings"): \(mappings) is not a readable folder")
        }
    }

    /// The effective settings as an environment file, each line saying where its value came
    /// from. Secrets (tokens) are only said to be set; token file paths are shown.
    package func describe(environment: [String: String]) -> String {
        var lines = ["# happyrelay serve: effective settings (secrets redacted)"]
        func line(_ flag: String, _ value: String, unset: String = "") {
            let variable = Self.options.first { $0.flag == flag }?.environment ?? flag
            let assignment = "\(variable)=\(value)"
            let origin = origins[flag].map { $0.hasPrefix("--") ? "from \($0)" : "from the environment" } ?? "default" + unset
            lines.append(assignment + String(repeating: " ", count: max(1, 48 - assignment.count)) + "# " + origin)
        }
        line("--listen", listen.description)
        line("--mappings", mappings)
        line("--data-dir", dataDirectory, unset: databaseURL == nil ? "" : ": not used, --database-url is set")
        line("--database-url", databaseURL.map(PostgresURL.redacted) ?? "", unset: ": SQLite in --data-dir")
        line("--claim-timeout", Self.seconds(claimTimeout))
        line("--upstream", upstream.description)
        line("--upstream-ca-file", upstreamCAFile ?? "", unset: ": the system trust store only")
        line("--upstream-concurrency", String(upstreamConcurrency))
        line("--upstream-rate", upstreamRate.map(String.init) ?? "", unset: ": no limit")
        line("--queue-limit", String(queueLimit))
        line("--queue-max-bytes", queueMaxBytes.map(String.init) ?? "", unset: ": no limit")
        line("--retention", Self.seconds(retention))
        line("--dead-retention", Self.seconds(deadRetention))
        line("--tls-cert", tlsCertificate ?? "", unset: ": plain HTTP")
        line("--tls-key", tlsKey ?? "")
        line("--trusted-proxies", trustedProxies?.ranges.map(\.description).joined(separator: ",") ?? "", unset: ": none, the peer is the client")
        line("--retry-max-delay", Self.seconds(retryMaxDelay))
        line("--dry-run", isDryRun ? "1" : "0")
        line("--log-format", logFormat?.rawValue ?? "", unset: ": text on a terminal, json otherwise")
        line("--log-level", logLevel.name)
        line("--max-body", String(maxBody))
        line("--max-header-bytes", String(maxHeaderBytes))
        line("--header-timeout", Self.seconds(headerTimeout))
        line("--request-timeout", Self.seconds(requestTimeout))
        line("--idle-timeout", Self.seconds(idleTimeout))
        line("--max-connections", String(maxConnections))
        line("--drain-timeout", Self.seconds(drainTimeout))
        let tokens = environment.keys.filter { $0.hasPrefix("HAPPYTALK_TOKEN") && !(environment[$0] ?? "").isEmpty }.sorted()
        for variable in tokens {
            if variable.hasSuffix("_FILE") {
                lines.append("\(variable)=\(environment[variable]!)")
            } else {
                lines.append("# \(variable) is set (redacted)")
            }
        }
        if tokens.isEmpty { lines.append("# HAPPYTALK_TOKEN is not set: dry run, nothing is sent") }
        lines.append(
            (environment["HAPPYRELAY_ADMIN_TOKEN"] ?? "").isEmpty
                ? "# HAPPYRELAY_ADMIN_TOKEN is not set: /admin answers 404" : "# HAPPYRELAY_ADMIN_TOKEN is set (redacted)")
        return lines.joined(separator: "\n")
    }

    static func seconds(_ duration: Duration) -> String {
        let milliseconds = duration.wholeMilliseconds
        return milliseconds % 1000 == 0 ? String(milliseconds / 1000) : String(Double(milliseconds) / 1000)
    }
}
