import Dispatch
import Glibc
import Testing

@testable import RelayHTTP

@Suite struct FileBytesTests {
    /// `happyrelay map ROUTE <(curl …)`: the payload path is a pipe, with no size to read by.
    @Test func aPipeNamedByAPathIsReadToItsEnd() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        // More than one read, and more than the pipe holds at once: written in turns.
        let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        let writer = ends[1]
        let written = DispatchSemaphore(value: 0)
        startThread(named: "test-pipe-writer") {
            _ = FileBytes.write(payload, to: writer)
            close(writer)
            written.signal()
        }
        let read = FileBytes.read(path: "/dev/fd/\(ends[0])")
        written.wait()
        close(ends[0])
        #expect(read == payload)
        #expect(FileBytes.read(path: "/nonexistent/payload.json") == nil)
    }
}
