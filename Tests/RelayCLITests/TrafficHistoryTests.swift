import Testing

@testable import RelayCLI

@Suite struct TrafficHistoryTests {
    /// A webhook that arrives before the first timed sample shows in the interval under way:
    /// the history starts with the totals of its start.
    @Test func webhooksBeforeTheFirstTimedSampleShow() {
        let traffic = TrafficHistory(totals: [:])
        #expect(traffic.perInterval(current: ["/async": 1]) == ["/async": [1]])
    }

    /// Each interval counts what arrived in it; the last is the one under way.
    @Test func intervalsCountTheirOwnWebhooks() {
        let traffic = TrafficHistory(totals: ["/a": 2])
        traffic.record(["/a": 5, "/b": 1])
        traffic.record(["/a": 5, "/b": 4])
        #expect(traffic.perInterval(current: ["/a": 6, "/b": 4]) == ["/a": [3, 0, 1], "/b": [1, 3, 0]])
    }
}
