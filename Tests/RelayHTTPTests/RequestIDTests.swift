import Foundation
import Synchronization
import Testing

@testable import RelayHTTP

@Suite struct RequestIDTests {
    /// Ids take their random half from a pool of the kernel's random bytes refilled every 512:
    /// across several refills, from several threads at once, each is 24 hex digits and none repeats.
    @Test func idsAreTwentyFourHexDigitsAndDistinctAcrossRefillsAndThreads() {
        let ids = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let made = (0..<1500).map { _ in RequestID.make() }
            ids.withLock { $0 += made }
        }
        let all = ids.withLock { $0 }
        #expect(all.count == 6000)
        #expect(Set(all).count == 6000)
        #expect(all.allSatisfy { $0.utf8.count == 24 && $0.utf8.allSatisfy(RequestID.isLowerHexDigit) })
        // The second half is random, not a counter: its high bits vary too.
        #expect(Set(all.map { $0.dropFirst(12).prefix(4) }).count > 1000)
    }

    /// An id begins with the time it was made, so that ids made later sort later (the queue's
    /// index of delivery ids then grows at its end instead of at random pages).
    @Test func idsBeginWithTheirTimeAndSortByIt() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let id = RequestID.make()
        let after = UInt64(Date().timeIntervalSince1970 * 1000) + 1
        let time = try #require(RequestID.time(of: id))
        #expect((before...after).contains(time), "\(id): \(time) not within \(before)...\(after)")

        let times: [UInt64] = [0, 1, 0xfff, 1_700_000_000_000, 1_700_000_000_001, 4_102_444_800_000, 0xffff_ffff_ffff]
        let made = times.map { RequestID.make(unixMilliseconds: $0) }
        #expect(made.map { RequestID.time(of: $0) } == times)
        #expect(made == made.sorted(), "\(made)")
        #expect(made[0].hasPrefix("000000000000") && made[6].hasPrefix("ffffffffffff"))
    }

    @Test func timeIsReadOnlyFromIdsTheServerMakes() {
        #expect(RequestID.time(of: "018bcfe56800a1b2c3d4e5f6") == 1_700_000_000_000)
        #expect(RequestID.time(of: "018BCFE56800A1B2C3D4E5F6") == nil)
        #expect(RequestID.time(of: "0123456789abcdef") == nil)
        #expect(RequestID.time(of: "shop-req-42") == nil)
    }

    @Test func clientIDsAreKeptOnlyWhenSafe() {
        #expect(RequestID.sanitized("abc-123:/+=@._") == "abc-123:/+=@._")
        #expect(RequestID.sanitized("two words") == nil)
        #expect(RequestID.sanitized(String(repeating: "a", count: 129)) == nil)
        #expect(RequestID.sanitized("") == nil)
    }
}
