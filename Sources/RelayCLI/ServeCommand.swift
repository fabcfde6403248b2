import Dispatch
import FoundationEssentials
import RelayCore
import RelayHTTP
import RelayMapping
import RelayStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `happyrelay serve`: reads the settings, wires the relay together, serves until SIGTERM or
/// SIGINT, and stops in order (no new connections, in-flight requests, sends, the store).
package enum ServeCommand {
    package static func run(_ arguments: [String], environment: [String: String], version: String) async -> Int32 {
        let settings: ServeSettings
        do {
            settings = try ServeSettings.parse(arguments, environment: environment)
        } catch {
            return failed(
                "happyrelay serve: \(error.message)" + (error.isUsageError ? "\nusage: happyrelay serve [options] (see happyrelay serve --help)" : ""),
                code: error.exitCode)
        }
        if settings.printConfig {
            do {
                _ = try Credentials.load(environment: environment)
            } catch {
                return failed("happyrelay serve: \(error.message)", code: 1)
            }
            print(settings.describe(environment: environment))
            return 0
        }
        // SIGHUP reloads once the relay can; until then it is ignored rather than fatal.
        let termination = TerminationSignal()
        let logger = Logger(level: settings.logLevel, format: settings.logFormat ?? (isatty(2) != 0 ? .text : .json))
        do {
            try settings.checkMappingsFolder()
        } catch {
            return failed("happyrelay serve: \(error.message)", code: 1)
        }
        let loaded = MappingLoader.load([settings.mappings])
        guard loaded.diagnostics.isEmpty else {
            return failed(
                loaded.diagnostics.map(\.description).joined(separator: "\n")
                    + "\nhappyrelay serve: the mappings in \(settings.mappings) have errors (see happyrelay check)", code: 1)
        }
        let routes = loaded.routes
        for notice in loaded.skipped { logger.info(notice) }
        let credentials: Credentials
        do {
            credentials = try Credentials.load(environment: environment)
        } catch {
            return failed("happyrelay serve: \(error.message)", code: 1)
        }
        // Measured with the async benchmark: about a trim per webhook without it.
        Allocator.keepFreedMemory(upTo: 4 << 20)
        // One group of event loops serves webhooks and carries the calls to HappyTalk.
        let group: EventLoopGroup
        let client: HTTPClient
        let upstream: HappyTalkUpstream
        let tls: TLSClientFactory?
        do {
            group = try EventLoopGroup(count: ProcessInfo.processInfo.activeProcessorCount, name: "happyrelay-loop")
            // Only an https upstream needs libssl set up (a local http mock does not).
            tls = settings.upstream.endpoint.isTLS || settings.upstreamCAFile != nil ? try TLSClientFactory(caFile: settings.upstreamCAFile) : nil
            client = try HTTPClient(configuration: upstreamClientConfiguration(settings, logger: logger), group: group, tls: tls)
            upstream = HappyTalkUpstream(url: settings.upstream, client: client)
        } catch {
            return failed("happyrelay serve: \(error)", code: 1)
        }
        let metrics = RelayMetrics()
        let isDryRun = settings.isDryRun || credentials.isEmpty
        var writer: StoreWriter?
        var lookups: (any StoreLookups)?
        var gauges: GaugesReader?
        if !isDryRun {
            do {
                let engine = try StoreEngine.open(settings, environment: environment, logger: logger)
                var policy = RetryPolicy()
                policy.maxDelay = settings.retryMaxDelay
                let worker = DeliveryWorker(
                    upstream: upstream, credentials: credentials, group: group, policy: policy, sendTimeout: .seconds(10), logger: logger,
                    metrics: metrics, clock: currentUnixMilliseconds)
                var writerConfiguration = StoreWriter.Configuration()
                writerConfiguration.maxPending = settings.queueLimit
                writerConfiguration.retention = settings.retention
                writerConfiguration.deadRetention = settings.deadRetention
                writer = StoreWriter(
                    store: engine.store, scheduler: DispatchScheduler(
                        concurrency: settings.upstreamConcurrency, ratePerSecond: settings.upstreamRate,
                        maxProbeInterval: min(30_000, settings.retryMaxDelay.wholeMilliseconds)),
                    worker: worker, configuration: writerConfiguration, logger: logger)
                lookups = engine.lookups
                gauges = GaugesReader(engine.administration)
            } catch {
                return failed("happyrelay serve: " + settings.store.openingFailure(error, what: "cannot open the delivery queue in"), code: 1)
            }
        }
        let relay: Relay
        do {
            relay = try Relay(
                routes: routes, credentials: credentials, upstream: upstream, store: writer, lookups: lookups, dryRun: settings.isDryRun,
                environment: environment, logger: logger, metrics: metrics)
        } catch {
            return failed(
                error.items.map(\.description).joined(separator: "\n")
                    + "\nhappyrelay serve: fix the settings above, or run without HAPPYTALK_TOKEN to try it in dry-run mode", code: 1)
        }

        let reloader = Reloader(
            folder: settings.mappings, relay: relay, logger: logger, metrics: metrics,
            record: { [gauges] folder in gauges?.record(DeliveryCommands.recordedMappings, value: folder) })
        let adminToken = environment["HAPPYRELAY_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        // Off the loops and off Swift's cooperative pool (which the shutdown needs): an admin
        // change may wait seconds for the store, and a scrape must not wait behind it. Without
        // a token the admin API is off, and needs no threads.
        let adminWorkers = adminToken == nil ? nil : BlockingWorkers(count: 2, name: "happyrelay-admin")
        let metricsWorkers = BlockingWorkers(count: 1, name: "happyrelay-metrics")
        var admin = AdminRoutes.Context(
            token: adminToken, store: settings.store, routes: { relay.routes }, reload: { reloader.reload(trigger: "admin") },
            logger: logger, workers: adminWorkers)
        let traffic = TrafficHistory(totals: metrics.snapshot().webhooksByRoute)
        admin.isTLS = settings.tlsCertificate != nil
        admin.overview = { [gauges] in
            ConsoleData.overview(metrics: metrics.snapshot(), queue: gauges?.gauges(), generation: relay.generation, isDryRun: isDryRun, traffic: traffic)
        }
        admin.mappings = { ConsoleData.mappings(routes: relay.routes, generation: relay.generation, folder: settings.mappings, lastReload: reloader.lastReload) }
        // The overview's chart: each route's webhooks, sampled every 10 s while the console is on.
        let sampler = adminToken == nil ? nil : DispatchSource.makeTimerSource(queue: DispatchQueue(label: "happyrelay-traffic"))
        sampler?.schedule(deadline: .now() + .seconds(traffic.interval), repeating: .seconds(traffic.interval))
        sampler?.setEventHandler { traffic.record(metrics.snapshot().webhooksByRoute) }
        sampler?.resume()
        let console = admin
        // Built again on each reload, with the relay's routes of the moment.
        let makeRouter: @Sendable () -> Router = { [writer, gauges] in
            var router = Router()
            OperationalRoutes.add(
                to: &router, readiness: { writer?.unavailableReason },
                metrics: {
                    var values = RelayMetrics.Gauges()
                    values.queue = gauges?.gauges()
                    (values.upstreamConnectionsOpened, values.upstreamRequestsReused) = client.statistics
                    values.upstreamTLSSessionsResumed = tls?.resumedSessions ?? 0
                    values.isDryRun = isDryRun
                    values.mappingsGeneration = relay.generation
                    return metrics.exposition(values, version: version)
                }, metricsWorkers: metricsWorkers)
            relay.register(in: &router)
            if writer != nil { AdminRoutes.add(to: &router, context: console) }
            return router
        }
        var serverConfiguration = settings.serverConfiguration
        if let certificate = settings.tlsCertificate, let key = settings.tlsKey {
            do {
                let tls = try TLSServerFactory(certificateFile: certificate, keyFile: key)
                serverConfiguration.tls = tls
                reloader.tls = tls
            } catch {
                return failed("happyrelay serve: \(error)", code: 1)
            }
        }
        serverConfiguration.acceptFailure = { logger.error($0) }
        serverConfiguration.unrouted = { request, status in
            metrics.unrouted(status: status)
            logger.debug(
                "no route", ["method": request.method.rawValue, "path": String(request.head.path), "status": status, "client": request.remoteAddress, "request_id": request.id])
        }
        // Descriptors beyond client connections: upstream connections, the database and its
        // readers, the event loops, standard streams, and a margin.
        let limit = OpenFileLimit.raiseToHardLimit()
        let reserved = settings.upstreamConcurrency + 64
        if limit != Int.max && serverConfiguration.maxConnections > limit - reserved {
            let allowed = max(1, limit - reserved)
            logger.warning(
                "--max-connections lowered to what the open-file limit allows",
                ["requested": serverConfiguration.maxConnections, "allowed": allowed, "open_file_limit": limit])
            serverConfiguration.maxConnections = allowed
        }
        let server: HTTPServer
        do {
            server = try HTTPServer(configuration: serverConfiguration, router: makeRouter(), group: group)
        } catch {
            return failed("happyrelay serve: cannot listen on \(settings.listen): \(error)", code: 1)
        }
        logger.info("loaded mappings", ["folder": settings.mappings, "routes": routes.map(\.path).joined(separator: ",")])
        var dataStatus = stat()
        if writer != nil, settings.databaseURL == nil, stat(settings.dataDirectory, &dataStatus) == 0, dataStatus.st_mode & 0o077 != 0 {
            logger.warning(
                "the data directory is open to other users; it holds payloads with personal data: chmod 700 it",
                ["folder": settings.dataDirectory, "mode": "0" + String(dataStatus.st_mode & 0o777, radix: 8)])
        }
        for (path, mode) in Secrets.filesReadableByOthers(routes: routes, environment: environment) {
            logger.warning("a secret file is readable by other users: chmod 600 it", ["file": path, "mode": mode])
        }
        writer?.start()
        reloader.attach(server: server, makeRouter: makeRouter)
        reloader.recordFolder()
        termination.onHangup { reloader.reload(trigger: "SIGHUP") }
        let bound = HostAndPort(host: settings.listen.host, port: server.port)
        for path in relay.unverifiedRoutes {
            logger.warning("serving route without verification (dry run: its secret is not set)", ["route": path])
        }
        if relay.isDryRun {
            logger.warning("DRY RUN: nothing is sent to HappyTalk", ["reason": settings.isDryRun ? "--dry-run" : "no HAPPYTALK_TOKEN is set"])
        }
        logger.info("listening on \(bound)", ["tls": serverConfiguration.tls != nil, "version": version, "upstream": upstream.endpoint.description, "dry_run": relay.isDryRun])

        SystemdNotify.send("READY=1\nSTATUS=listening on \(bound)")
        let signal = await termination.wait()
        termination.stopHangups()
        sampler?.cancel()
        SystemdNotify.send("STOPPING=1")
        logger.info("shutting down", ["signal": signal])
        await server.shutdown()
        adminWorkers?.shutdown()
        metricsWorkers.shutdown()
        await writer?.shutdown(drain: settings.drainTimeout)
        relay.shutdown()
        client.shutdown()
        group.shutdown()
        logger.info("stopped")
        return 0
    }

    /// `happyrelay mock-upstream`.
    package static func mockUpstream(_ arguments: [String]) async -> Int32 {
        let termination = TerminationSignal()
        let logger = Logger(level: .info, format: isatty(2) != 0 ? .text : .json)
        let server: HTTPServer
        do {
            let (listen, configuration) = try MockUpstream.parse(arguments)
            let mock = try MockUpstream(configuration: configuration)
            var router = Router()
            mock.register(in: &router)
            do {
                server = try HTTPServer(configuration: .init(address: listen), router: router)
            } catch {
                return failed("happyrelay mock-upstream: cannot listen on \(listen): \(error)", code: 1)
            }
            logger.info("listening on \(HostAndPort(host: listen.host, port: server.port))", ["mock": "happytalk"])
        } catch {
            return failed("happyrelay mock-upstream: \(error.message)" + (error.isUsageError ? "\nusage: happyrelay mock-upstream [options]" : ""), code: error.exitCode)
        }
        _ = await termination.wait()
        await server.shutdown()
        return 0
    }

    /// The client that carries the calls to HappyTalk: a connection per room it may send to at
    /// once, and a warning when a new connection passed over an address of HappyTalk's name
    /// (otherwise unseen: each such connection waited for that address first).
    static func upstreamClientConfiguration(_ settings: ServeSettings, logger: Logger) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(maxConnectionsPerEndpoint: max(64, settings.upstreamConcurrency))
        configuration.onAddressPassedOver = { event in
            logger.warning(
                "an address of HappyTalk was passed over; the one that answered is tried first from now on",
                ["upstream": event.endpoint, "passed_over": event.passedOver.joined(separator: "; "), "answered": event.answered])
        }
        return configuration
    }

    static func failed(_ message: String, code: Int32) -> Int32 {
        FileBytes.write(Array((message + "\n").utf8), to: STDERR_FILENO)
        return code
    }
}

