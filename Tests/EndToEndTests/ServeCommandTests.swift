import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ServeCommandTests {
    @Test func servesHealthAndReadinessAndStopsOnSIGTERM() async throws {
        try await offPool {
            let relay = try RelayProcess(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            let port = try relay.waitForPort()
            let connection = try RawConnection(port: port)
            try connection.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
            let health = try connection.readResponse()
            #expect(health.status == 200)
            #expect(health.text == "{\"status\":\"ok\"}")
            #expect(try connection.readResponse().status == 200)
            #expect(try relay.stop(signal: SIGTERM) == 0)
            #expect(relay.log.contains("\"msg\":\"stopped\""))
        }
    }

    @Test func stopsOnSIGINT() async throws {
        try await offPool {
            let relay = try RelayProcess(["serve", "--listen", "127.0.0.1:0"])
            _ = try relay.waitForPort()
            #expect(try relay.stop(signal: SIGINT) == 0)
        }
    }

    @Test func settingsComeFromTheEnvironmentAndFlagsWin() async throws {
        try await offPool {
            let relay = try RelayProcess(
                ["serve", "--listen", "127.0.0.1:0"], environment: ["HAPPYRELAY_LISTEN": "127.0.0.1:1", "HAPPYRELAY_MAX_BODY": "10"])
            let port = try relay.waitForPort()
            #expect(port != 1)
            let connection = try RawConnection(port: port)
            try connection.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
            #expect(try connection.readResponse().status == 413)
            _ = try relay.stop()
        }
    }

    @Test func helpAndVersion() async throws {
        try await offPool {
            let help = try RelayProcess.run(["serve", "--help"])
            #expect(help.status == 0)
            #expect(help.output.contains("--listen HOST:PORT"))
            #expect(help.output.contains("HAPPYRELAY_IDLE_TIMEOUT"))
            // What PostgreSQL needs on the machine, said where the flag is.
            #expect(help.output.contains("needs libpq, libpq5 on Debian"))
            let top = try RelayProcess.run(["--help"])
            #expect(top.status == 0)
            #expect(top.output.contains("serve"))
            let version = try RelayProcess.run(["--version"])
            #expect(version.status == 0)
            #expect(version.output.hasPrefix("happyrelay "))
        }
    }

    struct BadInvocation: Sendable, CustomTestStringConvertible {
        let arguments: [String]
        var environment: [String: String] = [:]
        let status: Int32
        let message: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let badInvocations: [BadInvocation] = [
        BadInvocation(arguments: ["serve", "--lisen", "127.0.0.1:0"], status: 2, message: "unknown option --lisen (did you mean --listen?)"),
        BadInvocation(arguments: ["serve", "--listen"], status: 2, message: "--listen needs a value"),
        BadInvocation(arguments: ["frobnicate"], status: 2, message: "unknown command"),
        BadInvocation(arguments: [], status: 2, message: "usage: happyrelay"),
        BadInvocation(arguments: ["serve", "--listen", "127.0.0.1:70000"], status: 1, message: "is not HOST:PORT"),
        BadInvocation(arguments: ["serve", "--max-body", "lots"], status: 1, message: "--max-body: \"lots\" is not a whole number"),
        BadInvocation(arguments: ["serve"], environment: ["HAPPYRELAY_IDLE_TIMEOUT": "-3"], status: 1, message: "HAPPYRELAY_IDLE_TIMEOUT: \"-3\" is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        BadInvocation(arguments: ["serve", "--log-level", "loud"], status: 1, message: "is not trace, debug, info, warning or error"),
        BadInvocation(arguments: ["serve", "--listen", "192.0.2.1:8080"], status: 1, message: "cannot listen on 192.0.2.1:8080"),
        BadInvocation(arguments: ["serve"], environment: ["HAPPYRELAY_MAPPINGS": "/nonexistent/maps"], status: 1, message: "HAPPYRELAY_MAPPINGS: the folder /nonexistent/maps does not exist"),
        BadInvocation(arguments: ["serve", "--mappings", "/etc/hostname"], status: 1, message: "--mappings: /etc/hostname is not a readable folder"),
        BadInvocation(
            arguments: ["serve", "--listen", "127.0.0.1:0", "--mappings", MappingCommandTests.mappings, "--data-dir", "/etc/hostname/data"],
            environment: ["HAPPYTALK_TOKEN": "t"], status: 1, message: "cannot open the delivery queue in /etc/hostname/data"),
        BadInvocation(arguments: ["serve", "--upstream-ca-file", "/nonexistent/ca.pem"], status: 1, message: "cannot load CA certificates from /nonexistent/ca.pem"),
        BadInvocation(arguments: ["serve"], environment: ["HAPPYTALK_TOKEN_FILE": "/nonexistent/token"], status: 1, message: "HAPPYTALK_TOKEN_FILE: cannot read /nonexistent/token"),
        BadInvocation(arguments: ["serve", "--print-config"], environment: ["HAPPYTALK_TOKEN_FILE": "/nonexistent/token"], status: 1, message: "HAPPYTALK_TOKEN_FILE: cannot read /nonexistent/token"),
        BadInvocation(arguments: ["serve"], environment: ["HAPPYRELAY_DRY_RUN": "maybe"], status: 1, message: "HAPPYRELAY_DRY_RUN: \"maybe\" is not 1, true, yes, on, 0, false, no or off"),
    ]

    @Test func printConfigShowsEffectiveSettingsWithoutSecrets() async throws {
        let result = try await offPool {
            try RelayProcess.run(
                ["serve", "--print-config", "--max-connections", "77"],
                environment: ["HAPPYTALK_TOKEN": "tok-print-config-secret", "HAPPYRELAY_ADMIN_TOKEN": "adm-print-config-secret", "HAPPYRELAY_LOG_LEVEL": "debug"])
        }
        #expect(result.status == 0)
        #expect(!result.output.contains("print-config-secret"))
        #expect(result.output.contains("HAPPYRELAY_MAX_CONNECTIONS=77"))
        #expect(result.output.contains("HAPPYRELAY_LOG_LEVEL=debug"))
        #expect(result.output.contains("# HAPPYTALK_TOKEN is set (redacted)"))
        #expect(!result.output.contains("listening on"))
    }

    @Test(arguments: badInvocations)
    func badInvocationsExitWithOneClearLine(_ invocation: BadInvocation) async throws {
        let result = try await offPool { try RelayProcess.run(invocation.arguments, environment: invocation.environment) }
        #expect(result.status == invocation.status)
        #expect(result.output.contains(invocation.message), "\(result.output)")
        if invocation.status == 1 {
            #expect(result.output.split(separator: "\n").count == 1, "\(result.output)")
        }
    }

    @Test func serveRefusesToStartWithInvalidMappings() async throws {
        let temporary = TemporaryFolder()
        defer { withExtendedLifetime(temporary) {} }
        let folder = temporary.url
        try #"{ "route": "/a", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u", "room_id": "r", "token": "x" } } ] }"#
            .write(to: folder.appendingPathComponent("a.json"), atomically: false, encoding: .utf8)
        let result = try await offPool { try RelayProcess.run(["serve", "--listen", "127.0.0.1:0", "--mappings", folder.path]) }
        #expect(result.status == 1)
        #expect(result.output.contains("a.json: /rules/0/set/token: \"token\" cannot be set"))
        #expect(!result.output.contains("listening on"))
    }

    @Test func serveLoadsTheShippedMappings() async throws {
        try await offPool {
            let relay = try RelayProcess(["serve", "--listen", "127.0.0.1:0", "--mappings", MappingCommandTests.mappings, "--log-format", "text"])
            _ = try relay.waitForPort()
            #expect(relay.log.contains("/hooks/shopify/orders"))
            _ = try relay.stop()
        }
    }

    /// A relay on the shipped mappings with a token and their secrets (not a dry run: its store
    /// is open), its port open; nothing is sent.
    static func relayWithAToken(adminToken: String? = nil) throws -> RelayProcess {
        var environment = ["HAPPYTALK_TOKEN": "t", "CHATBOT_RELAY_SECRET": "s", "SHOPIFY_WEBHOOK_SECRET": "s", "WOOCOMMERCE_WEBHOOK_SECRET": "s"]
        environment["HAPPYRELAY_ADMIN_TOKEN"] = adminToken
        let relay = try RelayProcess(
            ["serve", "--listen", "127.0.0.1:0", "--mappings", MappingCommandTests.mappings, "--upstream", "http://127.0.0.1:9"],
            environment: environment)
        _ = try relay.waitForPort()
        return relay
    }

    /// The names the kernel knows the threads of `relay` by.
    static func threadNames(_ relay: RelayProcess) -> Set<String> {
        let tasks = "/proc/\(relay.process.processIdentifier)/task"
        return Set(
            ((try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []).compactMap {
                try? String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
            })
    }

    /// Each thread carries its name into the kernel, where `top -H`, `perf` and /proc read it:
    /// one event loop per core, the store writer, the lookup workers of routes that resolve
    /// bindings, the admin API's and /metrics' workers.
    @Test func threadsAreNamedForTheKernel() async throws {
        try await offPool {
            // Not a dry run, so that the store writer and the lookups run; the admin API on.
            let relay = try Self.relayWithAToken(adminToken: "a-t0ken")
            func names() -> Set<String> { Self.threadNames(relay) }
            let loops = (0..<ProcessInfo.processInfo.activeProcessorCount).map { "hr-loop-\($0)" }
            let expected = Set(loops + ["hr-store", "hr-lookup-0", "hr-lookup-1", "hr-admin-0", "hr-admin-1", "hr-metrics-0", "hr-parent"])
            // A thread names itself as it starts, which may be just after the port is printed.
            let deadline = Date().addingTimeInterval(5)
            while !expected.isSubset(of: names()) && Date() < deadline { usleep(10_000) }
            #expect(expected.isSubset(of: names()), "\(names().sorted())")
            _ = try relay.stop()
        }
    }

    /// Without `HAPPYRELAY_ADMIN_TOKEN` the admin API is off: every `/admin/…` path answers as
    /// an unknown path does, at once, and no thread is started for it.
    @Test func withoutAnAdminTokenTheAdminAPIIsOff() async throws {
        try await offPool {
            let relay = try Self.relayWithAToken()
            let port = try relay.waitForPort()
            for path in ["/admin/", "/admin/deliveries", "/admin/console.js"] {
                let answer = try RawConnection.request(port: port, "GET", path)
                let unknown = try RawConnection.request(port: port, "GET", "/nowhere")
                #expect(answer.status == 404 && answer.text == unknown.text.replacingOccurrences(of: "/nowhere", with: path), "\(answer.text)")
            }
            // The threads that do start are there by now (the store writer among them).
            let deadline = Date().addingTimeInterval(5)
            while !Self.threadNames(relay).contains("hr-metrics-0") && Date() < deadline { usleep(10_000) }
            let names = Self.threadNames(relay)
            #expect(names.contains("hr-metrics-0") && !names.contains { $0.hasPrefix("hr-admin") }, "\(names.sorted())")
            _ = try relay.stop()
        }
    }

    /// `HAPPYRELAY_EXIT_WITH_PARENT=1` (set on every relay and mock a test starts): when the
    /// process that started it dies, however it dies, the relay ends too, so that a killed test
    /// run leaves none behind.
    @Test func aRelayEndsWithTheProcessThatStartedIt() async throws {
        try await offPool {
            // The shell starts the relay and prints its pid, then waits; the shell is then killed.
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/bin/sh")
            shell.arguments = ["-c", "\"$0\" mock-upstream --listen 127.0.0.1:0 >/dev/null 2>&1 & echo $!; wait", RelayProcess.executable.path]
            shell.environment = ["HAPPYRELAY_EXIT_WITH_PARENT": "1", "PATH": "/usr/bin:/bin"]
            let output = Pipe()
            shell.standardOutput = output
            try shell.run()
            let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            let relay = try #require(Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(kill(relay, 0) == 0, "the relay runs")
            kill(shell.processIdentifier, SIGKILL)
            shell.waitUntilExit()
            // Gone (or a zombie awaiting its new parent) within seconds.
            let deadline = Date().addingTimeInterval(10)
            func isRunning() -> Bool {
                guard let stat = try? String(contentsOfFile: "/proc/\(relay)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
                return stat[stat.index(close, offsetBy: 2)] != "Z"
            }
            while isRunning() && Date() < deadline { usleep(20_000) }
            #expect(!isRunning(), "the relay outlived the process that started it")
            if isRunning() { kill(relay, SIGKILL) }
        }
    }

    /// libpq (and Kerberos, LDAP, GnuTLS behind it) is opened only for a PostgreSQL store: a
    /// relay on SQLite does not map it. Nor does any relay map Foundation and its ICU (about
    /// 9 MB): the shipped mappings use `nfkc`, `regex_replace` and `date`, which are the
    /// relay's own.
    @Test func aRelayOnSQLiteLoadsNeitherLibpqNorFoundation() async throws {
        try await offPool {
            // Not a dry run, so that the relay opens its SQLite store.
            let relay = try Self.relayWithAToken()
            // Read to the end: /proc files report no size, and a sized read stops at the first page.
            let file = try #require(FileHandle(forReadingAtPath: "/proc/\(relay.process.processIdentifier)/maps"))
            let maps = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
            // The libraries by name, so that a failure names them rather than printing the maps.
            let mapped = Set(maps.split(separator: "\n").compactMap { $0.split(separator: "/").last.map(String.init) })
            #expect(mapped.contains { $0.hasPrefix("libsqlite3") }, "the maps are read from the relay")
            #expect(mapped.contains("libFoundationEssentials.so"))
            let unwanted = mapped.filter {
                $0.hasPrefix("libpq") || ["libFoundation.so", "libFoundationInternationalization.so", "lib_FoundationICU.so"].contains($0)
            }
            #expect(unwanted.isEmpty, "mapped: \(unwanted.sorted())")
            _ = try relay.stop()
        }
    }

    @Test func addressInUseIsOneLineAndExit1() async throws {
        try await offPool {
            // Each gets a data folder of its own from `RelayProcess`: no lock of the first's
            // database holds the second before it tries the port.
            let first = try RelayProcess(["serve", "--listen", "127.0.0.1:0"])
            let port = try first.waitForPort()
            let second = try RelayProcess.run(["serve", "--listen", "127.0.0.1:\(port)"])
            #expect(second.status == 1)
            #expect(second.output.contains("Address already in use"))
            #expect(second.output.split(separator: "\n").count == 1)
            _ = try first.stop()
        }
    }
}
