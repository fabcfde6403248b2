import FoundationEssentials
import Glibc
import RelayCore
import RelayHTTP
import RelayMapping
import Synchronization

/// A local HappyTalk `set_user_info` endpoint for tests, demos and benchmarks. It follows
/// docs/happytalk.md: a configured token, known customer UUIDs and rooms (an
/// empty list accepts any), the documented failures with their codes and messages, and a
/// record of every accepted call, one body per line exactly as received.
package final class MockUpstream: Sendable {
    package struct Configuration: Sendable {
        /// The accepted token; nil accepts any non-empty token.
        package var token: String?
        package var uuids: Set<String> = []
        package var rooms: Set<String> = []
        /// Appended with each accepted body and a newline, written through per call.
        package var recordPath: String?
        /// Added before every answer.
        package var latency: Duration = .zero
        /// Answer this HTTP status instead (for `failRate` of the calls).
        package var failStatus: Int?
        package var failRate = 1.0
        /// Sent as `Retry-After` with each injected failure.
        package var retryAfter: String?
        /// Close the connection after every answer.
        package var closeConnections = false

        package init() {}
    }

    package let configuration: Configuration
    /// The `--record` file, open for appending; one line written at a time, whichever loop
    /// writes it (a FIFO would otherwise mix lines longer than its atomic size).
    private let record: Mutex<Int32?>
    private let accepted = Atomic<Int>(0)

    package init(configuration: Configuration) throws(SettingsError) {
        self.configuration = configuration
        var descriptor: Int32?
        if let path = configuration.recordPath {
            descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor! >= 0 else { throw SettingsError("--record: cannot open \(path)") }
        }
        record = Mutex(descriptor)
    }

    deinit {
        record.withLock { descriptor in
            if let descriptor { close(descriptor) }
        }
    }

    /// Calls accepted so far.
    package var acceptedCount: Int { accepted.load(ordering: .relaxed) }

    /// Adds the endpoint (and `/healthz`) to a router.
    package func register(in router: inout Router) {
        router.add(.get, "/healthz", .immediate { _ in .json(.ok, "{\"status\":\"ok\"}") })
        if configuration.latency > .zero {
            router.add(.post, HappyTalkUpstream.path, .async { [self] request in
                try? await Task.sleep(for: configuration.latency)
                return answer(request)
            })
        } else {
            router.add(.post, HappyTalkUpstream.path, .immediate { [self] request in answer(request) })
        }
    }

    func answer(_ request: HTTPRequest) -> HTTPResponse {
        var response = decide(request)
        if configuration.closeConnections { response.headers.add(name: "connection", value: "close") }
        return response
    }

    private func decide(_ request: HTTPRequest) -> HTTPResponse {
        if let status = configuration.failStatus, Double.random(in: 0..<1) < configuration.failRate {
            var headers = HTTPHeaders()
            if let retryAfter = configuration.retryAfter { headers.add(name: "retry-after", value: retryAfter) }
            return .json(.code(status), "{\"error\":\"injected failure\"}", headers: headers)
        }
        guard case .object(let members)? = try? JSONParser().parse(request.body) else {
            return Self.fail(-1, "invalid json")
        }
        var fields: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let text) = value else { return Self.fail(-1, "\(key) must be a string") }
            fields[key] = text
        }
        guard let token = fields["token"], !token.isEmpty, configuration.token.map({ $0 == token }) ?? true else {
            return Self.fail(-501, "token")
        }
        guard let uuid = fields["uuid"], !uuid.isEmpty else { return Self.fail(-501, "uuid") }
        if !configuration.uuids.isEmpty && !configuration.uuids.contains(uuid) { return Self.fail(-503, "users") }
        guard let room = fields["room_id"], !room.isEmpty, configuration.rooms.isEmpty || configuration.rooms.contains(room) else {
            return Self.fail(-503, "room")
        }
        record.withLock { descriptor in
            if let descriptor { FileBytes.write(request.body + [UInt8(ascii: "\n")], to: descriptor) }
        }
        accepted.wrappingAdd(1, ordering: .relaxed)
        return .json(.ok, "{\"result\":\"success\"}")
    }

    static func fail(_ code: Int, _ message: String) -> HTTPResponse {
        .json(.ok, "{\"result\":\"fail\",\"code\":\(code),\"message\":\"\(message)\"}")
    }

    /// The options of `happyrelay mock-upstream`.
    package static let options: [CommandLineOption] = [
        CommandLineOption("--listen", value: "HOST:PORT", help: "address to listen on (default 127.0.0.1:8081)"),
        CommandLineOption("--token", value: "T", help: "the token to accept (default: any non-empty token)"),
        CommandLineOption("--uuid", value: "U", help: "a known customer uuid (repeatable; none: any)"),
        CommandLineOption("--room", value: "ID", help: "a known room id (repeatable; none: any)"),
        CommandLineOption("--record", value: "FILE", help: "append every accepted call, one JSON body per line"),
        CommandLineOption("--latency", value: "MS", help: "wait this many milliseconds before answering"),
        CommandLineOption("--fail-status", value: "CODE", help: "answer with this HTTP status instead (see --fail-rate)"),
        CommandLineOption("--fail-rate", value: "R", help: "share of calls that get --fail-status, 0 to 1 (default 1)"),
        CommandLineOption("--retry-after", value: "VALUE", help: "send this Retry-After header with every injected failure"),
        CommandLineOption("--close-connections", help: "close the connection after every answer"),
        .help,
    ]

    /// Parses `mock-upstream` arguments into the listen address and configuration.
    package static func parse(_ arguments: [String]) throws(SettingsError) -> (HostAndPort, Configuration) {
        let parsed = try ParsedOptions(arguments, options: options)
        if let extra = parsed.positional.first { throw SettingsError("unexpected argument \(extra)", isUsageError: true) }
        var listen = HostAndPort(host: "127.0.0.1", port: 8081)
        if let text = parsed.value("--listen") {
            guard let address = HostAndPort(parsing: text) else { throw SettingsError("--listen: \"\(text)\" is not HOST:PORT") }
            listen = address
        }
        var configuration = Configuration()
        configuration.token = parsed.value("--token")
        configuration.uuids = Set(parsed.all("--uuid"))
        configuration.rooms = Set(parsed.all("--room"))
        configuration.recordPath = parsed.value("--record")
        configuration.latency = .milliseconds(try parsed.integer("--latency", default: 0, range: 0...600_000))
        if parsed.value("--fail-status") != nil {
            configuration.failStatus = try parsed.integer("--fail-status", default: 500, range: 100...599)
        }
        if let text = parsed.value("--fail-rate") {
            guard let rate = Double(text), (0...1).contains(rate) else { throw SettingsError("--fail-rate: \"\(text)\" is not between 0 and 1") }
            configuration.failRate = rate
        }
        configuration.closeConnections = parsed.isOn("--close-connections")
        configuration.retryAfter = parsed.value("--retry-after")
        return (listen, configuration)
    }
}
