import Foundation
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
            let holder = try SQLiteDatabase(path: path)
            try holder.execute("PRAGMA journal_mode=WAL; CREATE TABLE writes (who TEXT)")
            try holder.beginImmediate()
            try holder.execute("INSERT INTO writes VALUES ('holder')")

            let failure = Mutex<String?>(nil)
            let waiterDone = DispatchSemaphore(value: 0)
            Thread {
                defer { waiterDone.signal() }
                do {
                    let waiter = try SQLiteDatabase(path: path)
                    try waiter.beginImmediate()
                    try waiter.execute("INSERT INTO writes VALUES ('waiter'); COMMIT")
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
            let waiterRows = try holder.integer("SELECT COUNT(*) FROM writes WHERE who = 'waiter'")
            try holder.execute("COMMIT")
            waiterDone.wait()
            #expect(failure.withLock { $0 } == nil)
            #expect(waiterRows == 1, "the holder began again before the waiting connection")
        }
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
