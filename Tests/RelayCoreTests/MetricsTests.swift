import Dispatch
import Testing

@testable import RelayCore

@Suite struct MetricsTests {
    @Test func histogramBucketsAreCumulativeWithInclusiveBounds() {
        let histogram = MetricHistogram(bounds: [0.01, 0.1, 1])
        histogram.observe(.milliseconds(10))  // on a bound: counted in it (le means ≤)
        histogram.observe(.milliseconds(50))
        histogram.observe(.milliseconds(50))
        histogram.observe(.seconds(3))
        let (cumulative, sum) = histogram.snapshot
        #expect(cumulative == [1, 3, 3, 4])
        #expect(abs(sum - 3.11) < 1e-9)
    }

    @Test func expositionEscapesLabelValuesAndFormatsNumbers() {
        var exposition = MetricsExposition()
        exposition.family("x_total", "counter", help: "An example.")
        exposition.sample("x_total", [("route", "/a\"b\\c\nd")], 3)
        exposition.sample("x_seconds", [], 0.25)
        #expect(exposition.text == "# HELP x_total An example.\n# TYPE x_total counter\nx_total{route=\"/a\\\"b\\\\c\\nd\"} 3\nx_seconds 0.25\n")
    }

    @Test func histogramLinesEndWithInfSumAndCount() {
        let histogram = MetricHistogram(bounds: [0.5])
        histogram.observe(.seconds(1))
        var exposition = MetricsExposition()
        exposition.histogram("h", [("route", "/r")], histogram)
        #expect(exposition.text == "h_bucket{route=\"/r\",le=\"0.5\"} 0\nh_bucket{route=\"/r\",le=\"+Inf\"} 1\nh_sum{route=\"/r\"} 1\nh_count{route=\"/r\"} 1\n")
    }

    @Test func labeledCountersKeepOneSeriesPerLabelSetInStableOrder() {
        let counters = LabeledCounters()
        counters.increment(["b", "2"])
        counters.increment(["a", "1"])
        counters.increment(["b", "2"], by: 2)
        #expect(counters.snapshot.map(\.labels) == [["a", "1"], ["b", "2"]])
        #expect(counters.snapshot.map(\.value) == [1, 3])
    }

    /// A series resolved ahead (as the per-request paths do) counts into the same series as
    /// the labels, and is not reported before it counts anything.
    @Test func aResolvedSeriesIsTheLabelsSeriesAndHiddenUntilItCounts() {
        let counters = LabeledCounters()
        let resolved = counters.series(["sync", "delivered"])
        #expect(counters.snapshot.isEmpty)
        resolved.increment()
        counters.increment(["sync", "delivered"])
        #expect(counters.snapshot.map(\.labels) == [["sync", "delivered"]])
        #expect(counters.snapshot.map(\.value) == [2])
    }

    /// Deliveries are told apart by mode, success or not, as `/metrics` and the console show
    /// them (two sync successes against one async, so that a swap of the modes shows).
    @Test func deliveriesAreCountedPerModeAndResult() {
        let metrics = RelayMetrics()
        metrics.delivery(sync: true, .delivered, result: .success, latency: .milliseconds(3))
        metrics.delivery(sync: true, .delivered, result: .success, latency: .milliseconds(4))
        metrics.delivery(sync: false, .delivered, result: .success, latency: .milliseconds(5))
        metrics.delivery(sync: true, .failed, result: .timedOut, latency: nil)
        let counts = Dictionary(uniqueKeysWithValues: metrics.snapshot().deliveries.map { ($0.labels.joined(separator: " "), $0.count) })
        #expect(counts == ["sync delivered success none": 2, "async delivered success none": 1, "sync failed timeout none": 1])
    }

    @Test func countsFromManyThreadsAreNotLost() {
        let metrics = RelayMetrics()
        let route = metrics.route("/r", scheme: "none")
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for index in 0..<10_000 {
                route.answered(index % 2 == 0 ? .accepted : .ignored, after: .microseconds(index))
                if index % 100 == 0 { metrics.mappingFailed(route: "/r", field: worker % 2 == 0 ? "uuid" : "room_id") }
            }
        }
        #expect(route.count(.accepted) == 40_000 && route.count(.ignored) == 40_000)
        #expect(route.ackLatency.snapshot.cumulative.last == 80_000)
        let text = metrics.exposition(RelayMetrics.Gauges(), version: "t")
        #expect(text.contains("happyrelay_mapping_failures_total{route=\"/r\",field=\"uuid\"} 400\n"))
        #expect(text.contains("happyrelay_mapping_failures_total{route=\"/r\",field=\"room_id\"} 400\n"))
    }

    @Test func relayMetricsCountDeliveriesByOutcomeResultAndCode() {
        let metrics = RelayMetrics()
        let route = metrics.route("/r", scheme: "none")
        route.answered(.accepted, after: .milliseconds(1))
        metrics.delivery(sync: false, .retried, result: .failed(code: -502, message: "unAuthorized", isCredentialProblem: true), latency: nil)
        metrics.delivery(sync: false, .dead, result: .timedOut, latency: nil)
        let text = metrics.exposition(RelayMetrics.Gauges(), version: "1.2.3")
        #expect(text.contains("happyrelay_webhooks_total{route=\"/r\",outcome=\"accepted\"} 1\n"))
        #expect(text.contains("happyrelay_deliveries_total{delivery=\"async\",outcome=\"retried\",result=\"fail\",code=\"-502\"} 1\n"))
        #expect(text.contains("happyrelay_deliveries_total{delivery=\"async\",outcome=\"dead\",result=\"timeout\",code=\"none\"} 1\n"))
        // A route without verification has no verification-failure series.
        #expect(!text.contains("happyrelay_verification_failures_total{"))
        #expect(!text.contains("unAuthorized"))
    }
}
