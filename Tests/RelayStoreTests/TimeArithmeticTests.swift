import Foundation
import Testing

@testable import RelayStore

/// The store's times: unix milliseconds from the wall clock, and arithmetic that never traps.
@Suite struct TimeArithmeticTests {
    @Test func theClockIsTheWallClockInMilliseconds() {
        let before = Int((Date().timeIntervalSince1970 * 1000).rounded(.down))
        let now = currentUnixMilliseconds()
        let after = Int((Date().timeIntervalSince1970 * 1000).rounded(.up))
        #expect(before <= now && now <= after, "\(before) \(now) \(after)")
    }

    @Test func sumsSaturateAndDifferencesThatDoNotFitAreNil() {
        #expect(Int.max.addingSaturating(1) == Int.max)
        #expect(Int.min.addingSaturating(-1) == Int.min)
        #expect(5.addingSaturating(-7) == -2)
        #expect(Int.min.subtractingIfFits(1) == nil)
        #expect(10.subtractingIfFits(4) == 6)
        #expect(Duration.seconds(-1).wholeMilliseconds == 0)
        #expect(Duration.milliseconds(1500).wholeMilliseconds == 1500)
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == Int.max)
    }
}
