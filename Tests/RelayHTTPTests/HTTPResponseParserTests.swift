import Testing

@testable import RelayHTTP

/// Feeds `wire` split at `offset` (and byte by byte), finishing at EOF when `closeAtEnd`.
func parseResponse(_ chunks: [[UInt8]], isHead: Bool = false, closeAtEnd: Bool = false) throws
    -> HTTPResponseParser.Response?
{
    var parser = HTTPResponseParser(isHeadRequest: isHead)
    for chunk in chunks {
        let result = try chunk.withUnsafeBytes { try parser.feed($0) }
        if let result { return result }
    }
    return closeAtEnd ? try parser.finish() : nil
}

struct ResponseCase: CustomTestStringConvertible, Sendable {
    let name: String
    let wire: String
    var isHead = false
    var closeAtEnd = false
    let status: Int
    let body: String
    let keepAlive: Bool
    var testDescription: String { name }
}

let responseCases: [ResponseCase] = [
    ResponseCase(
        name: "content-length", wire: "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"result\":\"success\"}",
        status: 200, body: "{\"result\":\"success\"}", keepAlive: true),
    ResponseCase(
        name: "chunked", wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
        status: 200, body: "abcde", keepAlive: true),
    ResponseCase(
        name: "close-delimited", wire: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", closeAtEnd: true,
        status: 200, body: "until the end", keepAlive: false),
    ResponseCase(
        name: "interim response skipped", wire: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        status: 201, body: "ok", keepAlive: true),
    ResponseCase(
        name: "HEAD ignores the length", wire: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", isHead: true, status: 200,
        body: "", keepAlive: true),
    ResponseCase(name: "204", wire: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, body: "", keepAlive: true),
    ResponseCase(
        name: "connection close", wire: "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        status: 502, body: "x", keepAlive: false),
    ResponseCase(
        name: "HTTP/1.0 keep-alive", wire: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\ny",
        status: 200, body: "y", keepAlive: true),
]

@Test(arguments: responseCases)
func parsesResponsesSplitAtEveryOffset(_ testCase: ResponseCase) throws {
    for chunks in splits(testCase.wire) {
        let response = try #require(try parseResponse(chunks, isHead: testCase.isHead, closeAtEnd: testCase.closeAtEnd))
        #expect(response.status == testCase.status)
        #expect(String(decoding: response.body, as: UTF8.self) == testCase.body)
        #expect(response.keepAlive == testCase.keepAlive)
    }
}

@Test func truncatedResponseFailsAtEOF() {
    #expect(throws: HTTPParseError.self) {
        _ = try parseResponse([bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")], closeAtEnd: true)
    }
}

@Test func emptyStatusLineIsRejected() {
    // Found by the fuzzer: a response that starts with a blank line.
    #expect(throws: HTTPParseError.self) { _ = try parseResponse([bytes("\r\nHTTP/1.1 200 OK\r\n\r\n")]) }
}

@Test func garbageStatusLineIsRejected() {
    #expect(throws: HTTPParseError.self) { _ = try parseResponse([bytes("SSH-2.0-OpenSSH\r\n\r\n")]) }
}

/// The status line is read by byte: "HTTP/1.x", a space, three digits, then a space (and any
/// reason) or the end of the line.
@Test func statusLinesAreReadExactly() throws {
    for (line, status) in [("HTTP/1.1 200 OK", 200), ("HTTP/1.1 204", 204), ("HTTP/1.0 503 Service Unavailable", 503), ("HTTP/1.1 299 ", 299)] {
        let response = try #require(try parseResponse([bytes(line + "\r\nContent-Length: 0\r\n\r\n")]), "\(line)")
        #expect(response.status == status, "\(line)")
    }
    for line in ["HTTP/1.1 20 OK", "HTTP/1.1 +12 OK", "HTTP/1.1 -12", "HTTP/1.1 2000 OK", "HTTP/1.1 200x", "HTTP/1.1  200 OK", "HTTP/1.1", "HTTP/1.1 "] {
        #expect(throws: HTTPParseError.malformed("invalid status line"), "\(line)") {
            _ = try parseResponse([bytes(line + "\r\nContent-Length: 0\r\n\r\n")])
        }
    }
    for line in ["HTTP/2 200 OK", "HTTP/1.2 200 OK", "HTTP/1.10 200 OK", "http/1.1 200 OK"] {
        #expect(throws: HTTPParseError.malformed("unsupported HTTP version in response"), "\(line)") {
            _ = try parseResponse([bytes(line + "\r\nContent-Length: 0\r\n\r\n")])
        }
    }
}

@Test func endpointParsing() throws {
    let (secure, base) = try #require(HTTPEndpoint.parse(url: "https://customer.happytalk.io"))
    #expect(secure == HTTPEndpoint(isTLS: true, host: "customer.happytalk.io", port: 443))
    #expect(base == "")
    let (local, path) = try #require(HTTPEndpoint.parse(url: "http://127.0.0.1:8081/base/"))
    #expect(local == HTTPEndpoint(isTLS: false, host: "127.0.0.1", port: 8081))
    #expect(path == "/base")
    let (v6, _) = try #require(HTTPEndpoint.parse(url: "http://[::1]:9000"))
    #expect(v6.host == "::1")
    #expect(HTTPEndpoint.parse(url: "ftp://x") == nil)
    #expect(HTTPEndpoint.parse(url: "http://user@host") == nil)
    #expect(HTTPEndpoint.parse(url: "http://") == nil)
}

/// The request's Host header: the port only when it is not the scheme's, an IPv6 address in
/// brackets (RFC 9112 §3.2, RFC 3986 §3.2.2).
@Test func requestsNameTheirHost() {
    func hostLine(_ endpoint: HTTPEndpoint) -> String {
        var wire: [UInt8] = []
        HTTPClient.serialize(HTTPClientRequest(method: .get, endpoint: endpoint, target: "/"), into: &wire)
        return String(decoding: wire, as: UTF8.self).split(separator: "\r\n")[1].description
    }
    #expect(hostLine(HTTPEndpoint(isTLS: true, host: "customer.happytalk.io", port: 443)) == "host: customer.happytalk.io")
    #expect(hostLine(HTTPEndpoint(isTLS: false, host: "customer.happytalk.io", port: 80)) == "host: customer.happytalk.io")
    #expect(hostLine(HTTPEndpoint(isTLS: true, host: "customer.happytalk.io", port: 80)) == "host: customer.happytalk.io:80")
    #expect(hostLine(HTTPEndpoint(isTLS: false, host: "127.0.0.1", port: 8081)) == "host: 127.0.0.1:8081")
    #expect(hostLine(HTTPEndpoint(isTLS: false, host: "::1", port: 9000)) == "host: [::1]:9000")
    #expect(hostLine(HTTPEndpoint(isTLS: true, host: "::1", port: 443)) == "host: [::1]")
}

@Test func hostAndPortParsing() {
    #expect(HostAndPort(parsing: "127.0.0.1:8080") == HostAndPort(host: "127.0.0.1", port: 8080))
    #expect(HostAndPort(parsing: "[::1]:0") == HostAndPort(host: "::1", port: 0))
    #expect(HostAndPort(parsing: "localhost:65536") == nil)
    #expect(HostAndPort(parsing: "localhost") == nil)
    #expect(HostAndPort(parsing: ":80") == nil)
    #expect(HostAndPort(parsing: "::1:80") == nil)
}
