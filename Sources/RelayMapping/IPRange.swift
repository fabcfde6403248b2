#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 CIDR block (`203.0.113.0/24`, `2001:db8::/32`, or one address).
package struct IPRange: Sendable, Equatable, CustomStringConvertible {
    /// The network address, 4 or 16 bytes.
    package let network: [UInt8]
    package let prefixLength: Int
    package let description: String

    /// Parses CIDR text; nil when malformed.
    package init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = Self.bytes(of: String(parts[0])) else { return nil }
        let maxLength = address.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maxLength).contains(length), parts[1].allSatisfy(\.isNumber) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maxLength
        }
        network = Self.masked(address, prefixLength)
        description = text
    }

    /// Whether an address (as text) lies in the block. IPv4-mapped IPv6 addresses match IPv4 blocks.
    package func contains(_ addressText: String) -> Bool {
        guard var address = Self.bytes(of: addressText) else { return false }
        if address.count == 16 && network.count == 4 && address[0..<12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] {
            address = Array(address[12...])
        }
        guard address.count == network.count else { return false }
        return Self.masked(address, prefixLength) == network
    }

    static func masked(_ address: [UInt8], _ length: Int) -> [UInt8] {
        address.enumerated().map { index, byte in
            let bits = max(0, min(8, length - index * 8))
            return bits == 8 ? byte : byte & ~UInt8(truncatingIfNeeded: 0xFF >> bits)
        }
    }

    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
