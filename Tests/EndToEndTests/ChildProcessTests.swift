import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The tests' own way of starting relays and mocks (see `ChildProcess` for why not Foundation's).
struct ChildProcessTests {
    /// A child that leaves something running which outlives it is still seen to end at once:
    /// Foundation's `Process` would wait for the end of a socket the grandchild inherited.
    @Test func anExitIsSeenWhileAGrandchildLivesOn() async throws {
        try await offPool {
            let folder = TemporaryFolder()
            let output = folder.path + "/out"
            let child = try ChildProcess("/bin/sh", ["-c", "sleep 60 & echo $!; exit 3"], output: .file(output))
            let started = Date()
            #expect(child.waitForExit(timeout: 20) == 3)
            #expect(Date().timeIntervalSince(started) < 10)
            #expect(!child.isRunning)
            let grandchild = try #require(Int32((try String(contentsOfFile: output, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(kill(grandchild, 0) == 0, "the grandchild still runs")
            kill(grandchild, SIGKILL)
        }
    }

    /// A child ended by a signal reports the signal's number, as Foundation did; one that is
    /// still running reports nothing yet and says what the kernel sees of it.
    @Test func aSignalIsReportedByItsNumber() async throws {
        try await offPool {
            let child = try ChildProcess("/bin/sleep", ["60"], output: .file("/dev/null"))
            #expect(child.waitForExit(timeout: 0.2) == nil)
            #expect(child.terminationStatus == nil && child.isRunning)
            #expect(child.kernelState.contains("State:") && child.kernelState.contains("sleep"))
            kill(child.processIdentifier, SIGKILL)
            #expect(child.waitForExit(timeout: 20) == SIGKILL)
        }
    }

    /// The child runs in the folder it is given, and only the standard streams reach it: a
    /// descriptor the test process holds does not.
    @Test func theChildInheritsNoOtherDescriptor() async throws {
        try await offPool {
            let folder = TemporaryFolder()
            let held = open("/dev/null", O_RDONLY)
            defer { close(held) }
            let output = folder.path + "/out"
            let child = try ChildProcess("/bin/sh", ["-c", "pwd; ls /proc/self/fd"], workingDirectory: folder.path, output: .file(output))
            #expect(child.waitForExit(timeout: 20) == 0)
            let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
            #expect(lines.first.map(String.init) == folder.path)
            let listed = lines.dropFirst().compactMap { Int32($0) }
            // 0, 1, 2 and the descriptor `ls` opens to read the folder.
            #expect(!listed.contains(held), "\(listed)")
            #expect(listed.filter { $0 > 2 }.count <= 1, "\(listed)")
        }
    }
}
