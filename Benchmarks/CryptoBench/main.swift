// Hash benchmark, one thread: HMAC-SHA256 of a 3 KB body as the relay computes it when it
// verifies a webhook (a key prepared when the mapping loads) and in one shot (the key prepared
// for the message), and SHA-256 of 64 bytes (a dedupe key's digest).
// usage: happyrelay-crypto-bench [ROUNDS]   (prints "NAME µs-per-call FOLD" lines)
import RelayCrypto

let rounds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100_000 : 100_000
let key = Array("bench-shopify-secret".utf8)
let body = (0..<3072).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

/// Microseconds per call of `mac`, over `rounds` calls; the MACs are folded into a byte that
/// is printed, so the optimizer cannot drop the work.
func time(_ name: String, _ mac: () -> [UInt8]) {
    var fold: UInt8 = 0
    let start = ContinuousClock.now
    for _ in 0..<rounds { fold ^= mac()[0] }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print("\(name) \(seconds / Double(rounds) * 1e6) \(fold)")
}

guard let prepared = HMACKey(SHA256.self, key: key) else { fatalError("libcrypto refuses the benchmark key") }
time("prepared-key") { prepared.authenticationCode(body) }
time("one-shot") { HMAC.authenticationCode(SHA256.self, key: key, message: body) }
let dedupeKey = Array(body.prefix(64))
time("sha256-64-bytes") { SHA256.hash(dedupeKey) }
