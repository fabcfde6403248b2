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
    /// most one per room, at most `limit`. Costs O(log n + limit + busy) in the backlog.
    func claimDue(limit: Int, now: UnixMilliseconds, busy: Set<RoomKey>) throws(StoreError) -> [DueDelivery]

    /// When the next room becomes due after `now` (nil: none): rooms due already are either
    /// claimed or busy, and a finished send wakes the writer for those.
    func nextDueTime(after now: UnixMilliseconds) throws(StoreError) -> UnixMilliseconds?

    /// Deliveries waiting to be sent or retried.
    func pendingCount() throws(StoreError) -> Int

    /// Whether another process (a CLI replay, another replica) changed the store since the
    /// last call: the caller counts again.
    func changedElsewhere() -> Bool

    /// A small write that tells whether the store can be written again.
    func probe(now: UnixMilliseconds) throws(StoreError)

    /// Deletes delivered records finished before `deliveredBefore`, dead ones before
    /// `deadBefore` (with their attempts), expired dedupe keys and bindings. Returns how many
    /// dead deliveries it deleted.
    func purge(now: UnixMilliseconds, deliveredBefore: UnixMilliseconds, deadBefore: UnixMilliseconds) throws(StoreError) -> Int

    /// Why the store cannot take writes that would last (its file deleted, a size limit
    /// reached), or nil.
    func refusal() -> StoreError?
}

/// Reads the relay does while it serves webhooks: bindings for rules that `resolve`, and the
/// dedupe keys a sync route checks before it sends. Safe from any thread.
package protocol StoreLookups: BindingLookup {
    /// The id of the webhook that first had this dedupe key, while the key is in its window.
    func firstID(for digest: DedupeDigest) -> String?
}
