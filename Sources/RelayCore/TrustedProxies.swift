import FoundationEssentials
import RelayHTTP
import RelayMapping

/// The proxies whose `X-Forwarded-For` or `Forwarded` (RFC 7239) header names the client.
/// A request from any other peer is taken as coming from that peer, whatever it claims.
package struct TrustedProxies: Sendable {
    package let ranges: [IPRange]

    /// Parses `CIDR,CIDR,…` (an address alone is a /32 or /128).
    package init(parsing text: String) throws(SettingsError) {
        var ranges: [IPRange] = []
        for item in text.split(separator: ",") {
            let trimmed = item.trimmingWhitespace()
            if trimmed.isEmpty { continue }
            guard let range = IPRange(trimmed) else {
                throw SettingsError("--trusted-proxies: \"\(trimmed)\" is not an IP address or CIDR block (10.0.0.0/8, ::1)")
            }
            ranges.append(range)
        }
        guard !ranges.isEmpty else { throw SettingsError("--trusted-proxies: give at least one CIDR block") }
        self.ranges = ranges
    }

    func isTrusted(_ address: String) -> Bool { ranges.contains { $0.contains(address) } }

    /// The client's address: the peer's unless the peer is trusted; then, walking the
    /// forwarded chain from the nearest hop back, the first address that is not a trusted
    /// proxy. A hop that is not an address stops the walk at the last trusted one.
    package func clientAddress(peer: String, headers: HTTPHeaders) -> String {
        guard isTrusted(peer) else { return peer }
        var chain = headers.fields.filter { $0.name == "x-forwarded-for" }.flatMap { $0.value.split(separator: ",") }.map {
            $0.trimmingWhitespace()
        }
        if chain.isEmpty {
            chain = headers.fields.filter { $0.name == "forwarded" }.flatMap { $0.value.split(separator: ",") }.compactMap(Self.forwardedFor)
        }
        var client = peer
        for hop in chain.reversed() {
            guard IPRange(hop) != nil, !hop.contains("/") else { return client }
            client = hop
            if !isTrusted(hop) { return hop }
        }
        return client
    }

    /// The address of an RFC 7239 element's `for=` parameter (`for=192.0.2.60`,
    /// `for="[2001:db8::1]:4711"`), without quotes, brackets or port.
    static func forwardedFor(_ element: Substring) -> String? {
        for parameter in element.split(separator: ";") {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingWhitespace().lowercased() == "for" else { continue }
            var value = pair[1].trimmingWhitespace()
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            if value.hasPrefix("["), let close = value.firstIndex(of: "]") { return String(value[value.index(after: value.startIndex)..<close]) }
            if value.filter({ $0 == ":" }).count == 1, let colon = value.firstIndex(of: ":") { return String(value[..<colon]) }
            return value
        }
        return nil
    }
}
