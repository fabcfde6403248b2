import RelayCrypto
import RelayMapping

/// Times in the store are unix milliseconds (`Int`), everywhere: accepted, due, expiring.
package typealias UnixMilliseconds = Int

/// Where a delivery is in its life.
package enum DeliveryState: String, Sendable, CaseIterable {
    /// Waiting to be sent, or to be retried.
    case pending
    /// HappyTalk accepted it.
    case delivered
    /// Given up: kept with its reason until replayed or purged.
    case dead
}

/// The room a delivery is for: calls for the same room reach HappyTalk in order, one at a time.
package struct RoomKey: Hashable, Sendable {
    /// The route's credential name ("" for the default).
    package var credential: String
    package var roomID: String

    package init(credential: String, roomID: String) {
        self.credential = credential
        self.roomID = roomID
    }
}

/// A delivery to store: one call of an accepted webhook.
package struct NewDelivery: Sendable {
    package var id: String
    package var route: String
    package var room: RoomKey
    /// The call as its final JSON object, without `token` (spliced in when it is sent).
    package var call: [UInt8]
    /// What replay needs besides the body: the headers and query parameters the route reads
    /// (never a secret), as a JSON object `{"headers":{…},"query":{…}}`.
    package var request: String
    /// The request body, as received.
    package var body: [UInt8]
    /// Nil: pending; otherwise the delivery is stored dead with this reason (a mapping failure).
    package var deadReason: String?

    package init(id: String, route: String, room: RoomKey, call: [UInt8], request: String, body: [UInt8], deadReason: String? = nil) {
        self.id = id
        self.route = route
        self.room = room
        self.call = call
        self.request = request
        self.body = body
        self.deadReason = deadReason
    }
}

/// A route's dedupe key reduced to 16 bytes (a digest of route and key, made by the relay):
/// fixed size whatever a sender puts in the header.
package struct DedupeDigest: Hashable, Sendable {
    package let high: UInt64
    package let low: UInt64

    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The digest of a route's key: the first 16 bytes of SHA-256(route NUL key).
    package init(route: String, key: String) {
        self.init(digest: SHA256.hash(Array(route.utf8) + [0] + Array(key.utf8)))
    }

    /// The first 16 bytes of a digest.
    package init(digest: [UInt8]) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 {
            high = high << 8 | UInt64(index < digest.count ? digest[index] : 0)
            low = low << 8 | UInt64(index + 8 < digest.count ? digest[index + 8] : 0)
        }
        self.init(high: high, low: low)
    }

    /// The 16 bytes, as stored.
    package var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
    }
}

/// A webhook's dedupe key as stored: its digest, the webhook that first had it, until when.
package struct DedupeRecord: Sendable {
    package var digest: DedupeDigest
    package var firstID: String
    package var expiresAt: UnixMilliseconds

    package init(digest: DedupeDigest, firstID: String, expiresAt: UnixMilliseconds) {
        self.digest = digest
        self.firstID = firstID
        self.expiresAt = expiresAt
    }
}

/// Everything one webhook writes, committed together or not at all.
package struct WebhookWrite: Sendable {
    package var deliveries: [NewDelivery]
    /// Checked against the keys already stored: a key still in its window makes the whole
    /// write a duplicate, and nothing of it is stored.
    package var dedupe: DedupeRecord?
    package var bindings: [BindingWrite]

    package init(deliveries: [NewDelivery] = [], dedupe: DedupeRecord? = nil, bindings: [BindingWrite] = []) {
        self.deliveries = deliveries
        self.dedupe = dedupe
        self.bindings = bindings
    }

    /// Deliveries this write adds to the pending ones.
    package var pendingCount: Int { deliveries.filter { $0.deadReason == nil }.count }
}

/// What became of a committed write.
package enum StoreOutcome: Sendable, Equatable {
    case stored
    /// The dedupe key was already stored, by the webhook with this id; nothing was written.
    case duplicate(firstID: String)
}

/// Why a write was not stored.
package enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The queue limit or `--queue-max-bytes`: the sender should retry later (503).
    case full(String)
    /// The disk (or the file system's quota) has no room: retry later (503).
    case diskFull
    /// The store cannot be written or read now (503).
    case unavailable(String)
    /// The relay is shutting down (503).
    case stopping
    /// A binding key is bound to another chat and this write may not move it (409).
    case bindingConflict(kind: String)

    /// Whether the store itself failed (as opposed to a limit, a conflict or a shutdown).
    package var isStorageFault: Bool {
        switch self {
        case .diskFull, .unavailable: true
        case .full, .stopping, .bindingConflict: false
        }
    }

    package var description: String {
        switch self {
        case .full(let reason), .unavailable(let reason): reason
        case .diskFull: "the disk is full"
        case .stopping: "the relay is stopping"
        case .bindingConflict(let kind): "this \(kind) is already bound to another chat"
        }
    }
}

