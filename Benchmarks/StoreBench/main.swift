// The async path's store work, one thread, as the store writer does it: each commit holds a
// batch of accepted webhooks (a delivery with a 3 KB body, a 223-byte call, over 1,000 rooms)
// and the outcomes of the deliveries claimed after the commit before (all delivered).
// usage: happyrelay-store-bench WEBHOOKS [BATCH] [DIRECTORY]
//   prints "webhooks N batch B µs-per-webhook T" (wall clock, the syncs included); under
//   `valgrind --tool=callgrind`, two runs' difference of instructions over their difference of
//   webhooks is the store's user-space instructions per webhook.
import FoundationEssentials
import Glibc
import RelayStore

let arguments = CommandLine.arguments
let webhooks = arguments.count > 1 ? Int(arguments[1]) ?? 20_000 : 20_000
let batch = arguments.count > 2 ? Int(arguments[2]) ?? 25 : 25
let directory = arguments.count > 3 ? arguments[3] : "/tmp/happyrelay-store-bench-\(getpid())"
try? FileManager.default.removeItem(atPath: directory)
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }

let store = try SQLiteDeliveryStore(directory: directory)
let body = Array(("{\"id\":820982911946154508,\"note\":\"" + String(repeating: "x", count: 3072 - 37) + "\"}").utf8)
let call = Array(
    #"{"uuid":"u-1","room_id":"ROOM","order_number":"1043","username":"홍길동","phone":"01012345678","parcel_number":"6543210987","email":"gildong@example.com","product_number":"632910392","parameter1":"paid","scenario_next":"Y"}"#
        .utf8)

/// A time-ordered id of the relay's shape (24 hex digits).
func id(_ number: Int) -> String {
    let hex = String(number, radix: 16)
    return "01a23c53" + String(repeating: "0", count: 16 - hex.count) + hex
}

func write(_ number: Int) -> WebhookWrite {
    let room = String(number % 1000)
    let delivery = NewDelivery(
        id: id(number), route: "/hooks/shopify/orders-async", room: RoomKey(credential: "", roomID: room), call: call,
        request: #"{"headers":{"content-type":"application/json","x-room":"\#(room)"},"query":{}}"#, body: body)
    return WebhookWrite(deliveries: [delivery])
}

var now = 1_764_720_000_000
var outcomes: [DeliveryOutcome] = []
var written = 0
let start = ContinuousClock.now
while written < webhooks {
    let count = min(batch, webhooks - written)
    let writes = (written..<written + count).map(write)
    let results = try store.commit(writes, outcomes: outcomes, now: now)
    guard results.allSatisfy({ if case .success(.stored) = $0 { true } else { false } }) else { fatalError("a write failed: \(results)") }
    written += count
    now += 2
    outcomes = try store.claimDue(limit: 64, now: now, busy: []).map {
        DeliveryOutcome(id: $0.id, room: $0.room, disposition: .delivered, attempts: 1, reason: "delivered")
    }
}
_ = try store.commit([], outcomes: outcomes, now: now)
let elapsed = ContinuousClock.now - start
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
guard try store.pendingCount() == 0 else { fatalError("deliveries left pending") }
print("webhooks \(webhooks) batch \(batch) µs-per-webhook \(seconds / Double(webhooks) * 1e6)")
