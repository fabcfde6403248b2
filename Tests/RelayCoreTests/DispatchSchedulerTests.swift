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
}
