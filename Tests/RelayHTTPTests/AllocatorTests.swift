import Glibc
import Testing

@testable import RelayHTTP

@Suite struct AllocatorTests {
    /// glibc marks a chunk it took from `mmap` with bit 1 of the size word before the pointer.
    private func isMapped(_ pointer: UnsafeMutableRawPointer) -> Bool {
        (pointer - MemoryLayout<Int>.size).load(as: Int.self) & 2 != 0
    }

    @Test func theThresholdDecidesWhatComesFromTheHeaps() throws {
        // glibc's own threshold starts at 128 KB and moves up to what this process freed last
        // (up to 32 MB): whatever it is now, the one set here decides both ways.
        Allocator.keepFreedMemory(upTo: 1 << 20)
        let below = try #require(malloc(768 << 10))
        defer { free(below) }
        #expect(!isMapped(below), "768 KB got an mmap of its own")
        let above = try #require(malloc(2 << 20))
        defer { free(above) }
        #expect(isMapped(above), "2 MB came from a heap")
    }
}