/// The store's engine as `serve` uses it, chosen in this one place: SQLite in the data
/// directory, or the PostgreSQL database that several relays share.
struct StoreEngine {
    /// The writer's engine (used from the store thread only).
    var store: any DeliveryStore
    /// Bindings and dedupe keys, read while webhooks are served.
    var lookups: any StoreLookups
    /// The gauges and the settings recorded for the CLI, on a connection of their own.
    var administration: any DeliveryAdministration

    static func open(_ settings: ServeSettings, environment: [String: String], logger: Logger) throws -> StoreEngine {
        if let url = settings.databaseURL {
            if settings.queueMaxBytes != nil {
                logger.warning("--queue-max-bytes applies to SQLite only: the database's own limits apply", ["store": PostgresURL.redacted(url)])
            }
            var configuration = PostgresDeliveryStore.Configuration()
            configuration.claimTimeout = settings.claimTimeout
            configuration.owner = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(configuration.owner)"
            let store = try PostgresDeliveryStore(url: url, configuration: configuration)
            // The store migrated the schema as it opened.
            return StoreEngine(store: store, lookups: try PostgresLookups(url: url), administration: try PostgresAdmin(url: url))
        }
        var configuration = SQLiteDeliveryStore.Configuration()
        configuration.maxBytes = settings.queueMaxBytes
        // For tests only: where to stop the process (see CrashTests).
        if let point = environment["HAPPYRELAY_TEST_CRASH"], ["before-commit", "after-commit"].contains(point) {
            configuration.aroundCommit = { committed in
                guard committed == (point == "after-commit") else { return }
                // An answer given too early (before the commit) would reach its client now.
                usleep(300_000)
                logger.error("stopping here as asked by HAPPYRELAY_TEST_CRASH", ["point": point])
                _exit(137)
            }
        }
        let store = try SQLiteDeliveryStore(directory: settings.dataDirectory, configuration: configuration)
        let lookups = try SQLiteLookups(path: store.path)
        guard let administration = try SQLiteAdmin(directory: settings.dataDirectory) else {
            throw SettingsError("the queue's database vanished as it was opened")
        }
        return StoreEngine(store: store, lookups: lookups, administration: administration)
    }
}

