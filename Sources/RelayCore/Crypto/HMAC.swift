/// HMAC (RFC 2104) over any of our hash functions.
package enum HMAC {
    /// HMAC(key, message) with hash `H`.
    package static func authenticationCode<H: HashFunction>(_ hash: H.Type, key: [UInt8], message: UnsafeRawBufferPointer) -> [UInt8] {
        var block = key.count > H.blockSize ? H.hash(key) : key
        block += [UInt8](repeating: 0, count: H.blockSize - block.count)
        var inner = H()
        inner.update(block.map { $0 ^ 0x36 })
        inner.update(message)
        let innerDigest = inner.finalize()
        var outer = H()
        outer.update(block.map { $0 ^ 0x5c })
        outer.update(innerDigest)
        return outer.finalize()
    }

    /// HMAC over a byte array.
    package static func authenticationCode<H: HashFunction>(_ hash: H.Type, key: [UInt8], message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { authenticationCode(hash, key: key, message: $0) }
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
