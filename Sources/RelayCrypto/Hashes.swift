import CTLS

/// A hash function of libcrypto's, named by a type so that call sites read
/// `HMAC.authenticationCode(SHA256.self, …)` and `SHA256.hash(…)`.
package protocol HashFunction {
    /// The algorithm's number in the C shim: its digest size in bits (1 for SHA-1).
    static var algorithm: Int32 { get }
}

extension HashFunction {
    /// The digest of `bytes`.
    package static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { message in
            [UInt8](unsafeUninitializedCapacity: 64) { digest, count in
                count = Int(ctls_digest(algorithm, message.baseAddress, message.count, digest.baseAddress))
            }
        }
    }
}

/// SHA-1 (FIPS 180-4), for the webhook senders that still sign with it.
package enum SHA1: HashFunction { package static let algorithm: Int32 = 1 }
/// SHA-256 (FIPS 180-4).
package enum SHA256: HashFunction { package static let algorithm: Int32 = 256 }
/// SHA-512 (FIPS 180-4).
package enum SHA512: HashFunction { package static let algorithm: Int32 = 512 }

/// An HMAC (RFC 2104) key prepared once, for the MACs of many messages: each MAC then hashes
/// only its message (3 KB: 2.7 µs, against 4.6 µs for libcrypto's one-shot `HMAC()`, which
/// prepares the key every time). Safe to use from several threads at once.
package final class HMACKey: Sendable {
    // Read-only after init; libcrypto copies from it per message.
    private nonisolated(unsafe) let prepared: OpaquePointer

    /// Prepares `key` for HMAC with hash `H`; nil when libcrypto refuses it (a FIPS-mode
    /// libcrypto refuses short keys).
    package init?<H: HashFunction>(_ hash: H.Type, key: [UInt8]) {
        guard let prepared = key.withUnsafeBytes({ ctls_hmac_key_new(H.algorithm, $0.baseAddress, $0.count) }) else { return nil }
        self.prepared = prepared
    }

    deinit { ctls_hmac_key_free(prepared) }

    /// HMAC(key, message); empty if libcrypto failed, which matches no signature.
    package func authenticationCode(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { message in
            [UInt8](unsafeUninitializedCapacity: 64) { buffer, count in
                count = Int(ctls_hmac_keyed(prepared, message.baseAddress, message.count, buffer.baseAddress))
            }
        }
    }
}

/// One-shot HMAC, for a key used once (a key used for many messages: `HMACKey`).
package enum HMAC {
    /// HMAC(key, message) with hash `H`; empty when libcrypto refuses the key.
    package static func authenticationCode<H: HashFunction>(_ hash: H.Type, key: [UInt8], message: [UInt8]) -> [UInt8] {
        HMACKey(hash, key: key)?.authenticationCode(message) ?? []
    }
}

/// Whether a secret given by a sender equals the expected one, in time that depends on
/// neither where they differ nor their lengths: both are hashed to 32 bytes first, and the
/// digests are compared in constant time.
package func secretEquals(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
    constantTimeEquals(SHA256.hash(given), SHA256.hash(expected))
}

/// Comparison whose time does not depend on where the inputs differ, so that a forger
/// learns nothing from timing (it still reveals whether the lengths match: compare values of
/// a fixed size, such as MACs or digests).
package func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<lhs.count { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