/// The gauges reader: a connection of its own, one scrape at a time.
final class GaugesReader: Sendable {
    private let admin: Mutex<any DeliveryAdministration>

    init(_ admin: sending any DeliveryAdministration) {
        self.admin = Mutex(admin)
    }

    func gauges() -> QueueGauges? {
        admin.withLock { try? $0.gauges(now: currentUnixMilliseconds()) }
    }

    /// Records a value for the CLI (the mappings folder replay uses).
    func record(_ name: String, value: String) {
        admin.withLock { try? $0.record(name, value: value) }
    }
}

/// Reloads the mapping files, on SIGHUP or `POST /admin/reload`, one reload at a time: a set
/// with any error is refused whole (each error logged, the old set kept); a good one is
/// served by a new router, while requests in flight finish on the old one.
final class Reloader: Sendable {
    private let folder: String
    private let relay: Relay
    private let logger: Logger
    private let metrics: RelayMetrics
    private let record: @Sendable (String) -> Void
    private let attached = Mutex<(server: HTTPServer, makeRouter: @Sendable () -> Router)?>(nil)
    private let tlsFactory = Mutex<TLSServerFactory?>(nil)
    private let last = Mutex<ConsoleData.LastReload?>(nil)

    /// The last reload since start: when, what asked for it, its errors.
    var lastReload: ConsoleData.LastReload? { last.withLock { $0 } }

