import FoundationEssentials
import RelayMapping
import Synchronization

/// Reads of the shared PostgreSQL store while a relay serves: bindings for rules that
/// `resolve` (made on any replica), dedupe keys for sync routes. A few connections, each
/// behind its lock; a connection the server dropped is opened again on the next lookup.
package final class PostgresLookups: StoreLookups, @unchecked Sendable {
    /// A connection with its lock (Mutex cannot live in an array by itself).
    private final class LockedConnection: @unchecked Sendable {
        let mutex: Mutex<PostgresConnection>
        init(_ connection: sending PostgresConnection) { mutex = Mutex(connection) }
    }

    // Each lock makes its connection single-threaded.
    private let connections: [LockedConnection]
    private let clock: @Sendable () -> Int

    package init(
        url: String, connections: Int = 4, clock: @escaping @Sendable () -> Int = currentUnixMilliseconds
    ) throws(PostgresError) {
        var opened: [LockedConnection] = []
        for _ in 0..<max(1, connections) {
            opened.append(LockedConnection(try PostgresConnection(url: url, settings: PostgresSchema.servingSettings)))
        }
        self.connections = opened
        self.clock = clock
    }

    /// One connection to the store of an operator's tool: nil when the database holds no relay
    /// tables, refused at another schema version (`PostgresSchema.requireCurrent`).
    package static func existing(url: String) throws(PostgresError) -> PostgresLookups? {
        let lookups = try PostgresLookups(url: url, connections: 1)
        let isPresent = try lookups.connections[0].mutex.withLock { connection throws(PostgresError) in
            try PostgresSchema.requireCurrent(connection, url: url)
        }
        return isPresent ? lookups : nil
    }

    package func binding(kind: String, value: String) -> Binding? {
        let now = clock()
        let query = { (connection: PostgresConnection) -> Binding? in
            guard
                let rows = Self.run(connection, "SELECT uuid, room_id, created_at FROM bindings WHERE kind = $1 AND value = $2 AND expires_at > $3", [.text(kind), .text(value), .integer(now)]),
                rows.count == 1
            else { return nil }
            return Binding(
                uuid: rows.text(0, 0) ?? "", roomID: rows.text(0, 1) ?? "", key: "\(kind)=\(value)", createdAt: RFC3339.timestamp(milliseconds: rows.integer(0, 2)))
        }
        for connection in connections {
            if let found = connection.mutex.withLockIfAvailable({ query($0) }) { return found }
        }
        return connections[0].mutex.withLock { query($0) }
    }

    package func firstID(for digest: DedupeDigest) -> String? {
        let now = clock()
        return connections[0].mutex.withLock { connection in
            guard let rows = Self.run(connection, "SELECT first_id FROM dedupe_digests WHERE key = $1 AND expires_at > $2", [.bytes(digest.bytes), .integer(now)]),
                rows.count == 1
            else { return nil }
            return rows.text(0, 0)
        }
    }

    /// A query, tried again once on a fresh connection when the server had dropped it; nil when
    /// the store cannot be read (the lookup then finds nothing, as a missing binding would).
    private static func run(_ connection: PostgresConnection, _ sql: String, _ parameters: [PostgresValue]) -> PostgresRows? {
        do {
            return try connection.query(sql, parameters)
        } catch where error.isConnectionLost {
            guard (try? connection.reconnect()) != nil else { return nil }
            return try? connection.query(sql, parameters)
        } catch {
            return nil
        }
    }
}
