import Foundation
import Synchronization
import TestSupport

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

    let process: ChildProcess
    /// The data folder a `serve` got because its test named none (removed with the process).
    private let ownDataFolder: String?
    private let output = Mutex<String>("")
    private let changed = DispatchSemaphore(value: 0)
    private let outputDone = DispatchSemaphore(value: 0)

    /// Starts `happyrelay ARGUMENTS` with exactly `environment` (plus PATH); `launcher` (a
    /// command and its arguments, such as `prlimit --nofile=64:64`) runs it when given.
    init(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = [], workingDirectory: String? = nil) throws {
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
        } else {
            ownDataFolder = nil
        }
        // A test run that crashes leaves no relay or mock behind.
        env["HAPPYRELAY_EXIT_WITH_PARENT"] = env["HAPPYRELAY_EXIT_WITH_PARENT"] ?? "1"
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw Failure(description: "no pipe: \(String(cString: strerror(errno)))") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let command = launcher.isEmpty ? [Self.executable.path] + arguments : launcher + [Self.executable.path] + arguments
        do {
            process = try ChildProcess(
                command[0], Array(command.dropFirst()), environment: env, workingDirectory: workingDirectory, output: .descriptor(ends[1]))
        } catch {
            close(ends[0])
            close(ends[1])
            throw error
        }
        close(ends[1])
        let reading = ends[0]
        Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(reading, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                output.withLock { $0 += String(decoding: chunk[0..<count], as: UTF8.self) }
                changed.signal()
            }
            close(reading)
            outputDone.signal()
            changed.signal()
        }.start()
    }

    deinit {
        process.terminate()
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
            if let status = process.terminationStatus, outputDone.wait(timeout: .now()) == .success {
                outputDone.signal()
                if log.contains(text) { return log }
                throw Failure(description: "exited (\(status)) without \"\(text)\"; output:\n\(log)")
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
        guard let status = process.waitForExit(timeout: timeout) else {
            throw Failure(description: "did not exit within \(timeout) s (\(process.kernelState)); output:\n\(log)")
        }
        _ = outputDone.wait(timeout: .now() + 5)
        outputDone.signal()
        return status
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
