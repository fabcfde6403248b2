import Foundation
import Synchronization
import TestSupport
import Testing

@testable import RelayStore

@Suite(.enabled(if: PostgresCluster.binaries != nil, "PostgreSQL is installed by deploy/install-build-deps --tests"))
struct PostgresSchemaTests {
    @Test func replicasStartingTogetherMigrateOnce() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            // Four relays start at once: one creates the tables, the others find them.
            let before = Mutex<[Int]>([])
            let failures = Mutex<[String]>([])
            let threads = (0..<4).map { _ in
                Thread {
                    do {
                        let connection = try PostgresConnection(url: cluster.url)
                        let found = try PostgresSchema.migrate(connection)
                        before.withLock { $0.append(found) }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
            for thread in threads { thread.start() }
            let deadline = Date().addingTimeInterval(30)
            while before.withLock({ $0.count }) + failures.withLock({ $0.count }) < 4 && Date() < deadline { usleep(10_000) }
            #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
            #expect(before.withLock { $0 }.sorted() == [0, 1, 1, 1])
            let connection = try PostgresConnection(url: cluster.url)
            #expect(try connection.query("SELECT version FROM happyrelay_schema").rows == [["1"]])
            #expect(try connection.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'rooms_lease'").integer(0, 0) == 1)
            #expect(try connection.query("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('deliveries', 'rooms', 'bindings', 'dedupe_digests', 'attempts', 'relay_state')").integer(0, 0) == 6)
        }
    }

    @Test func aNewerSchemaIsRefused() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let connection = try PostgresConnection(url: cluster.url)
            try PostgresSchema.migrate(connection)
            try connection.query("UPDATE happyrelay_schema SET version = $1", [.integer(PostgresSchema.version + 1)])
            #expect(throws: PostgresError.self) { try PostgresSchema.migrate(connection) }
            do {
                try PostgresSchema.migrate(connection)
            } catch {
                #expect("\(error)" == "the store was written by a newer happyrelay (schema 2, this one knows 1)")
            }
        }
    }
}
