import Dispatch
import Synchronization

/// Checkpoints a WAL database off its writer's thread, on a connection of its own.
///
/// SQLite's automatic checkpoint runs inside the commit that takes the write-ahead log past
/// 1,000 pages: it copies those pages into the database file and syncs it, milliseconds during
/// which the writer commits nothing and every webhook waiting for its 202 waits too (an async
/// load's p99 went from about 7 to 12 ms with it, BENCHMARKS.md). Here the writer's WAL hook,
/// which replaces that checkpoint, passes on the log's size after each commit, and past
/// `pages` a passive checkpoint runs on this checkpointer's queue, which neither waits for nor
/// blocks the writer. The next write after a complete checkpoint starts the log over; under a
/// load that never pauses, the writer finishes the remainder itself at `finishingFactor` times
/// `pages`, so the log stays bounded.
final class SQLiteCheckpointer: @unchecked Sendable {
    // The connection is used on `queue` only.
    private let connection: SQLiteDatabase
    private let writer: SQLiteDatabase
    private let pages: Int
    private let queue = DispatchQueue(label: "happyrelay.sqlite-checkpoint")
    private let isScheduled = Atomic<Bool>(false)
    private let lastBackground = Mutex<(logPages: Int, checkpointedPages: Int)?>(nil)
    /// How many times `pages` the log may grow while background checkpoints run beside the writer.
    static let finishingFactor = 2

    /// Takes over checkpoints of `writer`'s database at `path`, past `pages` pages of log.
    init(path: String, writer: SQLiteDatabase, pages: Int) throws(SQLiteError) {
        connection = try SQLiteDatabase(path: path)
        // A checkpoint syncs the database file before the log may start over (as the writer's did).
        try connection.execute("PRAGMA synchronous=FULL")
        // A connection learns that the database is in WAL mode when it first reads it; until
        // then a checkpoint on it reports success and copies nothing.
        try connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        self.writer = writer
        self.pages = pages
        // The hook takes the place of SQLite's automatic checkpoint (which is a WAL hook too).
        writer.setWALHook(
            { context, _, _, logPages in
                Unmanaged<SQLiteCheckpointer>.fromOpaque(context!).takeUnretainedValue().committed(logPages: Int(logPages))
                return 0
            }, context: Unmanaged.passUnretained(self).toOpaque())
    }

    /// What the last checkpoint on the checkpointer's own connection reported (for tests).
    var lastBackgroundCheckpoint: (logPages: Int, checkpointedPages: Int)? { lastBackground.withLock { $0 } }

    /// Called on the writer's thread after each commit.
    private func committed(logPages: Int) {
        guard logPages >= pages else { return }
        if logPages >= pages * Self.finishingFactor {
            // The log starts over only when a write begins with all of it checkpointed, which a
            // checkpoint running beside a busy writer seldom leaves. Past this size the writer
            // waits for one in progress and finishes the job itself: only what that one left.
            queue.sync {}
            _ = try? writer.checkpointPassively()
            return
        }
        guard isScheduled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        queue.async { [self] in
            // A failure (the database busy, say) is left to the next commit past the limit.
            if let result = try? connection.checkpointPassively() { lastBackground.withLock { $0 = result } }
            isScheduled.store(false, ordering: .releasing)
        }
    }

    /// Hands checkpoints back to the writer and waits for one in progress to end; call before
    /// the writer closes.
    func stop() {
        writer.setWALHook(nil, context: nil)
        queue.sync {}
    }
}