    /// The inbound TLS certificate, loaded again with the mappings.
    var tls: TLSServerFactory? {
        get { tlsFactory.withLock { $0 } }
        set { tlsFactory.withLock { $0 = newValue } }
    }

    init(folder: String, relay: Relay, logger: Logger, metrics: RelayMetrics, record: @escaping @Sendable (String) -> Void) {
        self.folder = folder
        self.relay = relay
        self.logger = logger
        self.metrics = metrics
        self.record = record
    }

    /// The server whose router a reload replaces, and how routers are made.
    func attach(server: HTTPServer, makeRouter: @escaping @Sendable () -> Router) {
        attached.withLock { $0 = (server, makeRouter) }
    }

    /// Records the folder's absolute path, so that `deliveries replay` re-maps with it.
    func recordFolder() {
        record(URL(fileURLWithPath: folder).standardizedFileURL.path)
    }

    @discardableResult
    func reload(trigger: String) -> ReloadReport {
        attached.withLock { attached in
            guard let (server, makeRouter) = attached else {
                return ReloadReport(generation: relay.generation, errors: ["the relay is starting"])
            }
            SystemdNotify.send("RELOADING=1\nMONOTONIC_USEC=\(DispatchTime.now().uptimeNanoseconds / 1000)")
            defer { SystemdNotify.send("READY=1") }
            var certificateError: String?
            do throws(TLSError) {
                try tls?.reload()
            } catch {
                certificateError = error.description
                logger.error("TLS certificate not reloaded: the current one stays in service", ["trigger": trigger, "error": error.description])
            }
            let loaded = MappingLoader.load([folder])
            var errors = loaded.diagnostics.map(\.description)
            if errors.isEmpty {
                do throws(MappingDiagnostics) {
                    let generation = try relay.reload(loaded.routes)
                    server.replaceRouter(makeRouter())
                    recordFolder()
                    logger.info(
                        "reloaded mappings",
                        ["trigger": trigger, "generation": generation, "folder": folder, "routes": loaded.routes.map(\.path).joined(separator: ",")])
                    let report = ReloadReport(generation: generation, errors: certificateError.map { [$0] } ?? [])
                    last.withLock { $0 = ConsoleData.LastReload(at: Date(), trigger: trigger, errors: report.errors) }
                    return report
                } catch {
                    errors = error.items.map(\.description)
                }
            }
            metrics.reloadFailed()
            for error in errors { logger.error("reload refused: the mappings have an error", ["trigger": trigger, "error": error]) }
            logger.error("reload refused: the previous mappings stay in service", ["trigger": trigger, "generation": relay.generation, "errors": errors.count])
            last.withLock { $0 = ConsoleData.LastReload(at: Date(), trigger: trigger, errors: errors) }
            return ReloadReport(generation: relay.generation, errors: errors)
        }
    }
}

