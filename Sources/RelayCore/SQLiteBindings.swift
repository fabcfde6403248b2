import Foundation
import RelayMapping
import Synchronization

/// Looks bindings up in the queue's database for rules that `resolve`: one read connection
/// (WAL lets it read beside the writer), its prepared statement reused under a lock.
package final class SQLiteBindings: BindingLookup, @unchecked Sendable {
    private struct Reader {
        let database: SQLiteDatabase
        let lookup: SQLiteStatement
    }

    // The lock makes the connection and its statement single-threaded.
    private let reader: Mutex<Reader>
    private let clock: @Sendable () -> Int

    /// Opens a reader on the database at `path` (created and migrated by the queue).
    package init(path: String, clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970 * 1000) }) throws(SQLiteError) {
        let database = try SQLiteDatabase(path: path)
        try DeliveryQueue.migrate(database)
        let lookup = try database.prepare("SELECT uuid, room_id, created_at FROM bindings WHERE kind = ? AND value = ? AND expires_at > ?")
        reader = Mutex(Reader(database: database, lookup: lookup))
        self.clock = clock
    }

    package func binding(kind: String, value: String) -> Binding? {
        let now = clock()
        return reader.withLock { reader -> Binding? in
            // Reset at once: a statement left on a row keeps its read snapshot open.
            defer { reader.lookup.reset() }
            do {
                try reader.lookup.bind([.text(kind), .text(value), .integer(now)])
                guard try reader.lookup.step() else { return nil }
                return Binding(
                    uuid: reader.lookup.text(0) ?? "", roomID: reader.lookup.text(1) ?? "", key: "\(kind)=\(value)",
                    createdAt: RFC3339.timestamp(milliseconds: reader.lookup.integer(2)))
            } catch {
                return nil
            }
        }
    }
}
