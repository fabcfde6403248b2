import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for one test: `initdb` and `pg_ctl` (as the `postgres`
/// user when the tests run as root), a free port on 127.0.0.1, password authentication,
/// stopped and deleted when released.
package final class PostgresCluster: @unchecked Sendable {
    package static let binaries: String? = {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        return versions.map { "\(root)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }()

    package static let user = "relay"
    package static let password = "pg-Pa55-w0rd-Xq7"

    package let directory: String
    package let port: Int
    /// The write end of the watchdog's pipe: held by this process only, so that the pipe ends
    /// when the test process does, however it ends (see `startWatchdog`).
    private var watchdogPipe: Int32 = -1
    private var watchdog: ChildProcess?
    /// `postgres://relay:…@127.0.0.1:PORT/postgres`.
    package var url: String { "postgres://\(Self.user):\(Self.password)@127.0.0.1:\(port)/postgres" }

    package init() throws {
        guard let binaries = Self.binaries else { throw Failure("PostgreSQL is not installed") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let passwordFile = directory + "/password"
        try Self.password.write(toFile: passwordFile, atomically: false, encoding: .utf8)
        if geteuid() == 0 {
            try Self.run("/bin/chown", ["-R", "postgres:postgres", directory])
        }
        // The C locale, whatever the environment names: initdb refuses a LANG whose locale is
        // not generated on the machine (`ko_KR.UTF-8` in a container, say), and C sorts the
        // same everywhere.
        try Self.asOwner(
            "\(binaries)/initdb", ["-D", directory + "/data", "-U", Self.user, "--pwfile", passwordFile, "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"])
        // Before the server starts, so that no moment leaves it untied to this process.
        (watchdog, watchdogPipe) = Self.startWatchdog(directory: directory)
        // A port found free may be taken before the server binds it (other tests open
        // connections and listeners all the time): then another one is tried.
        var attempt = 0
        while true {
            let candidate = Self.freePort()
            do {
                try Self.asOwner(
                    "\(binaries)/pg_ctl",
                    ["-D", directory + "/data", "-l", directory + "/log", "-w", "-t", "60", "-o",
                     "-p \(candidate) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
                port = candidate
                break
            } catch {
                attempt += 1
                let log = (try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? ""
                guard attempt < 5, log.contains("could not bind") || log.contains("already in use") else {
                    throw Failure("\(error)\nserver log:\n\(log.suffix(2000))")
                }
            }
        }
    }

    /// `pg_ctl` leaves the server running on its own, tied to nothing: a test process that is
    /// killed would leave it behind. A watchdog waits for end of file on a pipe whose only
    /// writer is this process, then stops the server; it is told by the pipe, not by polling.
    private static func startWatchdog(directory: String) -> (process: ChildProcess?, pipe: Int32) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return (nil, -1) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        defer { close(ends[0]) }
        let (program, arguments) = ownerCommand("\(binaries!)/pg_ctl", stopArguments(directory))
        guard let watchdog = try? ChildProcess("/bin/sh", ["-c", "cat >/dev/null; exec \"$@\"", "sh", program] + arguments, input: ends[0], output: .file("/dev/null")) else {
            close(ends[1])
            return (nil, -1)
        }
        return (watchdog, ends[1])
    }

    /// `pg_ctl`'s arguments that stop the server at once (as a crash would) and wait for it.
    private static func stopArguments(_ directory: String) -> [String] { ["-D", directory + "/data", "-m", "immediate", "-w", "stop"] }

    /// Stops the server at once (as a crash would), leaving the data.
    package func kill() throws {
        try Self.asOwner("\(Self.binaries!)/pg_ctl", Self.stopArguments(directory))
    }

    /// Starts it again on the same port.
    package func start() throws {
        try Self.asOwner(
            "\(Self.binaries!)/pg_ctl",
            ["-D", directory + "/data", "-l", directory + "/log", "-w", "-t", "60", "-o",
             "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
    }

    deinit {
        if let watchdog {
            // The end of its pipe is the watchdog's cue: it stops the server, then ends.
            close(watchdogPipe)
            _ = watchdog.waitForExit()
        } else {
            try? Self.asOwner("\(Self.binaries!)/pg_ctl", Self.stopArguments(directory))
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
        package init(_ description: String) { self.description = description }
    }

    package static func asOwner(_ program: String, _ arguments: [String]) throws {
        let (command, commandArguments) = ownerCommand(program, arguments)
        try run(command, commandArguments)
    }

    /// `program` run as the cluster's owner: through `runuser` when the tests run as root.
    static func ownerCommand(_ program: String, _ arguments: [String]) -> (String, [String]) {
        geteuid() == 0 ? ("/usr/sbin/runuser", ["-u", "postgres", "--", program] + arguments) : (program, arguments)
    }

    /// Runs a program to its end as a `ChildProcess` (no descriptor of the test process but the
    /// standard streams): Foundation's `Process` notices a child's exit when a socket the child
    /// inherited closes, and the server `pg_ctl` starts would keep it open.
    package static func run(_ program: String, _ arguments: [String]) throws {
        let (status, output) = try ChildProcess.run(program, arguments)
        guard status == 0 else {
            throw Failure("\(program) \(arguments.joined(separator: " ")) failed (status \(status)): \(output)")
        }
    }

    package static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