/// A delivery whose turn has come: the head of its room, due now.
package struct DueDelivery: Sendable {
    package var id: String
    package var route: String
    package var room: RoomKey
    /// The call without the token, as stored.
    package var call: [UInt8]
    /// Attempts made so far.
    package var attempts: Int
    package var acceptedAt: UnixMilliseconds
    /// Another replica claimed it and stopped answering before recording the outcome: it may
    /// have reached HappyTalk already (at-least-once), and is counted.
    package var isRedelivery = false

    package init(id: String, route: String, room: RoomKey, call: [UInt8], attempts: Int, acceptedAt: UnixMilliseconds, isRedelivery: Bool = false) {
        self.id = id
        self.route = route
        self.room = room
        self.call = call
        self.attempts = attempts
        self.acceptedAt = acceptedAt
        self.isRedelivery = isRedelivery
    }
}

/// What an attempt of a delivery led to, to record.
package struct DeliveryOutcome: Sendable, Equatable {
    /// What happens to the delivery next.
    package enum Disposition: Sendable, Equatable {
        case delivered
        case retry(at: UnixMilliseconds)
        case dead(reason: String)
    }

    package var id: String
    package var room: RoomKey
    package var disposition: Disposition
    /// Attempts made, this one included.
    package var attempts: Int
    /// What this attempt ran into (stored as the last reason of a retried delivery).
    package var reason: String
    /// When the attempt ended (0: when it is recorded).
    package var attemptedAt: UnixMilliseconds
    /// HappyTalk's answer, when it gave one worth keeping (a `fail`, a 5xx).
    package var answer: UpstreamAnswer?

    package init(
        id: String, room: RoomKey, disposition: Disposition, attempts: Int, reason: String, attemptedAt: UnixMilliseconds = 0,
        answer: UpstreamAnswer? = nil
    ) {
        self.id = id
        self.room = room
        self.disposition = disposition
        self.attempts = attempts
        self.reason = reason
        self.attemptedAt = attemptedAt
        self.answer = answer
    }
}

/// What HappyTalk answered an attempt: the HTTP status, and for a `fail` its code and message.
package struct UpstreamAnswer: Sendable, Equatable {
    package var status: Int?
    package var code: Int?
    package var message: String?

    package init(status: Int? = nil, code: Int? = nil, message: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
    }
}

/// One attempt of a delivery, as `deliveries show` lists it.
package struct AttemptRecord: Sendable, Equatable {
    package var attempt: Int
    package var at: UnixMilliseconds
    /// `delivered`, `retry` or `dead`.
    package var outcome: String
    package var reason: String
    package var answer: UpstreamAnswer
}

/// The counts `/metrics` shows of the queue.
package struct QueueGauges: Sendable, Equatable {
    package var pending: Int
    package var dead: Int
    /// Seconds since the oldest pending delivery was accepted (0 when none is pending).
    package var oldestPendingAge: Double
    /// Dead deliveries per route, by route.
    package var deadByRoute: [(route: String, count: Int)] = []

    package init(pending: Int, dead: Int, oldestPendingAge: Double, deadByRoute: [(route: String, count: Int)] = []) {
        self.pending = pending
        self.dead = dead
        self.oldestPendingAge = oldestPendingAge
        self.deadByRoute = deadByRoute
    }

    package static func == (lhs: QueueGauges, rhs: QueueGauges) -> Bool {
        lhs.pending == rhs.pending && lhs.dead == rhs.dead && lhs.oldestPendingAge == rhs.oldestPendingAge
            && lhs.deadByRoute.elementsEqual(rhs.deadByRoute) { $0 == $1 }
    }
}

extension BindingWrite {
    /// The kind of the first key that `writes` would move from one chat to another without
    /// leave, given each key's current binding (`current[i]` for `writes[i]`), or nil. A key may
    /// move when the rule says `"replace": true`, when the chat is the same customer's (same
    /// uuid, another room), or when another key of the same write is already bound to the chat
    /// the key leaves (whoever binds knows both, e.g. the order and its phone). Every engine
    /// applies this one rule.
    package static func conflict(_ writes: [BindingWrite], current: [(uuid: String, roomID: String)?]) -> String? {
        for (index, write) in writes.enumerated() {
            guard let existing = current[index], !write.mayReplace, existing.uuid != write.uuid else { continue }
            let vouched = writes.indices.contains { other in
                other != index && writes[other].uuid == write.uuid && writes[other].roomID == write.roomID
                    && current[other].map { $0.uuid == existing.uuid && $0.roomID == existing.roomID } == true
            }
            if !vouched { return write.kind }
        }
        return nil
    }
}
