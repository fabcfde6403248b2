import Foundation
import RelayMapping
import Synchronization
import TestSupport
import Testing

@testable import RelayStore

/// Writers of one SQLite file take turns: SQLite's write lock alone goes to whoever tries in
/// the moment it is free, and a writer committing back to back is always first.
@Suite struct SQLiteWriteTurnstileTests {
    /// A connection that waits for the write lock gets it when the transaction under way ends,
    /// before the holder's next transaction: the holder, beginning again at once, finds the
    /// waiter's row written.
    @Test func aWaitingWriterGoesBeforeTheHoldersNextTransaction() async throws {
        try await offPool {
            let folder = SQLiteDeliveryStoreTests.Folder()
            try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
            let path = folder.path + "/turns.sqlite"
            try SQLiteDatabase(path: path).execute("PRAGMA journal_mode=WAL; CREATE TABLE writes (who TEXT)")
            let waiterRows = try Self.holdingTheLock(of: path, whileWaiting: { path in
                let waiter = try SQLiteDatabase(path: path)
                try waiter.beginImmediate()
                try waiter.execute("INSERT INTO writes VALUES ('waiter'); COMMIT")
            }, thenCount: "SELECT COUNT(*) FROM writes WHERE who = 'waiter'")
            #expect(waiterRows == 1, "the holder began again before the waiting connection")
        }
    }

    /// An operator's change made in one statement (deleting a binding) takes its turn as well:
    /// beside a writer that begins again at once it is done before that writer's next transaction.
    @Test func anOperatorsSingleStatementChangeTakesItsTurnToo() async throws {
        try await offPool {
            let folder = SQLiteDeliveryStoreTests.Folder()
            let store = try SQLiteDeliveryStore(directory: folder.path)
            _ = try store.commit(
                [WebhookWrite(bindings: [BindingWrite(kind: "order_number", value: "1043", uuid: "u-1", roomID: "r-1", ttl: .seconds(600))])],
                outcomes: [], now: 1_000)
            let directory = folder.path
            let bindingsLeft = try Self.holdingTheLock(of: SQLiteSchema.path(in: directory), whileWaiting: { _ in
                let admin = try #require(try SQLiteAdmin(directory: directory))
                #expect(try admin.deleteBinding(kind: "order_number", value: "1043"))
            }, thenCount: "SELECT COUNT(*) FROM bindings")
            #expect(bindingsLeft == 0, "the holder began again before the binding was deleted")
            withExtendedLifetime(store) {}
        }
    }

    /// Holds SQLite's write lock on `path` while `waiter` runs on a thread of its own; once the
    /// waiter holds the turnstile (it waits for the lock), commits, begins again at once and
    /// returns what `query` counts then. Fails the test if the waiter threw.
    static func holdingTheLock(of path: String, whileWaiting waiter: @escaping @Sendable (String) throws -> Void, thenCount query: String) throws -> Int {
        let holder = try SQLiteDatabase(path: path)
        try holder.beginImmediate()
        try holder.execute("CREATE TABLE IF NOT EXISTS holder (n INTEGER); INSERT INTO holder VALUES (1)")
        let failure = Mutex<String?>(nil)
        let waiterDone = DispatchSemaphore(value: 0)
        Thread {
            defer { waiterDone.signal() }
            do {
                try waiter(path)
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
        }.start()

        // The waiter holds the turnstile while it waits for SQLite's lock.
        let probe = open(path + SQLiteWriteTurnstile.suffix, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(probe) }
        func turnstileIsTaken() -> Bool {
            guard flock(probe, LOCK_EX | LOCK_NB) == 0 else { return true }
            flock(probe, LOCK_UN)
            return false
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var waiterIsWaiting = turnstileIsTaken()
        while !waiterIsWaiting && ContinuousClock.now < deadline {
            usleep(1000)
            waiterIsWaiting = turnstileIsTaken()
        }
        #expect(waiterIsWaiting, "the waiting connection never took the turnstile")

        try holder.execute("COMMIT")
        try holder.beginImmediate()
        let count = try holder.integer(query)
        try holder.execute("COMMIT")
        waiterDone.wait()
        #expect(failure.withLock { $0 } == nil)
        return count
    }

    /// A turnstile left taken (its holder stopped) delays a writer by its tries, then lets it
    /// go on to SQLite's lock: it orders writers, it never stops them. Having waited once in
    /// vain, the writer passes it by for a while rather than wait as long for every transaction.
    @Test func aTurnstileLeftTakenIsGivenUpAfterItsTriesAndThenPassedBy() throws {
        let folder = SQLiteDeliveryStoreTests.Folder()
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        let path = folder.path + "/turns.sqlite"
        let stuck = try #require(SQLiteWriteTurnstile(databasePath: path))
        let other = try #require(SQLiteWriteTurnstile(databasePath: path))
        #expect(stuck.take(tries: 0))
        #expect(!other.isBypassed)
        #expect(!other.take(tries: 3))
        #expect(other.isBypassed)
        stuck.release()
        #expect(!other.take(tries: 3), "waited for again right after a wait in vain")
        // A writer that never waited in vain takes its turn as before.
        #expect(stuck.take(tries: 0))
        stuck.release()
        let mode = try FileManager.default.attributesOfItem(atPath: path + SQLiteWriteTurnstile.suffix)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
