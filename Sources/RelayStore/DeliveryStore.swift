import FoundationEssentials
import RelayMapping

/// A storage engine for the delivery queue, the dedupe keys and the bindings (SQLite here;
/// a server engine such as PostgreSQL implements the same). Its methods are called from the
/// store writer's thread only, one after the other, so an engine may hold one connection
/// without a lock; each call is a transaction, or part of the one `commit` makes.
package protocol DeliveryStore: AnyObject {
    /// Writes, in one transaction, the outcomes of sends (all of them, or none: they stay with
    /// the caller to be written again) and each webhook's writes (each in a savepoint of its
    /// own, so one failing write leaves the others). Returns the webhooks' results in order.
    /// A thrown error means nothing was committed.
    func commit(_ writes: [WebhookWrite], outcomes: [DeliveryOutcome], now: UnixMilliseconds) throws(StoreError) -> [Result<StoreOutcome, StoreError>]

    /// The heads of rooms that are due at `now`, oldest due first, skipping `busy` rooms: at
    /// most one per room, at most `limit`. Costs O(log n + limit + busy) in the backlog. A room
    /// returned (or skipped as busy) is not returned again before an outcome for it is
    /// committed: the caller counts it busy until then.
    func claimDue(limit: Int, now: UnixMilliseconds, busy: Set<RoomKey>) throws(StoreError) -> [DueDelivery]

    /// When the next room becomes due after `now` (nil: none): rooms due already are either
    /// claimed or busy, and a finished send wakes the writer for those.
    func nextDueTime(after now: UnixMilliseconds) throws(StoreError) -> UnixMilliseconds?

    /// Deliveries waiting to be sent or retried.
    func pendingCount() throws(StoreError) -> Int

    /// Whether the store took in changes another process made (a CLI replay, another
    /// replica) since the last call: the caller counts again. An engine may take them in
    /// later than they were made (SQLite spaces its derivations of the rooms' heads, and
    /// claims nothing until it has taken them in).
    func changedElsewhere() -> Bool

    /// A small write that tells whether the store can be written again.
    func probe(now: UnixMilliseconds) throws(StoreError)

    /// Deletes delivered records finished before `deliveredBefore`, dead ones before
    /// `deadBefore` (with their attempts), expired dedupe keys and bindings: at most `limit` of
    /// each kind, so that one call holds the writer for milliseconds however much is due (a
    /// shorter retention, a relay stopped for a while); the caller calls again while the
    /// result is not complete.
    func purge(now: UnixMilliseconds, deliveredBefore: UnixMilliseconds, deadBefore: UnixMilliseconds, limit: Int) throws(StoreError) -> PurgeResult

    /// Why the store cannot take writes that would last (its file deleted, a size limit
    /// reached), or nil.
    func refusal() -> StoreError?
}

/// Deliveries one transaction of an operator's bulk change (deleting or replaying dead
/// letters) touches at most: a serving relay's writer waits for the store no longer than one
/// such step (about 6 ms for a deletion on SQLite here), however many dead letters there are,
/// and a replay holds no more than one step's requests in memory.
package let bulkChangeStep = 200

/// What one `purge` deleted.
package struct PurgeResult: Sendable, Equatable {
    /// Dead deliveries deleted.
    package var deadDeleted: Int
    /// Nothing more was due: false when a kind of record reached the call's limit.
    package var isComplete: Bool
}

/// Reads the relay does while it serves webhooks: bindings for rules that `resolve`, and the
/// dedupe keys a sync route checks before it sends. Safe from any thread.
package protocol StoreLookups: BindingLookup {
    /// The id of the webhook that first had this dedupe key, while the key is in its window.
    func firstID(for digest: DedupeDigest) -> String?
}

