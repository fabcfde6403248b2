import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The real `happyrelay` binary, started as a child process with its output captured.
final class RelayProcess: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The built executable, next to the test bundle.
    static var executable: URL {
        if let override = ProcessInfo.processInfo.environment["HAPPYRELAY_BINARY"] {
            return URL(fileURLWithPath: override)
        }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("happyrelay")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/happyrelay")
    }

    let process = Process()
    /// The data folder a `serve` got because its test named none (removed with the process).
    private var ownDataFolder: String?
    private let output = Mutex<String>("")
    private let changed = DispatchSemaphore(value: 0)
    private let outputDone = DispatchSemaphore(value: 0)

    /// Starts `happyrelay ARGUMENTS` with exactly `environment` (plus PATH); `launcher` (a
    /// command and its arguments, such as `prlimit --nofile=64:64`) runs it when given.
    init(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = [], workingDirectory: String? = nil) throws {
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        if let command = launcher.first {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = Array(launcher.dropFirst()) + [Self.executable.path] + arguments
        } else {
            process.executableURL = Self.executable
            process.arguments = arguments
        }
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        // A `serve` that names no store gets a folder of its own, not the default `data/` of
        // the working directory: relays of tests running at once would share one SQLite file.
        if arguments.first == "serve", workingDirectory == nil, !arguments.contains("--data-dir"), !arguments.contains("--database-url"),
            env["HAPPYRELAY_DATA_DIR"] == nil, env["HAPPYRELAY_DATABASE_URL"] == nil
        {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("relay-data-\(UUID().uuidString)").path
            env["HAPPYRELAY_DATA_DIR"] = folder
            ownDataFolder = folder
        }
        // A test run that crashes leaves no relay or mock behind.
        env["HAPPYRELAY_EXIT_WITH_PARENT"] = env["HAPPYRELAY_EXIT_WITH_PARENT"] ?? "1"
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let handle = pipe.fileHandleForReading
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                output.withLock { $0 += String(decoding: data, as: UTF8.self) }
                changed.signal()
            }
            outputDone.signal()
            changed.signal()
        }
        thread.start()
    }

    deinit {
        if process.isRunning { process.terminate() }
        if let ownDataFolder { try? FileManager.default.removeItem(atPath: ownDataFolder) }
    }

    /// Everything the process wrote so far (stdout and stderr together).
    var log: String { output.withLock { $0 } }

    /// Waits until the output contains `text`; returns the output.
    @discardableResult
    func waitForOutput(containing text: String, timeout: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let current = log
            if current.contains(text) { return current }
            if !process.isRunning && outputDone.wait(timeout: .now()) == .success {
                outputDone.signal()
                if log.contains(text) { return log }
                throw Failure(description: "exited (\(process.terminationStatus)) without \"\(text)\"; output:\n\(log)")
            }
            if Date() > deadline { throw Failure(description: "timed out waiting for \"\(text)\"; output:\n\(current)") }
            _ = changed.wait(timeout: .now() + 0.5)
        }
    }

    /// Waits until the output satisfies `condition` (log lines are read on another thread, so
    /// a line written before an answer may be read after it); returns the output.
    @discardableResult
    func waitForLog(timeout: Double = 10, _ condition: (String) -> Bool) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition(log) && Date() < deadline { _ = changed.wait(timeout: .now() + 0.05) }
        return log
    }

    /// Waits for the `listening on HOST:PORT` line and returns the port.
    func waitForPort() throws -> Int {
        let text = try waitForOutput(containing: "listening on ")
        let line = text.components(separatedBy: "listening on ")[1]
        let address = line.prefix { !$0.isWhitespace && $0 != "\"" }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw Failure(description: "no port in \(line)")
        }
        return port
    }

    /// Sends a signal and waits for the exit; returns the status.
    func stop(signal: Int32 = SIGTERM, timeout: Double = 20) throws -> Int32 {
        kill(process.processIdentifier, signal)
        return try waitForExit(timeout: timeout)
    }

    func waitForExit(timeout: Double = 20) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { throw Failure(description: "did not exit; output:\n\(log)") }
            _ = changed.wait(timeout: .now() + 0.05)
        }
        _ = outputDone.wait(timeout: .now() + 5)
        outputDone.signal()
        return process.terminationStatus
    }

    /// CPU seconds (user and system) the process has used so far.
    var cpuSeconds: Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Runs `happyrelay ARGUMENTS` to completion; returns the exit status and output.
    static func run(_ arguments: [String], environment: [String: String] = [:], workingDirectory: String? = nil) throws -> (status: Int32, output: String) {
        let relay = try RelayProcess(arguments, environment: environment, workingDirectory: workingDirectory)
        let status = try relay.waitForExit()
        return (status, relay.log)
    }
}
