import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A program the tests start with `posix_spawn`, given none of the test process's descriptors
/// but the three standard streams, and waited for by a thread of its own.
///
/// Foundation's `Process` is not used for the relays and mocks: it learns that a child ended
/// when a socket the child inherited reaches its end, all on one shared thread, which then
/// calls a blocking `waitpid`. Under the full suite's load on two cores, CI saw seven relays
/// log "stopped" and none of them noticed as ended within 20 s. Here each child has its own
/// waiter, and a timeout can say what state the process is in.
package final class ChildProcess: Sendable {
    /// Where the child's standard output and standard error go.
    package enum Output {
        /// Both to the file at this path (created or truncated).
        case file(String)
        /// Both to this descriptor (the write end of a pipe).
        case descriptor(Int32)
    }

    package let processIdentifier: pid_t
    /// `waitpid`'s status once the child has ended.
    private let status = Mutex<Int32?>(nil)
    private let ended = DispatchSemaphore(value: 0)

    /// Starts `program` with `arguments`; `environment` nil passes the test process's own.
    /// Standard input is `input` or /dev/null. The child leads a process group of its own, as
    /// with Foundation, so a terminal's Ctrl-C reaches the test runner only.
    package init(
        _ program: String, _ arguments: [String], environment: [String: String]? = nil, workingDirectory: String? = nil,
        input: Int32? = nil, output: Output
    ) throws {
        processIdentifier = try Self.spawn(program, arguments, environment: environment, workingDirectory: workingDirectory, input: input, output: output)
        let pid = processIdentifier
        Thread { [self] in
            var result: Int32 = 0
            while waitpid(pid, &result, 0) < 0 && errno == EINTR {}
            status.withLock { $0 = result }
            ended.signal()
        }.start()
    }

    /// True until the child has ended and been reaped.
    package var isRunning: Bool { status.withLock { $0 == nil } }

    /// The exit status, or the number of the signal that ended the child (as Foundation's
    /// `terminationStatus`); nil while it runs.
    package var terminationStatus: Int32? {
        status.withLock { $0 }.map { Self.exitStatus($0) }
    }

    /// Waits up to `timeout` seconds (nil: as long as it takes) for the end; returns the status
    /// as `terminationStatus`, nil when the time ran out.
    package func waitForExit(timeout: Double? = nil) -> Int32? {
        if let status = terminationStatus { return status }
        guard ended.wait(timeout: timeout.map { .now() + $0 } ?? .distantFuture) == .success else { return nil }
        ended.signal()
        return terminationStatus
    }

    /// Runs `program` to its end, with `input` (if any) on its standard input; returns its exit
    /// status and what it wrote to standard output and standard error (through a file, so that
    /// nothing the program leaves running can hold the read open).
    package static func run(
        _ program: String, _ arguments: [String], environment: [String: String]? = nil, input: String? = nil
    ) throws -> (status: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-out-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var inputDescriptor: Int32?
        if let input {
            let inputPath = outputPath + "-in"
            try Data(input.utf8).write(to: URL(fileURLWithPath: inputPath))
            inputDescriptor = open(inputPath, O_RDONLY | O_CLOEXEC)
            unlink(inputPath)
        }
        defer { inputDescriptor.map { _ = close($0) } }
        let child = try ChildProcess(program, arguments, environment: environment, input: inputDescriptor, output: .file(outputPath))
        let status = child.waitForExit() ?? -1
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    /// Sends SIGTERM while the child runs.
    package func terminate() {
        if isRunning { kill(processIdentifier, SIGTERM) }
    }

    /// What the kernel says of a child that has not ended: its state and, per thread, the
    /// kernel function it waits in (for a timeout's message).
    package var kernelState: String {
        let base = "/proc/\(processIdentifier)"
        let state = (try? String(contentsOfFile: base + "/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init) ?? "State: gone"
        let threads = ((try? FileManager.default.contentsOfDirectory(atPath: base + "/task")) ?? []).sorted().map { task in
            let name = (try? String(contentsOfFile: "\(base)/task/\(task)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            let wait = (try? String(contentsOfFile: "\(base)/task/\(task)/wchan", encoding: .utf8)) ?? "?"
            return "\(name): \(wait)"
        }
        return "\(state); threads: \(threads.joined(separator: ", "))"
    }

    private static func exitStatus(_ status: Int32) -> Int32 {
        // WIFSIGNALED: the signal's number; otherwise WEXITSTATUS.
        status & 0x7F != 0 ? status & 0x7F : (status >> 8) & 0xFF
    }

    /// Starts `program` and returns its pid.
    private static func spawn(
        _ program: String, _ arguments: [String], environment: [String: String]? = nil, workingDirectory: String? = nil,
        input: Int32?, output: Output
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Nothing of the test process but the three standard streams reaches the child: an
        // inherited descriptor (a test's connection, another child's pipe) would stay open as
        // long as the child does, and anything it starts that outlives it (the server pg_ctl
        // leaves running). (glibc 2.34+; Glibc's Swift module does not declare these.)
        guard let closeFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np"),
            let changeDirectory = dlsym(nil, "posix_spawn_file_actions_addchdir_np")
        else {
            throw SpawnFailure("this C library cannot close inherited descriptors in a spawned process (glibc 2.34 or later can)")
        }
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
        // Actions run in order: the streams are taken before the rest is closed.
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        switch output {
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        case .descriptor(let descriptor):
            posix_spawn_file_actions_adddup2(&actions, descriptor, 1)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        _ = unsafeBitCast(closeFrom, to: CloseFrom.self)(&actions, 3)
        if let workingDirectory {
            _ = unsafeBitCast(changeDirectory, to: ChangeDirectory.self)(&actions, workingDirectory)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var pid: pid_t = 0
        let spawned = envp.map { posix_spawn(&pid, program, &actions, &attributes, argv, $0) } ?? posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw SpawnFailure("cannot start \(program): \(String(cString: strerror(spawned)))") }
        return pid
    }

    package struct SpawnFailure: Error, CustomStringConvertible {
        package let description: String
        init(_ description: String) { self.description = description }
    }
}