/// What operators do with a store — list, show, retry, delete and replay deliveries, bindings,
/// gauges, the settings the serving relay records — on a connection of its own, safe beside
/// running relays, which notice the changes. The CLI, the admin API and the console use only
/// this, whatever engine holds the store.
package protocol DeliveryAdministration: AnyObject {
    /// One page of the deliveries that pass `filter`, oldest first, and the next page's cursor.
    func list(_ filter: DeliveryFilter) throws -> (rows: [DeliverySummary], next: Int?)
    /// One delivery with its request, call and attempts.
    func detail(id: String) throws -> DeliveryDetail?
    /// Deletes one delivery with its attempts; false when there was none.
    func delete(id: String) throws -> Bool
    /// Deletes at most `limit` of the dead deliveries that died before `cutoff`, with their
    /// attempts, in one transaction; returns how many (an operator's deletion calls again, a
    /// step at a time, while a step deletes `limit`).
    func deleteDead(before cutoff: UnixMilliseconds, limit: Int) throws -> Int
    /// Makes a pending delivery, and its room's earlier ones, due now.
    func retry(id: String, now: UnixMilliseconds) throws -> DeliveryRetryResult
    /// The ids of the dead deliveries, oldest first.
    func deadIDs() throws -> [String]
    /// Those of these deliveries that are dead, oldest first, with their requests.
    func deadRequests(ids: [String]) throws -> [StoredRequest]
    /// Applies replay changes in one transaction (a replay passes at most `bulkChangeStep` at a time).
    func replay(_ changes: [(request: StoredRequest, change: ReplayChange)], now: UnixMilliseconds) throws
    /// Unexpired bindings (of one key, or all).
    func bindings(kind: String?, value: String?, now: UnixMilliseconds) throws -> [BindingRecord]
    /// Deletes one binding; false when there was none.
    func deleteBinding(kind: String, value: String) throws -> Bool
    /// The queue's counts.
    func gauges(now: UnixMilliseconds) throws -> QueueGauges
    /// A value the serving relay recorded for the CLI, or nil.
    func recorded(_ name: String) throws -> String?
    /// Records a value for the CLI.
    func record(_ name: String, value: String) throws
}

/// What `retry` did.
package enum DeliveryRetryResult: Equatable, Sendable {
    /// Due now; `behind` earlier deliveries of its room go first (they are due now too).
    case scheduled(behind: Int)
    /// Only a pending delivery can be retried (a dead one is replayed).
    case notPending(DeliveryState)
    case notFound
}

/// What a replay does to one dead delivery.
package enum ReplayChange: Sendable {
    /// Pending again with these calls (the first keeps the delivery's id; others get `ID-rN`).
    case requeue([(roomID: String, call: [UInt8])])
    /// Still dead, with this reason.
    case keepDead(String)
}

/// Where a relay's store is, and how operators' tools open it: the one place that knows the
/// engines (a server engine adds a case here).
package enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    /// The SQLite file of a data directory.
    case sqlite(directory: String)
    /// A PostgreSQL database that several relays share (a libpq connection URI).
    case postgres(url: String)

    /// The store's admin operations; nil when there is no store there yet.
    package func openAdministration() throws -> (any DeliveryAdministration)? {
        switch self {
        case .sqlite(let directory): try SQLiteAdmin(directory: directory)
        case .postgres(let url): try PostgresAdmin.existing(url: url)
        }
    }

    /// Reads of bindings and dedupe keys, as a rule that resolves makes them; nil when there is
    /// no store there yet.
    package func openLookups() throws -> (any StoreLookups)? {
        switch self {
        case .sqlite(let directory):
            let path = SQLiteSchema.path(in: directory)
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            return try SQLiteLookups(path: path, connections: 1)
        case .postgres(let url):
            return try PostgresLookups.existing(url: url)
        }
    }

    /// Why the store could not be opened, naming it once (a PostgreSQL error names the
    /// redacted URL itself).
    package func openingFailure(_ error: any Error, what: String = "cannot open") -> String {
        let text = "\(error)"
        return text.contains(description) ? text : "\(what) \(description): \(text)"
    }

    /// The store, for messages (`data/happyrelay.sqlite`).
    package var description: String {
        switch self {
        case .sqlite(let directory): SQLiteSchema.path(in: directory)
        case .postgres(let url): PostgresURL.redacted(url)
        }
    }
}
