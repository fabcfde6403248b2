/// A hash function usable by HMAC (RFC 2104).
package protocol HashFunction {
    /// Bytes per input block (64 for SHA-1 and SHA-256, 128 for SHA-512).
    static var blockSize: Int { get }
    init()
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// The digest; the hasher is spent afterwards.
    mutating func finalize() -> [UInt8]
}

extension HashFunction {
    package mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest of `bytes` in one call.
    package static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = Self()
        hasher.update(bytes)
        return hasher.finalize()
    }
}

/// Shared block buffering for the Merkle–Damgård hashes (FIPS 180-4 §5.1).
struct BlockBuffer {
    var pending: [UInt8] = []
    var totalBytes: UInt64 = 0

    /// Feeds bytes, calling `compress` with each complete block.
    mutating func append(_ bytes: UnsafeRawBufferPointer, blockSize: Int, compress: (UnsafeRawBufferPointer) -> Void) {
        totalBytes &+= UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(blockSize - pending.count, bytes.count)
            pending.append(contentsOf: bytes[0..<take])
            offset = take
            if pending.count == blockSize {
                pending.withUnsafeBytes { compress($0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        while bytes.count - offset >= blockSize {
            compress(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + blockSize)]))
            offset += blockSize
        }
        if offset < bytes.count { pending.append(contentsOf: bytes[offset...]) }
    }

    /// Appends the padding: 0x80, zeros, and the bit length in `lengthBytes` big-endian bytes.
    mutating func pad(blockSize: Int, lengthBytes: Int, compress: (UnsafeRawBufferPointer) -> Void) {
        let bitLength = totalBytes &* 8
        var tail = pending
        tail.append(0x80)
        while (tail.count + lengthBytes) % blockSize != 0 { tail.append(0) }
        for shift in stride(from: (lengthBytes - 1) * 8, through: 0, by: -8) {
            tail.append(shift >= 64 ? 0 : UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        tail.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                compress(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + blockSize)]))
                offset += blockSize
            }
        }
        pending = []
    }
}

// Masking shifts (&>>, &<<): the counts are constants in range, and the checked shifts'
// over-shift handling kept these from inlining into a single rotate instruction.
@inline(__always) func rotateRight(_ value: UInt32, _ count: UInt32) -> UInt32 { (value &>> count) | (value &<< (32 &- count)) }
@inline(__always) func rotateRight(_ value: UInt64, _ count: UInt64) -> UInt64 { (value &>> count) | (value &<< (64 &- count)) }
@inline(__always) func rotateLeft(_ value: UInt32, _ count: UInt32) -> UInt32 { (value &<< count) | (value &>> (32 &- count)) }

@inline(__always) func loadBigEndian32(_ block: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(block[offset]) << 24 | UInt32(block[offset + 1]) << 16 | UInt32(block[offset + 2]) << 8 | UInt32(block[offset + 3])
}

@inline(__always) func loadBigEndian64(_ block: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(loadBigEndian32(block, offset)) << 32 | UInt64(loadBigEndian32(block, offset + 4))
}

func bigEndianBytes(_ words: [UInt32]) -> [UInt8] {
    words.flatMap { [UInt8($0 >> 24), UInt8(truncatingIfNeeded: $0 >> 16), UInt8(truncatingIfNeeded: $0 >> 8), UInt8(truncatingIfNeeded: $0)] }
}

func bigEndianBytes(_ words: [UInt64]) -> [UInt8] {
    words.flatMap { word in (0..<8).reversed().map { UInt8(truncatingIfNeeded: word >> (UInt64($0) * 8)) } }
}
