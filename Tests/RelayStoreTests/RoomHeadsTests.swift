import Testing

@testable import RelayStore

/// The rooms' heads in memory: due order, claims, busy rooms, staged heads.
@Suite struct RoomHeadsTests {
    typealias Head = RoomHeads.Head
    func room(_ name: String) -> RoomKey { RoomKey(credential: "", roomID: name) }

    @Test func dueHeadsLeaveInDueThenAcceptanceOrder() {
        var rooms = RoomHeads()
        rooms.set(Head(seq: 5, due: 300), for: room("C"))
        rooms.set(Head(seq: 9, due: 100), for: room("B"))
        rooms.set(Head(seq: 2, due: 100), for: room("A"))
        rooms.set(Head(seq: 1, due: 900), for: room("D"))
        #expect(rooms.takeDue(now: 300, limit: 10, busy: []).map(\.room.roomID) == ["A", "B", "C"])
        #expect(rooms.nextDue(after: 300) == 900)
        #expect(rooms.takeDue(now: 899, limit: 10, busy: []).isEmpty)
        #expect(rooms.takeDue(now: 900, limit: 10, busy: []).map(\.head) == [Head(seq: 1, due: 900)])
        #expect(rooms.nextDue(after: 900) == nil)
        #expect(rooms.count == 4)
    }

    /// Many heads set in no order come out sorted (the heap keeps its order through pushes,
    /// pops and a rebuild).
    @Test func aLargeShuffledSetComesOutSorted() {
        var generator = SystemRandomNumberGenerator()
        var rooms = RoomHeads()
        let heads = (0..<2000).map { ($0, Head(seq: $0, due: Int.random(in: 0..<500, using: &generator))) }
        for (index, head) in heads.shuffled() { rooms.set(head, for: room("\(index)")) }
        var taken = rooms.takeDue(now: 250, limit: 700, busy: [])
        rooms.replaceAll(with: Dictionary(uniqueKeysWithValues: heads.map { (room("\($0.0)"), $0.1) }.filter { pair in !taken.contains { $0.room == pair.0 } }))
        taken += rooms.takeDue(now: 1000, limit: 5000, busy: [])
        let order = taken.map { ($0.head.due, $0.head.seq) }
        #expect(taken.count == 2000)
        #expect(zip(order, order.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test func aBusyRoomIsSkippedAndComesBackWithItsNextHead() {
        var rooms = RoomHeads()
        rooms.set(Head(seq: 1, due: 100), for: room("A"))
        rooms.set(Head(seq: 2, due: 100), for: room("B"))
        #expect(rooms.takeDue(now: 100, limit: 10, busy: [room("A")]).map(\.room) == [room("B")])
        // Neither is due again until a head is set: their sends are in flight.
        #expect(rooms.takeDue(now: 200, limit: 10, busy: []).isEmpty)
        rooms.set(Head(seq: 3, due: 150), for: room("A"))
        #expect(rooms.takeDue(now: 200, limit: 10, busy: []).map(\.head) == [Head(seq: 3, due: 150)])
    }

    @Test func aReplacedHeadIsNotTakenTwice() {
        var rooms = RoomHeads()
        rooms.set(Head(seq: 1, due: 100), for: room("A"))
        rooms.set(Head(seq: 1, due: 500), for: room("A"))
        // The entry due at 100 is still in the heap: skipped, the head is due at 500.
        #expect(rooms.takeDue(now: 100, limit: 10, busy: []).isEmpty)
        #expect(rooms.nextDue(after: 100) == 500)
        rooms.set(Head(seq: 1, due: 500), for: room("A"))
        #expect(rooms.takeDue(now: 500, limit: 10, busy: []).map(\.head) == [Head(seq: 1, due: 500)])
        rooms.set(nil, for: room("A"))
        #expect(rooms.count == 0 && rooms.nextDue(after: 0) == nil)
    }

    @Test func stagedHeadsCountOnlyOnceCommitted() {
        var rooms = RoomHeads()
        rooms.stage(Head(seq: 1, due: 100), for: room("A"))
        #expect(rooms.head(of: room("A")) == Head(seq: 1, due: 100))
        #expect(rooms.takeDue(now: 100, limit: 10, busy: []).isEmpty)
        rooms.discardStaged()
        #expect(rooms.head(of: room("A")) == nil)
        rooms.stage(Head(seq: 2, due: 100), for: room("A"))
        rooms.commitStaged()
        rooms.stage(nil, for: room("A"))
        #expect(rooms.head(of: room("A")) == nil)
        rooms.discardStaged()
        #expect(rooms.takeDue(now: 100, limit: 10, busy: []).map(\.head) == [Head(seq: 2, due: 100)])
    }

    /// Heads replaced before they were due leave entries behind; those are dropped once they
    /// outnumber the rooms, so memory follows the rooms, not the changes.
    @Test func entriesLeftBehindAreDropped() {
        var rooms = RoomHeads()
        for due in 0..<10_000 {
            rooms.stage(Head(seq: 1, due: 1_000_000 - due), for: room("A"))
            rooms.commitStaged()
        }
        #expect(rooms.pendingEntries <= 2 * rooms.count + 1024)
        #expect(rooms.takeDue(now: .max, limit: 10, busy: []).map(\.head) == [Head(seq: 1, due: 990_001)])
    }
}
