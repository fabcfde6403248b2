import Foundation
import Testing

@testable import RelayMapping

/// Timestamps (every document's `received_at`, every log line) agree with Foundation's
/// ISO 8601 formatting to the second from 1970 to 9999, and carry the milliseconds as given
/// (Foundation's own goes through a Double and is off by one in some).
@Suite struct RFC3339Tests {
    @Test func timestampsAgreeWithFoundation() {
        var format = Date.ISO8601FormatStyle()
        format.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        let edges = [0, 999, 1_000, 951_782_400_000, 1_796_115_600_250, 253_402_300_799_999]
        for milliseconds in edges + (0..<20_000).map({ _ in Int.random(in: 0...253_402_300_799_999, using: &generator) }) {
            let seconds = format.format(Date(timeIntervalSince1970: Double(milliseconds / 1000))).dropLast()
            let fraction = String(milliseconds % 1000 + 1000).dropFirst()
            #expect(RFC3339.timestamp(milliseconds: milliseconds) == "\(seconds).\(fraction)Z", "\(milliseconds)")
        }
    }

    /// Times outside the four-digit years (only a damaged record holds one) keep their digits.
    @Test func timesBeforeTheEpochAndAfterYear9999() {
        #expect(RFC3339.timestamp(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(RFC3339.timestamp(milliseconds: -86_400_000) == "1969-12-31T00:00:00.000Z")
        #expect(RFC3339.timestamp(milliseconds: 253_402_300_800_000) == "10000-01-01T00:00:00.000Z")
        #expect(RFC3339.timestamp(milliseconds: -62_198_755_200_000) == "-0001-01-01T00:00:00.000Z")
    }
}