/// The write end of the signal pipe, for the signal handler (which may capture nothing).
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// SIGTERM, SIGINT and SIGHUP, caught from the moment this is made (before the relay
/// announces itself, so a supervisor's early signal is never fatal). A real handler writes the
/// signal's number to a pipe, whatever thread the kernel picks to run it, and a Dispatch
/// source reads the pipe: a signal is never lost to a thread that ignores it.
// Unchecked: the source is set up in init and only cancelled afterwards; the state is under a lock.
final class TerminationSignal: @unchecked Sendable {
    private let state = Mutex<(received: String?, waiter: CheckedContinuation<String, Never>?, hangup: (@Sendable () -> Void)?)>((nil, nil, nil))
    private let source: any DispatchSourceRead

    init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC); _ = fcntl(end, F_SETFL, O_NONBLOCK) }
            signalPipe = ends[1]
        }
        for number in [SIGTERM, SIGINT, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipe, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
        source = DispatchSource.makeReadSource(fileDescriptor: ends[0], queue: DispatchQueue(label: "happyrelay-signals"))
        let readEnd = ends[0]
        source.setEventHandler { [weak self] in
            var bytes = [UInt8](repeating: 0, count: 16)
            while true {
                let count = read(readEnd, &bytes, bytes.count)
                guard count > 0 else { break }
                for number in bytes[..<count] {
                    switch Int32(number) {
                    case SIGHUP: self?.state.withLock { $0.hangup }?()
                    case SIGINT: self?.received("SIGINT")
                    default: self?.received("SIGTERM")
                    }
                }
            }
        }
        source.resume()
    }

    /// What SIGHUP does from now on (before this, it is ignored).
    func onHangup(_ handler: @escaping @Sendable () -> Void) {
        state.withLock { $0.hangup = handler }
    }

    /// SIGHUP is ignored again.
    func stopHangups() {
        state.withLock { $0.hangup = nil }
    }

    private func received(_ name: String) {
        let waiter = state.withLock { state in
            if state.received == nil { state.received = name }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: name)
    }

    /// Waits for the first signal and returns its name.
    func wait() async -> String {
        await withCheckedContinuation { continuation in
            let already = state.withLock { state -> String? in
                if let received = state.received { return received }
                state.waiter = continuation
                return nil
            }
            if let already { continuation.resume(returning: already) }
        }
    }
}
