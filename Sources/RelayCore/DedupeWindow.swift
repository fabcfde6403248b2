import RelayStore
import Synchronization

/// Dedupe keys seen recently, in memory: a bounded cache in front of the database, which holds
/// every key for its whole window. A key is reserved when its webhook is checked, so that the
/// same event arriving twice at once is handled once; the reservation becomes the key's record
/// once the webhook is handled, or is released when handling failed.
package final class DedupeWindow: Sendable {
    /// What a check found.
    package enum Check: Equatable, Sendable {
        /// Not seen: the key is now reserved for this request.
        case reserved
        /// Handled before, by the webhook with this id.
        case duplicate(firstID: String)
        /// Another request with the same key is being handled right now.
        case inFlight
    }

    private struct Entry {
        var id: String
        /// Unix milliseconds.
        var expiresAt: Int
        var isHandled: Bool
    }

    private struct State {
        var entries: [DedupeDigest: Entry] = [:]
        /// Keys in the order they were added, for expiry and eviction without rebuilding the map.
        var order: [DedupeDigest] = []
        var head = 0
    }

    /// Keys kept in memory at most; older ones are evicted (the database still knows them).
    package let capacity: Int
    private let state = Mutex(State())

    package init(capacity: Int = 100_000) {
        self.capacity = max(1, capacity)
    }

    /// Checks a key, reserving it for request `id` when it is new.
    package func check(_ digest: DedupeDigest, id: String, expiresAt: Int, now: Int) -> Check {
        state.withLock { state in
            if let entry = state.entries[digest], entry.expiresAt > now {
                return entry.isHandled ? .duplicate(firstID: entry.id) : .inFlight
            }
            Self.trim(&state, now: now, capacity: capacity)
            if state.entries.updateValue(Entry(id: id, expiresAt: expiresAt, isHandled: false), forKey: digest) == nil {
                state.order.append(digest)
            }
            return .reserved
        }
    }

    /// Records that the key's webhook was handled by `id` (the reservation's, or the first id
    /// the database knew).
    package func markHandled(_ digest: DedupeDigest, id: String, expiresAt: Int) {
        state.withLock { state in
            if state.entries.updateValue(Entry(id: id, expiresAt: expiresAt, isHandled: true), forKey: digest) == nil {
                state.order.append(digest)
            }
        }
    }

    /// Drops a reservation whose webhook was not handled, so that the sender's retry is.
    package func release(_ digest: DedupeDigest, id: String) {
        state.withLock { state in
            if let entry = state.entries[digest], !entry.isHandled, entry.id == id { state.entries[digest] = nil }
        }
    }

    /// Keys held in memory.
    package var count: Int { state.withLock { $0.entries.count } }

    /// Drops expired keys from the front of the insertion order, then the oldest beyond the
    /// capacity: O(1) amortised per insert.
    private static func trim(_ state: inout State, now: Int, capacity: Int) {
        while state.head < state.order.count {
            let digest = state.order[state.head]
            guard let entry = state.entries[digest] else {
                state.head += 1
                continue
            }
            guard entry.expiresAt <= now || state.entries.count >= capacity else { break }
            // An unhandled reservation is never evicted early: its request is still running.
            if !entry.isHandled && entry.expiresAt > now { break }
            state.entries[digest] = nil
            state.head += 1
        }
        if state.head > 1024 && state.head * 2 > state.order.count {
            state.order.removeFirst(state.head)
            state.head = 0
        }
    }
}
