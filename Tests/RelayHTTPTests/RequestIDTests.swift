import Foundation
import Synchronization
import Testing

@testable import RelayHTTP

@Suite struct RequestIDTests {
    /// Ids come from a pool of the kernel's random bytes refilled every 512: across several
    /// refills, from several threads at once, each is 16 hex digits and none repeats.
    @Test func idsAreSixteenHexDigitsAndDistinctAcrossRefillsAndThreads() {
        let ids = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let made = (0..<1500).map { _ in RequestID.make() }
            ids.withLock { $0 += made }
        }
        let all = ids.withLock { $0 }
        #expect(all.count == 6000)
        #expect(Set(all).count == 6000)
        #expect(all.allSatisfy { $0.utf8.count == 16 && $0.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } })
        // Random, not a counter: the high bits vary too.
        #expect(Set(all.map { $0.prefix(4) }).count > 1000)
    }

    @Test func clientIDsAreKeptOnlyWhenSafe() {
        #expect(RequestID.sanitized("abc-123:/+=@._") == "abc-123:/+=@._")
        #expect(RequestID.sanitized("two words") == nil)
        #expect(RequestID.sanitized(String(repeating: "a", count: 129)) == nil)
        #expect(RequestID.sanitized("") == nil)
    }
}
