import FoundationEssentials
import RelayMapping

#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics of the running process, read from `/proc/self` at
/// scrape time (Linux).
package struct ProcessMetrics: Sendable, Equatable {
    package var residentMemoryBytes: Int
    package var virtualMemoryBytes: Int
    package var cpuSeconds: Double
    package var openFileDescriptors: Int
    package var maxFileDescriptors: Int
    package var startTimeSeconds: Double

    /// The process's figures now; a figure that cannot be read is 0.
    package static func read() -> ProcessMetrics {
        var metrics = ProcessMetrics(
            residentMemoryBytes: 0, virtualMemoryBytes: 0, cpuSeconds: 0, openFileDescriptors: 0, maxFileDescriptors: 0, startTimeSeconds: 0)
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let fields = Self.statFields(stat), ticks > 0 {
            // proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24 (1-based, of the whole line).
            metrics.cpuSeconds = Double((Int(fields[13]) ?? 0) + (Int(fields[14]) ?? 0)) / ticks
            metrics.virtualMemoryBytes = Int(fields[22]) ?? 0
            metrics.residentMemoryBytes = (Int(fields[23]) ?? 0) * pageSize
            if let boot = Self.bootTime() { metrics.startTimeSeconds = boot + Double(Int(fields[21]) ?? 0) / ticks }
        }
        metrics.openFileDescriptors = max(((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 1) - 1, 0)
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { metrics.maxFileDescriptors = Int(clamping: limit.rlim_cur) }
        return metrics
    }

    /// The fields of `/proc/self/stat`, numbered from 1 as proc(5) does them at index n-1. The
    /// command name (field 2) is in parentheses and may hold spaces: split after its last `)`.
    static func statFields(_ line: String) -> [Substring]? {
        guard let close = line.lastIndex(of: ")") else { return nil }
        let rest = line[line.index(after: close)...].split(separator: " ")
        guard rest.count >= 22 else { return nil }
        return ["pid", "comm"] + rest
    }

    private static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingWhitespace())
        }
        return nil
    }

    /// Writes the families (names as Prometheus' client libraries use them).
    package func write(to out: inout MetricsExposition) {
        out.family("process_resident_memory_bytes", "gauge", help: "Resident memory size in bytes.")
        out.sample("process_resident_memory_bytes", [], residentMemoryBytes)
        out.family("process_virtual_memory_bytes", "gauge", help: "Virtual memory size in bytes.")
        out.sample("process_virtual_memory_bytes", [], virtualMemoryBytes)
        out.family("process_cpu_seconds_total", "counter", help: "Total user and system CPU time spent in seconds.")
        out.sample("process_cpu_seconds_total", [], cpuSeconds)
        out.family("process_open_fds", "gauge", help: "Number of open file descriptors.")
        out.sample("process_open_fds", [], openFileDescriptors)
        out.family("process_max_fds", "gauge", help: "Maximum number of open file descriptors.")
        out.sample("process_max_fds", [], maxFileDescriptors)
        out.family("process_start_time_seconds", "gauge", help: "Start time of the process since unix epoch in seconds.")
        out.sample("process_start_time_seconds", [], startTimeSeconds)
    }
}
