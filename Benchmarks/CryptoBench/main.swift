// HMAC-SHA256 benchmark: the MAC of a 3 KB body as the relay computes it when it verifies a
// webhook (a key prepared when the mapping loads), and libcrypto's one-shot form (the key
// prepared for every message), on one thread.
// usage: happyrelay-crypto-bench [ROUNDS]   (prints "prepared-key µs" and "one-shot µs", per MAC)
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

let prepared = HMACKey(SHA256.self, key: key)
time("prepared-key") { prepared.authenticationCode(body) }
time("one-shot") { HMAC.authenticationCode(SHA256.self, key: key, message: body) }
