/// The head of each room's queue — its oldest pending delivery and when that is due — that
/// the SQLite store keeps in memory beside the rows, and derives from them again at start-up
/// and whenever another process changed the file. A head set inside a transaction is staged
/// and takes effect when the transaction commits.
///
/// Due heads leave in due order (then acceptance order) through a binary heap. A room taken
/// for sending, or busy with a send, leaves the heap until its head is set again, which the
/// outcome of that send does. An entry whose room has another head since is skipped.
struct RoomHeads {
    struct Head: Equatable {
        /// The delivery's `seq`.
        var seq: Int
        var due: UnixMilliseconds
    }

    private struct Entry {
        let due: UnixMilliseconds
        let seq: Int
        let room: RoomKey

        func precedes(_ other: Entry) -> Bool { (due, seq) < (other.due, other.seq) }
    }

    private var heads: [RoomKey: Head] = [:]
    /// Heads set in the open transaction: a nil head removes the room.
    private var staged: [RoomKey: Head?] = [:]
    private var byDue: [Entry] = []

    /// Rooms with a head.
    var count: Int { heads.count }

    /// Entries in the due order, stale ones included (for tests).
    var pendingEntries: Int { byDue.count }

    /// The room's head, counting what the open transaction staged.
    func head(of room: RoomKey) -> Head? {
        if let change = staged[room] { return change }
        return heads[room]
    }

    /// Sets a room's head when the open transaction commits; nil removes the room.
    mutating func stage(_ head: Head?, for room: RoomKey) {
        staged[room] = .some(head)
    }

    /// The transaction committed: its heads take effect.
    mutating func commitStaged() {
        for (room, head) in staged { set(head, for: room) }
        staged.removeAll(keepingCapacity: true)
        // Entries of heads replaced before they left the heap: rebuilt once they outnumber the rooms.
        if byDue.count > 2 * heads.count + 1024 { replaceAll(with: heads) }
    }

    /// The transaction rolled back: its heads are forgotten.
    mutating func discardStaged() {
        staged.removeAll(keepingCapacity: true)
    }

    /// Sets a room's head now, outside a transaction.
    mutating func set(_ head: Head?, for room: RoomKey) {
        heads[room] = head
        if let head { push(Entry(due: head.due, seq: head.seq, room: room)) }
    }

    /// Every head, derived afresh.
    mutating func replaceAll(with heads: [RoomKey: Head]) {
        self.heads = heads
        staged.removeAll()
        byDue = heads.map { Entry(due: $0.value.due, seq: $0.value.seq, room: $0.key) }
        for index in stride(from: byDue.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    /// The heads due at `now`, oldest due first, at most `limit`, skipping `busy` rooms. What
    /// it returns and the busy rooms leave the heap (their sends' outcomes set their heads again).
    mutating func takeDue(now: UnixMilliseconds, limit: Int, busy: Set<RoomKey>) -> [(room: RoomKey, head: Head)] {
        var taken: [(room: RoomKey, head: Head)] = []
        var takenRooms: Set<RoomKey> = []
        while taken.count < limit, let top = byDue.first, top.due <= now {
            popTop()
            let head = Head(seq: top.seq, due: top.due)
            guard heads[top.room] == head, !busy.contains(top.room), takenRooms.insert(top.room).inserted else { continue }
            taken.append((top.room, head))
        }
        return taken
    }

    /// When the next head becomes due after `now`; nil when none will, or when heads are due
    /// already and wait for a free slot (a finished send wakes the writer for those).
    mutating func nextDue(after now: UnixMilliseconds) -> UnixMilliseconds? {
        while let top = byDue.first, heads[top.room] != Head(seq: top.seq, due: top.due) { popTop() }
        guard let top = byDue.first, top.due > now else { return nil }
        return top.due
    }

    // MARK: The heap

    private mutating func push(_ entry: Entry) {
        byDue.append(entry)
        var child = byDue.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard byDue[child].precedes(byDue[parent]) else { break }
            byDue.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popTop() {
        let last = byDue.removeLast()
        guard !byDue.isEmpty else { return }
        byDue[0] = last
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < byDue.count else { return }
            var first = left
            if left + 1 < byDue.count, byDue[left + 1].precedes(byDue[left]) { first = left + 1 }
            guard byDue[first].precedes(byDue[parent]) else { return }
            byDue.swapAt(first, parent)
            parent = first
        }
    }
}
