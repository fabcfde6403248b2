import Foundation
import Testing

@testable import RelayCore
@testable import RelayCrypto

/// The real `happyrelay serve` in front of the real `happyrelay mock-upstream`, both on
/// ephemeral ports, with mapping files written for the test.
final class RelayHarness: @unchecked Sendable {
    static let token = "tok-Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8"

    let directory: URL
    private(set) var mock: RelayProcess
    private let mockArguments: [String]
    private(set) var relay: RelayProcess
    private(set) var relayPort: Int
    private let relayCommand: [String]
    private let relayEnvironment: [String: String]
    let mockPort: Int
    let recordPath: String
    /// Every response body read through `post`, for the leak test.
    private(set) var responses: [String] = []

    /// Writes `mappings` (file name → JSON text) and `files` (name → text, in the harness's
    /// folder, which `{{DIR}}` in a mapping names), starts the mock with `mockArguments` and the
    /// relay with `environment`. Everything is removed when the harness is released.
    init(
        mappings: [String: String], files: [String: String] = [:], environment: [String: String] = [:], mockArguments: [String] = [],
        relayArguments: [String] = [], withToken: Bool = true
    ) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("mappings"), withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(to: directory.appendingPathComponent(name), atomically: false, encoding: .utf8)
        }
        for (name, text) in mappings {
            try text.replacingOccurrences(of: "{{DIR}}", with: directory.path)
                .write(to: directory.appendingPathComponent("mappings/\(name)"), atomically: false, encoding: .utf8)
        }
        recordPath = directory.appendingPathComponent("calls.jsonl").path
        self.mockArguments = mockArguments
        mock = try RelayProcess(["mock-upstream", "--listen", "127.0.0.1:0", "--token", Self.token, "--record", recordPath] + mockArguments)
        mockPort = try mock.waitForPort()
        var env = environment
        if withToken { env["HAPPYTALK_TOKEN"] = Self.token }
        relayCommand =
            ["serve", "--listen", "127.0.0.1:0", "--mappings", directory.appendingPathComponent("mappings").path,
             "--upstream", "http://127.0.0.1:\(mockPort)", "--data-dir", directory.appendingPathComponent("data").path,
             "--log-format", "json", "--log-level", "debug",
             // Retries of a delivery that failed during a test's outage come within a second of recovery.
             "--retry-max-delay", "1"] + relayArguments
        relayEnvironment = env
        relay = try RelayProcess(relayCommand, environment: env)
        relayPort = try relay.waitForPort()
    }

    deinit {
        _ = try? relay.stop()
        _ = try? mock.stop()
        releasePortGuard()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops the relay (SIGTERM, or SIGKILL to simulate a crash) and starts it again on the same
    /// data directory, with its first environment or that one changed by `environment`.
    func restartRelay(signal: Int32 = SIGTERM, environment changes: [String: String?] = [:]) throws {
        if relay.process.isRunning { _ = try relay.stop(signal: signal) }
        var environment = relayEnvironment
        for (name, value) in changes { environment[name] = value }
        relay = try RelayProcess(relayCommand, environment: environment)
        relayPort = try relay.waitForPort()
    }

    /// Holds the stopped mock's port (bound, never listening) so that the relay's connections
    /// are refused, and no other test's server can take the port while HappyTalk is "down".
    private var portGuard: Int32 = -1

    /// Stops the mock: HappyTalk is unreachable until `restartMock`. Returns its exit status.
    @discardableResult
    func stopMock() throws -> Int32 {
        let output = try mock.stop()
        portGuard = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(portGuard, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(mockPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        // The stopped mock's connections hold the port until the relay has closed its ends of
        // them (the kernel keeps each in FIN_WAIT_2, which SO_REUSEADDR does not pass): moments,
        // longer on a loaded machine. Until then the port is tried again.
        let deadline = ContinuousClock.now + .seconds(10)
        var bound: Int32 = -1
        while true {
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(portGuard, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 || errno != EADDRINUSE || ContinuousClock.now > deadline { break }
            usleep(10_000)
        }
        #expect(bound == 0, "the mock's port \(mockPort) was taken by another process")
        return output
    }

    private func releasePortGuard() {
        if portGuard >= 0 { close(portGuard) }
        portGuard = -1
    }

    /// Starts the mock again on the port it had (after a test stopped it), with its first
    /// arguments or new ones.
    func restartMock(arguments: [String]? = nil) throws {
        if mock.process.isRunning { _ = try mock.stop() }
        releasePortGuard()
        mock = try RelayProcess(
            ["mock-upstream", "--listen", "127.0.0.1:\(mockPort)", "--token", Self.token, "--record", recordPath] + (arguments ?? mockArguments))
        _ = try mock.waitForPort()
    }

    /// `GET path` on a fresh connection.
    func get(_ path: String) throws -> RawConnection.Response {
        try post(path, body: "", headers: [], method: "GET")
    }

    /// The relay's data directory (where `--data-dir` points unless a test moved it).
    var dataDirectory: String { directory.appendingPathComponent("data").path }

    /// Waits until the mock has recorded `count` calls (or `timeout` passes); returns them.
    @discardableResult
    func waitForCalls(_ count: Int, timeout: Double = 30) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while recordedCalls.count < count && Date() < deadline { usleep(20_000) }
        return recordedCalls
    }

    /// Sends one request on a fresh connection and reads the answer.
    func post(
        _ path: String, body: String, headers: [(String, String)] = [("Content-Type", "application/json")], method: String = "POST"
    ) throws -> RawConnection.Response {
        let response = try RawConnection.request(port: relayPort, method, path, body: body, headers: headers)
        responses.append(response.text)
        return response
    }

    /// The calls the mock accepted, one body per line, exactly as received.
    var recordedCalls: [String] {
        ((try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// A sync route file around a verify block.
    static func route(_ path: String, verify: String, extra: String = "") -> String {
        """
        { "route": "\(path)", "verify": \(verify), "delivery": "sync", \(extra)
          "rules": [ { "name": "r", "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }
        """
    }

    static let body = #"{"uuid":"u-1","room":"r-1"}"#
    static let expectedCall = #"{"token":"\#(token)","uuid":"u-1","room_id":"r-1"}"#
}

/// Signatures as the senders compute them.
enum Sign {
    static func hmac256(_ secret: String, _ message: String) -> [UInt8] {
        HMAC.authenticationCode(SHA256.self, key: Array(secret.utf8), message: Array(message.utf8))
    }
    static func base64(_ bytes: [UInt8], urlSafe: Bool = false) -> String { ByteEncoding.base64(bytes, urlSafe: urlSafe) }
    static func hex(_ bytes: [UInt8]) -> String { ByteEncoding.hex(bytes) }
    static var now: Int { Int(Date().timeIntervalSince1970) }
}
