/// SHA-1 (FIPS 180-4 §6.1). Only for verifying senders that still sign with it (generic
/// `hmac` with `"algorithm": "sha1"`); HMAC-SHA1 remains sound where SHA-1 collisions are not.
package struct SHA1: HashFunction {
    package static let blockSize = 64

    private var state: [UInt32] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    private var buffer = BlockBuffer()

    package init() {}

    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var state = self.state
        buffer.append(bytes, blockSize: Self.blockSize) { Self.compress(&state, $0) }
        self.state = state
    }

    package mutating func finalize() -> [UInt8] {
        var state = self.state
        buffer.pad(blockSize: Self.blockSize, lengthBytes: 8) { Self.compress(&state, $0) }
        return bigEndianBytes(state)
    }

    private static func compress(_ state: inout [UInt32], _ block: UnsafeRawBufferPointer) {
        // The message schedule lives on the stack: no allocation per block.
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for t in 0..<16 { w[t] = loadBigEndian32(block, t * 4) }
            for t in 16..<80 { w[t] = rotateLeft(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1) }
            var (a, b, c, d, e) = (state[0], state[1], state[2], state[3], state[4])
            for t in 0..<80 {
                let (f, k): (UInt32, UInt32) =
                    switch t {
                    case 0..<20: ((b & c) | (~b & d), 0x5A827999)
                    case 20..<40: (b ^ c ^ d, 0x6ED9EBA1)
                    case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1BBCDC)
                    default: (b ^ c ^ d, 0xCA62C1D6)
                    }
                let temp = rotateLeft(a, 5) &+ f &+ e &+ k &+ w[t]
                (e, d, c, b, a) = (d, c, rotateLeft(b, 30), a, temp)
            }
            state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d; state[4] &+= e
        }
    }
}
