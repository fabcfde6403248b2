import Testing

@testable import RelayStore

/// The SQLite wrapper's bound values, read back by SQLite itself.
@Suite struct SQLiteStatementTests {
    /// Binds one value and reads back what SQLite stored: its type, its bytes and its length.
    func roundTrip(_ value: SQLiteValue) throws -> (type: String, text: String?, length: Int) {
        let database = try SQLiteDatabase(path: ":memory:")
        let query = try database.prepare("SELECT typeof(?1), ?1, length(CAST(?1 AS BLOB))")
        try query.bind([value])
        #expect(try query.step())
        return (query.text(0) ?? "", query.text(1), query.integer(2))
    }

    @Test func textIsBoundByItsBytesWhateverItsSize() throws {
        // Inline (small) strings, a heap string, non-ASCII, and a NUL inside: each bound whole.
        for text in ["a", "fifteen bytes!!", "sixteen bytes!!!", "홍길동", String(repeating: "긴 문자열 ", count: 40), "before\u{0}after"] {
            let stored = try roundTrip(.text(text))
            #expect(stored.type == "text")
            #expect(stored.text == text)
            #expect(stored.length == text.utf8.count)
        }
    }

    @Test func emptyTextAndEmptyBlobAreNotNull() throws {
        let text = try roundTrip(.text(""))
        #expect(text.type == "text")
        #expect(text.text == "")
        let blob = try roundTrip(.blob([]))
        #expect(blob.type == "blob")
        #expect(try roundTrip(.null).type == "null")
    }

    @Test func aStatementReboundKeepsNoEarlierValue() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        let query = try database.prepare("SELECT ?1, ?2")
        try query.bind([.text("first long value, on the heap"), .integer(1)])
        #expect(try query.step())
        try query.bind([.text("b")])
        #expect(try query.step())
        #expect(query.text(0) == "b")
        #expect(query.isNull(1))
    }
}
