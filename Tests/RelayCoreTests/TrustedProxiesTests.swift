import Testing

@testable import RelayCore
@testable import RelayHTTP

@Suite struct TrustedProxiesTests {
    func headers(_ fields: [(String, String)]) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for (name, value) in fields { headers.add(name: name, value: value) }
        return headers
    }

    @Test func anUntrustedPeerIsTheClientWhateverItClaims() throws {
        let proxies = try TrustedProxies(parsing: "10.0.0.0/8")
        #expect(proxies.clientAddress(peer: "198.51.100.1", headers: headers([("X-Forwarded-For", "203.0.113.9")])) == "198.51.100.1")
    }

    @Test func theNearestUntrustedHopIsTheClient() throws {
        let proxies = try TrustedProxies(parsing: "10.0.0.0/8, ::1")
        let chain = headers([("X-Forwarded-For", "203.0.113.9, 198.51.100.7"), ("X-Forwarded-For", "10.0.0.2")])
        #expect(proxies.clientAddress(peer: "10.0.0.1", headers: chain) == "198.51.100.7")
        // Only proxies: the farthest one.
        #expect(proxies.clientAddress(peer: "::1", headers: headers([("X-Forwarded-For", "10.1.1.1")])) == "10.1.1.1")
        // No header: the proxy itself.
        #expect(proxies.clientAddress(peer: "10.0.0.1", headers: headers([])) == "10.0.0.1")
        // A hop that is not an address ends the walk at the last trusted one.
        #expect(proxies.clientAddress(peer: "10.0.0.1", headers: headers([("X-Forwarded-For", "203.0.113.9, unknown, 10.0.0.3")])) == "10.0.0.3")
        #expect(proxies.clientAddress(peer: "10.0.0.1", headers: headers([("X-Forwarded-For", "10.0.0.0/8")])) == "10.0.0.1")
    }

    @Test func rfc7239ForwardedIsReadWhenThereIsNoXForwardedFor() throws {
        let proxies = try TrustedProxies(parsing: "127.0.0.1")
        let forwarded = headers([("Forwarded", #"for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https"#)])
        #expect(proxies.clientAddress(peer: "127.0.0.1", headers: forwarded) == "2001:db8:cafe::17")
        #expect(proxies.clientAddress(peer: "127.0.0.1", headers: headers([("Forwarded", "for=192.0.2.60:8080;by=203.0.113.43")])) == "192.0.2.60")
    }

    @Test func malformedListsAreRefused() {
        #expect(throws: SettingsError("--trusted-proxies: \"10.0.0.0/33\" is not an IP address or CIDR block (10.0.0.0/8, ::1)")) {
            try TrustedProxies(parsing: "10.0.0.0/8,10.0.0.0/33")
        }
        #expect(throws: SettingsError("--trusted-proxies: give at least one CIDR block")) { try TrustedProxies(parsing: " , ") }
    }
}
