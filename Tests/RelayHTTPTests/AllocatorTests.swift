import Glibc
import Testing

@testable import RelayHTTP

@Suite struct AllocatorTests {
    /// glibc marks a chunk it took from `mmap` with bit 1 of the size word before the pointer.
    private func isMapped(_ pointer: UnsafeMutableRawPointer) -> Bool {
        (pointer - MemoryLayout<Int>.size).load(as: Int.self) & 2 != 0
    }

    @Test func allocationsBelowTheThresholdComeFromTheHeaps() throws {
        #expect(Allocator.keepFreedMemory(upTo: 4 << 20))
        // glibc's own threshold starts at 128 KB (it rises with what the process frees, so in
        // a fresh process 2 MB would get an mmap of its own, and its free a TLB shootdown).
        // Above the threshold a heap may still serve it when it has room: only this side is
        // certain in a test process that other tests share.
        let block = try #require(malloc(2 << 20))
        defer { free(block) }
        #expect(!isMapped(block), "2 MB got an mmap of its own")
    }
}
