import Testing

@testable import RelayCore
@testable import RelayStore

/// The scheduler is a value: slots, busy rooms and the rate window, driven by the clock given.
@Suite struct DispatchSchedulerTests {
    let a = RoomKey(credential: "", roomID: "a")
    let b = RoomKey(credential: "", roomID: "b")

    @Test func oneSendPerRoomAndNoMoreThanTheSlots() {
        var scheduler = DispatchScheduler(concurrency: 2, ratePerSecond: nil)
        #expect(scheduler.capacity(now: 0) == 2)
        scheduler.started(a, now: 0)
        #expect(scheduler.busy == [a])
        scheduler.started(b, now: 0)
        #expect(scheduler.capacity(now: 0) == 0)
        scheduler.finished(a)
        #expect(scheduler.capacity(now: 0) == 1)
        #expect(scheduler.busy == [b])
    }

    @Test func theRateIsACountPerSecondOfTheClock() {
        var scheduler = DispatchScheduler(concurrency: 10, ratePerSecond: 3)
        for index in 0..<3 {
            #expect(scheduler.capacity(now: 1_500) == 3 - index)
            let room = RoomKey(credential: "", roomID: "\(index)")
            scheduler.started(room, now: 1_500)
            scheduler.finished(room)
        }
        #expect(scheduler.capacity(now: 1_999) == 0)
        #expect(scheduler.nextRateWindow(now: 1_999) == 2_000)
        #expect(scheduler.capacity(now: 2_000) == 3)
        #expect(scheduler.nextRateWindow(now: 2_000) == nil)
    }

    /// Failures in a row turn sending into probing: one delivery at a time, at growing
    /// intervals, until HappyTalk answers; then every slot is free again.
    @Test func failuresInARowTurnSendingIntoProbing() {
        var scheduler = DispatchScheduler(concurrency: 8, ratePerSecond: nil, failuresToProbe: 3, maxProbeInterval: 4_000)
        for index in 0..<2 {
            scheduler.noteResult(retried: true, now: 1_000 + index)
        }
        #expect(!scheduler.isProbing)
        #expect(scheduler.capacity(now: 1_002) == 8)
        scheduler.noteResult(retried: true, now: 1_002)
        #expect(scheduler.isProbing)
        // The first probe waits a second, then goes alone.
        #expect(scheduler.capacity(now: 1_500) == 0)
        #expect(scheduler.nextProbe(now: 1_500) == 2_002)
        #expect(scheduler.capacity(now: 2_002) == 1)
        scheduler.started(a, now: 2_002)
        #expect(scheduler.capacity(now: 2_003) == 0)
        #expect(scheduler.nextProbe(now: 2_003) == nil, "a probe is in flight")
        // It fails: the next waits twice as long, then 4 s at most.
        scheduler.finished(a)
        scheduler.noteResult(retried: true, now: 2_100)
        #expect(scheduler.nextProbe(now: 2_100) == 4_100)
        scheduler.noteResult(retried: true, now: 4_100)
        #expect(scheduler.nextProbe(now: 4_100) == 8_100)
        scheduler.noteResult(retried: true, now: 8_100)
        #expect(scheduler.nextProbe(now: 8_100) == 12_100)
        // HappyTalk answers (delivered or refused for good): every slot at once.
        scheduler.noteResult(retried: false, now: 12_200)
        #expect(!scheduler.isProbing)
        #expect(scheduler.capacity(now: 12_200) == 8)
    }

    @Test func anAnswerBetweenFailuresKeepsSending() {
        var scheduler = DispatchScheduler(concurrency: 4, ratePerSecond: nil, failuresToProbe: 3)
        for round in 0..<10 {
            scheduler.noteResult(retried: true, now: round * 10)
            scheduler.noteResult(retried: true, now: round * 10 + 1)
            scheduler.noteResult(retried: false, now: round * 10 + 2)
        }
        #expect(!scheduler.isProbing)
        #expect(scheduler.capacity(now: 100) == 4)
    }
}
