import Foundation
import Synchronization
import RelayCore
import RelayHTTP

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
          serve      run the relay
        
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
        let logger = Logger(level: settings.logLevel, format: settings.logFormat ?? (isatty(2) != 0 ? .text : .json))

        var router = Router()
        OperationalRoutes.add(to: &router, readiness: { nil })
        let server: HTTPServer
        do {
            server = try HTTPServer(configuration: settings.serverConfiguration, router: router)
        } catch {
            fail("happyrelay serve: cannot listen on \(settings.listen): \(error)", code: 1)
        }
        let bound = HostAndPort(host: settings.listen.host, port: server.port)
        logger.info("listening on \(bound)", ["version": version])

        let signal = await waitForTermination()
        logger.info("shutting down", ["signal": signal])
        await server.shutdown()
        logger.info("stopped")
        exit(0)
    }

    /// Waits for SIGTERM or SIGINT and returns its name.
    static func waitForTermination() async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let resumed = SignalWaiter(continuation: continuation)
            for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
                Glibc.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { resumed.resume(name) }
                source.resume()
                resumed.retain(source)
            }
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(code)
    }
}

/// Resumes a continuation once, from whichever signal arrives first, and keeps the signal
/// sources alive until then.
final class SignalWaiter: Sendable {
    private let state: Mutex<(continuation: CheckedContinuation<String, Never>?, sources: [any DispatchSourceSignal])>

    init(continuation: CheckedContinuation<String, Never>) {
        state = Mutex((continuation, []))
    }

    func retain(_ source: any DispatchSourceSignal) {
        state.withLock { $0.sources.append(source) }
    }

    func resume(_ name: String) {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: name)
    }
}
