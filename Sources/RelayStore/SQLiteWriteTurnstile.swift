#if canImport(Glibc)
import Glibc
#endif

/// The connections that write one SQLite file take turns through a lock file beside it
/// (`flock`, so two connections of one process exclude each other too). SQLite's own write
/// lock is not fair: a connection that finds it taken can only try again later, and a writer
/// that commits back to back takes it again within microseconds, before the waiting connection
/// tries. A connection holds the turnstile only while it waits for SQLite's lock: a writer that
/// comes back for its next transaction finds the turnstile taken and waits behind the one that
/// came first, which gets SQLite's lock as soon as the transaction under way ends.
final class SQLiteWriteTurnstile {
    /// The lock file's name beside the database file's.
    static let suffix = "-turnstile"

    /// How long a connection passes the turnstile by once it stayed taken for all of a wait.
    static let bypass: Duration = .seconds(60)

    private let descriptor: Int32
    /// Until when `take` gives up at once: the turnstile stayed taken for all of the last wait
    /// (its holder stopped), and every transaction waiting for it again would cost as much.
    private var bypassedUntil: ContinuousClock.Instant?

    /// Opens (creating, owner only) the turnstile of the database at `databasePath`; nil when
    /// it cannot be opened (a read-only directory): writers then wait for SQLite's lock alone.
    init?(databasePath: String) {
        let descriptor = open(databasePath + Self.suffix, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Takes the turnstile, trying every millisecond, at most `tries` times more; false when
    /// it stayed taken (the caller goes on without it: the turnstile orders writers, it
    /// guards nothing, and a process stopped while holding it must not stop the others).
    /// After such a wait it is passed by for `bypass`.
    func take(tries: Int32) -> Bool {
        if let bypassedUntil, ContinuousClock.now < bypassedUntil { return false }
        var tried: Int32 = 0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, tried < tries else {
                bypassedUntil = ContinuousClock.now + Self.bypass
                return false
            }
            tried += 1
            usleep(1000)
        }
        bypassedUntil = nil
        return true
    }

    /// Whether `take` gives up at once for now (after a wait that found it taken throughout).
    var isBypassed: Bool { bypassedUntil.map { ContinuousClock.now < $0 } ?? false }

    func release() { flock(descriptor, LOCK_UN) }
}
