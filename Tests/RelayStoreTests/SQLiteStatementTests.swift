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

    /// `run` binds text and blobs where they are, without a copy: what it stores is read back.
    @Test func runStoresEachValueItBorrows() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try database.execute("CREATE TABLE t (a, b, c, d, e)")
        let insert = try database.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)")
        let texts = ["a", "sixteen bytes!!!", "홍길동", String(repeating: "긴 문자열 ", count: 400), "before\u{0}after"]
        let blob = (0..<3072).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for text in texts {
            try insert.run([.text(text), .blob(blob), .integer(-7), .text(""), .blob([])])
        }
        try insert.run([.null, .blob([0]), .integer(Int.max), .null, .null])
        let rows = try database.prepare("SELECT a, b, c, typeof(d), d, typeof(e), length(e), typeof(a) FROM t ORDER BY rowid")
        for text in texts {
            #expect(try rows.step())
            #expect(rows.text(0) == text)
            #expect(rows.bytes(1) == blob)
            #expect(rows.integer(2) == -7)
            #expect(rows.text(3) == "text" && rows.text(4) == "")
            #expect(rows.text(5) == "blob" && rows.integer(6) == 0)
        }
        #expect(try rows.step())
        #expect(rows.text(7) == "null")
        #expect(rows.bytes(1) == [0])
        #expect(rows.integer(2) == Int.max)
        #expect(try !rows.step())
    }

    /// The bytes `run` borrowed are gone once it returns: nothing of them stays bound, so a
    /// step without new values reads no freed memory.
    @Test func runLeavesNothingBound() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try database.execute("CREATE TABLE t (a, b)")
        let insert = try database.prepare("INSERT INTO t VALUES (?, ?)")
        try insert.run([.text(String(repeating: "borrowed ", count: 20)), .blob([1, 2, 3])])
        #expect(try !insert.step())
        insert.reset()
        let second = try database.prepare("SELECT typeof(a), typeof(b) FROM t WHERE rowid = 2")
        #expect(try second.step())
        #expect(second.text(0) == "null")
        #expect(second.text(1) == "null")
    }

    /// A value SQLite refuses while `run` borrows the others is reported, and the statement
    /// is left ready for the next run.
    @Test func runReportsAFailureAndRunsAgain() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try database.execute("CREATE TABLE t (a TEXT NOT NULL, b BLOB)")
        let insert = try database.prepare("INSERT INTO t VALUES (?, ?)")
        #expect(throws: SQLiteError.self) { try insert.run([.null, .blob([1])]) }
        try insert.run([.text("after the failure"), .blob([2])])
        #expect(try database.integer("SELECT COUNT(*) FROM t") == 1)
    }
}
