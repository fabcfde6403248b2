import RelayStore

/// Which deliveries may start now: at most one send per room (FIFO per room), at most
/// `concurrency` in flight, at most `ratePerSecond` started per second of the clock. A pure
/// value: the store writer asks it and tells it, with the time, what happened.
package struct DispatchScheduler: Sendable {
    package let concurrency: Int
    package let ratePerSecond: Int?
    /// Rooms with a send in flight, or a result not yet recorded.
    package private(set) var busy: Set<RoomKey> = []
    private var rateWindow: (second: Int, started: Int) = (0, 0)

    package init(concurrency: Int, ratePerSecond: Int?) {
        self.concurrency = max(1, concurrency)
        self.ratePerSecond = ratePerSecond
    }

    /// How many sends may start at `now`.
    package func capacity(now: UnixMilliseconds) -> Int {
        var free = concurrency - busy.count
        if let ratePerSecond {
            let startedThisSecond = rateWindow.second == now / 1000 ? rateWindow.started : 0
            free = min(free, ratePerSecond - startedThisSecond)
        }
        return max(free, 0)
    }

    /// A send for `room` started at `now`.
    package mutating func started(_ room: RoomKey, now: UnixMilliseconds) {
        busy.insert(room)
        let second = now / 1000
        if rateWindow.second != second { rateWindow = (second, 0) }
        rateWindow.started += 1
    }

    /// The send for `room` finished and its result is recorded: the room's next may go.
    package mutating func finished(_ room: RoomKey) {
        busy.remove(room)
    }

    /// When capacity grows again without a send finishing: the next second, when this one's
    /// rate is spent (nil: only a finished send frees capacity, or there is capacity now).
    package func nextRateWindow(now: UnixMilliseconds) -> UnixMilliseconds? {
        guard let ratePerSecond, busy.count < concurrency, rateWindow.second == now / 1000, rateWindow.started >= ratePerSecond else {
            return nil
        }
        return (now / 1000 + 1) * 1000
    }
}
