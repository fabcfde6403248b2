import CSystem
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// An `errno` captured right after the failing call.
package struct SystemError: Error, Equatable, CustomStringConvertible {
    /// The errno value.
    package let code: Int32
    /// The call that failed.
    package let call: String

    package var description: String { "\(call): \(String(cString: strerror(code)))" }
}

/// The outcome of a non-blocking read or write.
enum IOResult: Equatable {
    case count(Int)
    case wouldBlock
    case eof
}

/// The one place syscalls are made: retries `EINTR`, turns `EAGAIN` into `.wouldBlock`,
/// and reads `errno` immediately (as swift-nio's System.swift does).
enum Syscall {
    @inline(__always)
    static func check(_ call: String, _ body: () -> Int32) throws(SystemError) -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw SystemError(code: code, call: call)
        }
    }

    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count > 0 { return .count(count) }
            if count == 0 { return .eof }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(code: code, call: "read")
        }
    }

    static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult {
        while true {
            // MSG_NOSIGNAL: a peer that went away must not raise SIGPIPE.
            let count = send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            if count >= 0 { return .count(count) }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(code: code, call: "send")
        }
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}

/// Monotonic time in nanoseconds, for deadlines.
package func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The process's open-file limit (RLIMIT_NOFILE).
package enum OpenFileLimit {
    /// Raises the soft limit to the hard one; returns the soft limit in force afterwards.
    @discardableResult
    package static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Int.max }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }
}

/// The process's tie to the one that started it.
package enum ParentProcess {
    /// Ends this process when its parent does: tests set `HAPPYRELAY_EXIT_WITH_PARENT=1` on the
    /// relays and mocks they start, so that a test run that crashes leaves none behind.
    package static func exitWithIt() {
        _ = csystem_exit_with_parent()
    }
}

/// Starts a detached thread named `name` for the kernel, where `top -H`, `perf` and
/// `/proc/PID/task/TID/comm` read it. The kernel keeps 15 bytes: `happyrelay-` becomes `hr-`
/// (`hr-loop-0`, `hr-store`).
package func startThread(named name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
    let kernelName = name.hasPrefix("happyrelay-") ? "hr-" + name.dropFirst("happyrelay-".count) : name
    let start = ThreadStart {
        csystem_name_thread(kernelName)
        body()
    }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
    var thread = pthread_t()
    let result = pthread_create(&thread, &attributes, { context in
        Unmanaged<ThreadStart>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, Unmanaged.passRetained(start).toOpaque())
    // Without a thread the relay cannot serve: failing here is failing at start.
    precondition(result == 0, "cannot start thread \(name): error \(result)")
}

/// The body a new thread runs, passed through `pthread_create`'s context pointer.
private final class ThreadStart: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Whole files and streams read and written through file descriptors, so that pipes, process
/// substitutions and the standard streams work as files do.
package enum FileBytes {
    /// Every byte `fileDescriptor` gives until its end; nil when reading fails.
    package static func read(fileDescriptor: Int32) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            bytes += chunk[0..<count]
        }
    }

    /// The file at `path`, read to its end; nil when it cannot be opened or read.
    package static func read(path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return read(fileDescriptor: descriptor)
    }

    /// Writes all of `bytes`; false when the descriptor refuses them.
    @discardableResult
    package static func write(_ bytes: [UInt8], to fileDescriptor: Int32) -> Bool {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            written += count
        }
        return true
    }
}

/// glibc's allocator, set for a long-running server.
package enum Allocator {
    /// Keeps up to `bytes` of freed memory in each heap instead of handing it back at once, and
    /// serves allocations below `bytes` from the heaps. By default glibc trims a thread's heap
    /// whenever its free top passes 128 KB, and the store thread's batches crossed that on
    /// nearly every commit; each trim (`madvise`), like each `munmap` of a large allocation,
    /// makes the kernel interrupt the other cores to flush their TLBs.
    /// Returns false when glibc refused a setting.
    @discardableResult
    package static func keepFreedMemory(upTo bytes: Int32) -> Bool {
        csystem_keep_freed_memory(bytes) == 1
    }
}
