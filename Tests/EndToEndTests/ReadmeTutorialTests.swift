import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The README's five-minute tutorial, run as written: every ```sh block after a
/// `<!-- tutorial -->` marker, in order, in one bash with `set -euo pipefail`. Its `# …`
/// comment lines are the output it promises (`…` stands for anything on the line); they must
/// appear on standard output in that order. Only the ports change (to free ones), and
/// `swift build` is skipped: the binary under test is the `happyrelay` on PATH.
@Suite struct ReadmeTutorialTests {
    struct Tutorial {
        var script: [String] = []
        var expected: [String] = []
    }

    static func tutorial(from readme: String) -> Tutorial {
        var tutorial = Tutorial()
        var state = 0  // 0: prose, 1: after a marker, 2: inside a tutorial block
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            switch state {
            case 0 where line == "<!-- tutorial -->": state = 1
            case 1 where line == "```sh": state = 2
            case 2 where line == "```": state = 0
            case 2:
                if line.hasPrefix("# ") {
                    tutorial.expected.append(String(line.dropFirst(2)))
                } else if !line.hasPrefix("swift build") {
                    tutorial.script.append(line)
                }
            default: break
            }
        }
        return tutorial
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw RelayProcess.Failure(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func tutorialRunsAsWritten() async throws {
        let readme = try String(contentsOf: MappingCommandTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        let tutorial = Self.tutorial(from: readme)
        #expect(tutorial.script.count > 10 && tutorial.expected.count >= 6)
        let (relayPort, mockPort) = (try Self.freePort(), try Self.freePort())
        let body = tutorial.script.joined(separator: "\n")
            .replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(relayPort)")
            .replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(mockPort)")

        // A folder of its own with the shipped mappings and the binary under test on PATH.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("bin"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("mappings"), withDestinationURL: MappingCommandTests.root.appendingPathComponent("mappings"))
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("bin/happyrelay"), withDestinationURL: RelayProcess.executable)
        let script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + body + "\nwait\n"

        let (status, output, errors) = try await offPool { try Self.run(script, in: folder, timeout: 60) }
        #expect(status == 0, "exit \(status) (-1: did not finish in 60 s)\nstdout:\n\(output)\nstderr:\n\(errors)")
        var searchFrom = output.startIndex
        for line in tutorial.expected {
            let pattern = line.split(separator: "…", omittingEmptySubsequences: false).map { NSRegularExpression.escapedPattern(for: String($0)) }
                .joined(separator: "[^\\n]*?")
            guard let found = output.range(of: pattern, options: .regularExpression, range: searchFrom..<output.endIndex) else {
                Issue.record("the README promises \(line) but the tutorial printed:\n\(output)\nstderr:\n\(errors)")
                break
            }
            searchFrom = found.upperBound
        }
    }

    /// Runs `script` with bash. Foundation starts it as the leader of a process group of its
    /// own, which its background jobs share: on a timeout, or once it has exited, the whole
    /// group is killed, so no mock or relay outlives the test.
    static func run(_ script: String, in folder: URL, timeout: Double) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = folder
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = folder.appendingPathComponent("bin").path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        for name in environment.keys where name.hasPrefix("HAPPYTALK_") || name.hasPrefix("HAPPYRELAY_") { environment[name] = nil }
        // The tutorial's `mktemp -d` lands in the test's folder, which the test removes.
        environment["TMPDIR"] = folder.path
        process.environment = environment
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let collected = Mutex<(out: Data, err: Data)>((Data(), Data()))
        let done = DispatchGroup()
        for (pipe, isOut) in [(out, true), (err, false)] {
            done.enter()
            Thread {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collected.withLock { if isOut { $0.out = data } else { $0.err = data } }
                done.leave()
            }.start()
        }
        try process.run()
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let timedOut = exited.wait(timeout: .now() + timeout) == .timedOut
        kill(-process.processIdentifier, SIGKILL)
        if timedOut { _ = exited.wait(timeout: .now() + 5) }
        _ = done.wait(timeout: .now() + 10)
        let (stdout, stderr) = collected.withLock { ($0.out, $0.err) }
        let status = timedOut ? -1 : process.terminationStatus
        return (status, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
