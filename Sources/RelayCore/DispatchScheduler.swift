import RelayStore

/// Which deliveries may start now: at most one send per room (FIFO per room), at most
/// `concurrency` in flight, at most `ratePerSecond` started per second of the clock. A pure
/// value: the store writer asks it and tells it, with the time, what happened.
///
/// When `failuresToProbe` sends in a row come back to be retried, HappyTalk is taken to be
/// down: instead of every room's head failing again at its own backoff, one delivery at a
/// time probes it, at growing intervals (1 s doubling up to `maxProbeInterval`). The rooms
/// wait without spending attempts; the first answer (delivered, or refused for good) ends
/// the probing, and every room that came due meanwhile goes at once.
package struct DispatchScheduler: Sendable {
    package let concurrency: Int
    package let ratePerSecond: Int?
    package let failuresToProbe: Int
    package let maxProbeInterval: UnixMilliseconds
    /// Rooms with a send in flight, or a result not yet recorded.
    package private(set) var busy: Set<RoomKey> = []
    private var rateWindow: (second: Int, started: Int) = (0, 0)
    private var retriedInARow = 0
    /// While HappyTalk looks down: when the next probe may start, and the interval after it.
    private var probe: (next: UnixMilliseconds, interval: UnixMilliseconds)?

    package init(concurrency: Int, ratePerSecond: Int?, failuresToProbe: Int = 20, maxProbeInterval: UnixMilliseconds = 30_000) {
        self.concurrency = max(1, concurrency)
        self.ratePerSecond = ratePerSecond
        self.failuresToProbe = max(1, failuresToProbe)
        self.maxProbeInterval = max(1, maxProbeInterval)
    }

    /// Whether HappyTalk is being probed (sends held back after failures in a row).
    package var isProbing: Bool { probe != nil }

    /// How many sends may start at `now`.
    package func capacity(now: UnixMilliseconds) -> Int {
        if let probe {
            guard busy.isEmpty, now >= probe.next else { return 0 }
        }
        var free = (probe == nil ? concurrency : 1) - busy.count
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

    /// What a finished send ran into: `retried` when it is to be tried again (HappyTalk
    /// unreachable, 5xx, 429, a timeout), else HappyTalk answered (delivered, or dead).
    package mutating func noteResult(retried: Bool, now: UnixMilliseconds) {
        guard retried else {
            retriedInARow = 0
            probe = nil
            return
        }
        retriedInARow += 1
        if let current = probe {
            probe = (now + current.interval, min(current.interval * 2, maxProbeInterval))
        } else if retriedInARow >= failuresToProbe {
            let first = min(1000, maxProbeInterval)
            probe = (now + first, min(first * 2, maxProbeInterval))
        }
    }

    /// When a probe may start, if one is waiting for its time.
    package func nextProbe(now: UnixMilliseconds) -> UnixMilliseconds? {
        guard let probe, busy.isEmpty, probe.next > now else { return nil }
        return probe.next
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
