import Foundation
import Synchronization
import RelayCore
import RelayHTTP
import RelayMapping

#if canImport(Glibc)
import Glibc
#endif

/// The `happyrelay` executable: parses the command, wires the modules, handles signals.
@main
struct HappyRelay {
    static let version = "0.1.0"

    static let usage = """
        usage: happyrelay <command> [options]

        commands:
          serve                   run the relay
          check                   validate the mapping files and run their examples
          map                     show the set_user_info call a mapping makes of a payload (dry run)
          mock-upstream           a local HappyTalk set_user_info mock for trials and tests
          deliveries list|replay  the async delivery queue: list deliveries, replay dead ones
          bindings list|delete    the bindings that link order numbers, phones, … to chat rooms

        Run `happyrelay <command> --help` for a command's options; `happyrelay --version` prints the version.
        """

    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let environment = ProcessInfo.processInfo.environment
        guard let command = arguments.first else {
            fail(usage, code: 2)
        }
        arguments.removeFirst()
        switch command {
        case "--help", "-h", "help":
            print(usage)
        case "--version":
            print("happyrelay \(version)")
        case "serve":
            await serve(arguments, environment: environment)
        case "mock-upstream":
            await mockUpstream(arguments)
        case "deliveries":
            deliveries(arguments, environment: environment)
        case "bindings":
            bindings(arguments, environment: environment)
        case "check":
            if arguments.contains("--help") {
                print("usage: happyrelay check [--mappings DIR]\n\nValidates every mapping file and runs its examples; exit 0 when all are valid, 1 otherwise.\n\noptions:\n\(helpText(for: MappingCommands.checkOptions))")
                return
            }
            finish(command: "check", usage: "happyrelay check [--mappings DIR]") { () throws(SettingsError) in
                try MappingCommands.check(arguments, environment: environment)
            }
        case "map":
            if arguments.contains("--help") {
                print("usage: happyrelay map --route PATH [--header 'Name: value']... [--query 'k=v']... [--mappings DIR] PAYLOAD\n\nPrints the set_user_info body the route's mapping makes of PAYLOAD (a file, or - for standard input), token shown as \"***\"; it does not verify signatures and sends nothing. Exit 0 when a call would be made, 3 when ignored, 1 on error.\n\noptions:\n\(helpText(for: MappingCommands.mapOptions))")
                return
            }
            finish(command: "map", usage: "happyrelay map --route PATH [options] PAYLOAD") { () throws(SettingsError) in
                try MappingCommands.map(arguments, environment: environment) {
                    Array(FileHandle.standardInput.readDataToEndOfFile())
                }
            }
        default:
            fail("happyrelay: unknown command \"\(command)\"\n\(usage)", code: 2)
        }
    }

    static func serve(_ arguments: [String], environment: [String: String]) async {
        if arguments.contains("--help") {
            print("usage: happyrelay serve [options]\n\nRuns the relay.\n\noptions:\n\(helpText(for: ServeSettings.options))")
            return
        }
        let settings: ServeSettings
        do {
            settings = try ServeSettings.parse(arguments, environment: environment)
        } catch {
            fail(
                "happyrelay serve: \(error.message)"
                    + (error.isUsageError ? "\nusage: happyrelay serve [options] (see happyrelay serve --help)" : ""),
                code: error.exitCode)
        }
        if settings.printConfig {
            do {
                _ = try Credentials.load(environment: environment)
            } catch {
                fail("happyrelay serve: \(error.message)", code: 1)
            }
            print(settings.describe(environment: environment))
            return
        }
        let termination = TerminationSignal()
        let logger = Logger(level: settings.logLevel, format: settings.logFormat ?? (isatty(2) != 0 ? .text : .json))

        do {
            try settings.checkMappingsFolder()
        } catch {
            fail("happyrelay serve: \(error.message)", code: 1)
        }
        let routes: [MappingRoute]
        switch MappingLoader.loadDirectory(settings.mappings) {
        case .success(let loaded): routes = loaded
        case .failure(let diagnostics):
            fail(diagnostics.items.map(\.description).joined(separator: "\n") + "\nhappyrelay serve: the mappings in \(settings.mappings) have errors (see happyrelay check)", code: 1)
        }
        let credentials: Credentials
        do {
            credentials = try Credentials.load(environment: environment)
        } catch {
            fail("happyrelay serve: \(error.message)", code: 1)
        }
        let client: HTTPClient
        let upstream: HappyTalkUpstream
        do {
            let tls = try TLSClientFactory(caFile: settings.upstreamCAFile)
            client = try HTTPClient(configuration: .init(maxConnectionsPerEndpoint: 64), tls: tls)
            upstream = try HappyTalkUpstream(baseURL: settings.upstream, client: client)
        } catch {
            fail("happyrelay serve: \(error)", code: 1)
        }
        let metrics = RelayMetrics()
        var queue: DeliveryQueue?
        if !settings.isDryRun && !credentials.isEmpty {
            do {
                var configuration = DeliveryQueue.Configuration()
                configuration.concurrency = settings.upstreamConcurrency
                configuration.maxPending = settings.queueLimit
                configuration.ratePerSecond = settings.upstreamRate
                configuration.maxBytes = settings.queueMaxBytes
                configuration.retention = settings.retention
                configuration.policy.maxDelay = settings.retryMaxDelay
                // For tests only: where to stop the process (see CrashTests).
                configuration.crashPoint = environment["HAPPYRELAY_TEST_CRASH"].flatMap(DeliveryQueue.CrashPoint.init(rawValue:))
                queue = try DeliveryQueue(
                    directory: settings.dataDirectory, upstream: upstream, credentials: credentials, configuration: configuration,
                    logger: logger, metrics: metrics)
            } catch {
                fail("happyrelay serve: cannot open the delivery queue in \(settings.dataDirectory): \(error)", code: 1)
            }
        }
        var lookups: SQLiteBindings?
        if let queue {
            do {
                lookups = try SQLiteBindings(path: queue.databasePath)
            } catch {
                fail("happyrelay serve: cannot open the bindings in \(settings.dataDirectory): \(error)", code: 1)
            }
        }
        let relay: Relay
        do {
            relay = try Relay(
                routes: routes, credentials: credentials, upstream: upstream, queue: queue, lookups: lookups,
                dryRun: settings.isDryRun, environment: environment, logger: logger, metrics: metrics)
        } catch {
            fail(error.items.map(\.description).joined(separator: "\n") + "\nhappyrelay serve: fix the settings above, or run without HAPPYTALK_TOKEN to try it in dry-run mode", code: 1)
        }

        var router = Router()
        OperationalRoutes.add(
            to: &router, readiness: { [queue] in queue?.unavailableReason },
            metrics: { [queue, isDryRun = relay.isDryRun] in
                var gauges = RelayMetrics.Gauges()
                gauges.queue = try? queue?.gauges()
                (gauges.upstreamConnectionsOpened, gauges.upstreamRequestsReused) = client.statistics
                gauges.isDryRun = isDryRun
                return metrics.exposition(gauges, version: version)
            })
        relay.register(in: &router)
        if queue != nil {
            AdminRoutes.add(
                to: &router, token: environment["HAPPYRELAY_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
                dataDirectory: settings.dataDirectory, mappings: settings.mappings)
        }
        var serverConfiguration = settings.serverConfiguration
        serverConfiguration.acceptFailure = { logger.error($0) }
        // Descriptors beyond client connections: upstream connections, the database and its
        // readers, the event loops, standard streams, and a margin.
        let limit = OpenFileLimit.raiseToHardLimit()
        let reserved = settings.upstreamConcurrency + 64
        if limit != Int.max && serverConfiguration.maxConnections > limit - reserved {
            let allowed = max(1, limit - reserved)
            logger.warning(
                "--max-connections lowered to what the open-file limit allows",
                ["requested": String(serverConfiguration.maxConnections), "allowed": String(allowed), "open_file_limit": String(limit)])
            serverConfiguration.maxConnections = allowed
        }
        let server: HTTPServer
        do {
            server = try HTTPServer(configuration: serverConfiguration, router: router)
        } catch {
            fail("happyrelay serve: cannot listen on \(settings.listen): \(error)", code: 1)
        }
        logger.info("loaded mappings", ["folder": settings.mappings, "routes": routes.map(\.path).joined(separator: ",")])
        var dataStatus = stat()
        if queue != nil, stat(settings.dataDirectory, &dataStatus) == 0, dataStatus.st_mode & 0o077 != 0 {
            logger.warning(
                "the data directory is open to other users; it holds payloads with personal data: chmod 700 it",
                ["folder": settings.dataDirectory, "mode": "0" + String(dataStatus.st_mode & 0o777, radix: 8)])
        }
        for (path, mode) in Secrets.filesReadableByOthers(routes: routes, environment: environment) {
            logger.warning("a secret file is readable by other users: chmod 600 it", ["file": path, "mode": mode])
        }
        queue?.start()
        let bound = HostAndPort(host: settings.listen.host, port: server.port)
        for path in relay.unverifiedRoutes {
            logger.warning("serving route without verification (dry run: its secret is not set)", ["route": path])
        }
        if relay.isDryRun {
            logger.warning(
                "DRY RUN: nothing is sent to HappyTalk",
                ["reason": settings.isDryRun ? "--dry-run" : "no HAPPYTALK_TOKEN is set"])
        }
        logger.info("listening on \(bound)", ["version": version, "upstream": upstream.endpoint.description, "dry_run": relay.isDryRun ? "true" : "false"])

        let signal = await termination.wait()
        logger.info("shutting down", ["signal": signal])
        await server.shutdown()
        await queue?.shutdown(drain: settings.drainTimeout)
        client.shutdown()
        logger.info("stopped")
        exit(0)
    }

    static func deliveries(_ arguments: [String], environment: [String: String]) -> Never {
        let usage = "happyrelay deliveries list [--state pending|dead|delivered] [--json] --data-dir DIR\n       happyrelay deliveries replay (ID|--all-dead) --data-dir DIR [--mappings DIR]"
        var rest = arguments
        let action = rest.isEmpty ? "" : rest.removeFirst()
        switch action {
        case "list":
            if rest.contains("--help") {
                print("usage: \(usage)\n\noptions:\n\(helpText(for: DeliveryCommands.listOptions))")
                exit(0)
            }
            finish(command: "deliveries list", usage: usage) { () throws(SettingsError) in try DeliveryCommands.list(rest, environment: environment) }
        case "replay":
            if rest.contains("--help") {
                print("usage: \(usage)\n\nPuts dead deliveries back in the queue, re-mapped with the current mapping files; a running relay picks them up within a second.\n\noptions:\n\(helpText(for: DeliveryCommands.replayOptions))")
                exit(0)
            }
            finish(command: "deliveries replay", usage: usage) { () throws(SettingsError) in try DeliveryCommands.replay(rest, environment: environment) }
        case "--help", "-h":
            print("usage: \(usage)")
            exit(0)
        default:
            fail("happyrelay deliveries: expected list or replay\nusage: \(usage)", code: 2)
        }
    }

    static func bindings(_ arguments: [String], environment: [String: String]) -> Never {
        let usage = "happyrelay bindings list [--key KIND=VALUE] [--json] --data-dir DIR\n       happyrelay bindings delete KIND=VALUE --data-dir DIR"
        var rest = arguments
        let action = rest.isEmpty ? "" : rest.removeFirst()
        switch action {
        case "list" where rest.contains("--help"), "--help", "-h":
            print("usage: \(usage)\n\nLists the unexpired bindings: key, uuid, room_id, created, expires.\n\noptions:\n\(helpText(for: BindingCommands.listOptions))")
            exit(0)
        case "delete" where rest.contains("--help"):
            print("usage: \(usage)\n\nDeletes one binding; exit 1 when there was none.\n\noptions:\n\(helpText(for: BindingCommands.deleteOptions))")
            exit(0)
        case "list":
            finish(command: "bindings list", usage: usage) { () throws(SettingsError) in try BindingCommands.list(rest, environment: environment) }
        case "delete":
            finish(command: "bindings delete", usage: usage) { () throws(SettingsError) in try BindingCommands.delete(rest, environment: environment) }
        default:
            fail("happyrelay bindings: expected list or delete\nusage: \(usage)", code: 2)
        }
    }

    static func mockUpstream(_ arguments: [String]) async {
        if arguments.contains("--help") {
            print("usage: happyrelay mock-upstream [options]\n\nA local HappyTalk set_user_info endpoint (\(HappyTalkUpstream.path)).\n\noptions:\n\(helpText(for: MockUpstream.options))")
            return
        }
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
                fail("happyrelay mock-upstream: cannot listen on \(listen): \(error)", code: 1)
            }
            logger.info("listening on \(HostAndPort(host: listen.host, port: server.port))", ["mock": "happytalk"])
        } catch {
            fail("happyrelay mock-upstream: \(error.message)" + (error.isUsageError ? "\nusage: happyrelay mock-upstream [options]" : ""), code: error.exitCode)
        }
        _ = await termination.wait()
        await server.shutdown()
        exit(0)
    }

    /// Prints a command's output and exits with its code (usage errors exit 2).
    static func finish(command: String, usage: String, _ body: () throws(SettingsError) -> MappingCommands.Result) -> Never {
        do {
            let result = try body()
            if !result.lines.isEmpty { print(result.lines.joined(separator: "\n")) }
            exit(result.exitCode)
        } catch {
            fail("happyrelay \(command): \(error.message)" + (error.isUsageError ? "\nusage: \(usage)" : ""), code: error.exitCode)
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(code)
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made (before the relay announces
/// itself, so a supervisor's early signal is never fatal).
final class TerminationSignal: @unchecked Sendable {
    private let state = Mutex<(received: String?, waiter: CheckedContinuation<String, Never>?)>((nil, nil))
    // Written once in init, then only kept alive.
    private let sources: [any DispatchSourceSignal]

    init() {
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            sources.append(DispatchSource.makeSignalSource(signal: number, queue: .global()))
        }
        self.sources = sources
        for (source, name) in zip(sources, ["SIGTERM", "SIGINT"]) {
            source.setEventHandler { [weak self] in self?.received(name) }
            source.resume()
        }
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
