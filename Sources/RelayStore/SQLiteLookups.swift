import FoundationEssentials
import RelayMapping
import Synchronization

/// Reads of the relay's database while it serves: bindings for rules that `resolve`, dedupe
/// keys for sync routes. A few read connections (WAL lets them read beside the writer), each
/// with its prepared statements and its lock, so that lookups at once do not wait for each
/// other.
package final class SQLiteLookups: StoreLookups, @unchecked Sendable {
    // Touched only under its lock.
    private struct Reader: @unchecked Sendable {
        let database: SQLiteDatabase
        let lookup: SQLiteStatement
        let dedupe: SQLiteStatement
    }

    /// A connection with its lock (Mutex cannot live in an array by itself).
    private final class LockedReader: @unchecked Sendable {
        let mutex: Mutex<Reader>
        init(_ reader: Reader) { mutex = Mutex(reader) }
    }

    // Each lock makes its connection and statement single-threaded.
    private let readers: [LockedReader]
    private let clock: @Sendable () -> Int

    /// Opens `connections` readers on the database at `path` (the relay uses a few, one-shot
    /// commands one).
    package init(
        path: String, connections: Int = 4, clock: @escaping @Sendable () -> Int = currentUnixMilliseconds
    ) throws(SQLiteError) {
        var readers: [LockedReader] = []
        for _ in 0..<max(1, connections) {
            let database = try SQLiteDatabase(path: path)
            try SQLiteSchema.requireCurrent(database, path: path)
            let lookup = try database.prepare("SELECT uuid, room_id, created_at FROM bindings WHERE kind = ? AND value = ? AND expires_at > ?")
            let dedupe = try database.prepare("SELECT first_id FROM dedupe_digests WHERE key = ? AND expires_at > ?")
            readers.append(LockedReader(Reader(database: database, lookup: lookup, dedupe: dedupe)))
        }
        self.readers = readers
        self.clock = clock
    }

    package func binding(kind: String, value: String) -> Binding? {
        let now = clock()
        for reader in readers {
            if let found = reader.mutex.withLockIfAvailable({ Self.lookup(kind, value, now: now, in: $0) }) { return found }
        }
        return readers[0].mutex.withLock { Self.lookup(kind, value, now: now, in: $0) }
    }

    /// The id of the webhook that first had this dedupe key, while the key is in its window.
    package func firstID(for digest: DedupeDigest) -> String? {
        let now = clock()
        return readers[0].mutex.withLock { reader in
            defer { reader.dedupe.reset() }
            do {
                try reader.dedupe.bind([.blob(digest.bytes), .integer(now)])
                return try reader.dedupe.step() ? reader.dedupe.text(0) : nil
            } catch {
                return nil
            }
        }
    }

    private static func lookup(_ kind: String, _ value: String, now: Int, in reader: Reader) -> Binding? {
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
