import Testing

@testable import RelayHTTP

/// A parsed request, flattened for comparison.
struct ParsedRequest: Equatable {
    var head: HTTPRequestHead
    var body: [UInt8]
}

/// Feeds `chunks` in order and collects complete requests, or the first error.
func parse(_ chunks: [[UInt8]], limits: HTTPRequestParser.Limits = .init()) -> Result<[ParsedRequest], HTTPParseError> {
    var parser = HTTPRequestParser(limits: limits)
    var requests: [ParsedRequest] = []
    var current: ParsedRequest?
    for chunk in chunks {
        do {
            for event in try parser.feed(chunk) {
                switch event {
                case .head(let head): current = ParsedRequest(head: head, body: [])
                case .body(let bytes): current?.body += bytes
                case .end:
                    if let done = current { requests.append(done) }
                    current = nil
                }
            }
            if let error = parser.error { return .failure(error) }
        } catch {
            return .failure(error)
        }
    }
    return .success(requests)
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Every way of splitting `text` in two, plus one byte at a time.
func splits(_ text: String) -> [[[UInt8]]] {
    let all = bytes(text)
    var result: [[[UInt8]]] = [[all], all.map { [$0] }]
    for offset in 1..<all.count { result.append([Array(all[..<offset]), Array(all[offset...])]) }
    return result
}

struct ValidCase: CustomTestStringConvertible, Sendable {
    let name: String
    let wire: String
    let expected: [(method: String, target: String, body: String)]
    var testDescription: String { name }
}

let validCases: [ValidCase] = [
    ValidCase(name: "simple GET", wire: "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", expected: [("GET", "/healthz", "")]),
    ValidCase(
        name: "content-length body", wire: "POST /hook?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        expected: [("POST", "/hook?x=1", "hello")]),
    ValidCase(
        name: "chunked with extensions and trailers",
        wire:
            "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n",
        expected: [("POST", "/c", "hello world")]),
    ValidCase(
        name: "chunked without trailers, upper-case hex",
        wire: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
        expected: [("POST", "/c", "0123456789")]),
    ValidCase(
        name: "three pipelined requests",
        wire:
            "GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: a\r\n\r\n",
        expected: [("GET", "/a", ""), ("POST", "/b", "xyz"), ("GET", "/c", "")]),
    ValidCase(name: "HTTP/1.0 without Host", wire: "GET / HTTP/1.0\r\n\r\n", expected: [("GET", "/", "")]),
    ValidCase(
        name: "leading empty line tolerated", wire: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", expected: [("GET", "/", "")]),
    ValidCase(
        name: "absolute-form target", wire: "GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        expected: [("GET", "/p?q=1", "")]),
    ValidCase(
        name: "identical repeated Content-Length",
        wire: "POST /d HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        expected: [("POST", "/d", "ok")]),
    ValidCase(
        name: "whitespace before a chunk extension",
        wire: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n",
        expected: [("POST", "/c", "hello")]),
    ValidCase(
        name: "eight empty lines before a request line",
        wire: String(repeating: "\r\n", count: 8) + "GET /e HTTP/1.1\r\nHost: a\r\n\r\n", expected: [("GET", "/e", "")]),
]

@Test(arguments: validCases)
func parsesValidRequestsSplitAtEveryOffset(_ testCase: ValidCase) throws {
    for chunks in splits(testCase.wire) {
        let requests = try parse(chunks).get()
        #expect(requests.map(\.head.method.rawValue) == testCase.expected.map(\.method))
        #expect(requests.map(\.head.target) == testCase.expected.map(\.target))
        #expect(requests.map { String(decoding: $0.body, as: UTF8.self) } == testCase.expected.map(\.body))
    }
}

struct InvalidCase: CustomTestStringConvertible, Sendable {
    let name: String
    let wire: String
    let status: Int
    var limits = HTTPRequestParser.Limits()
    var testDescription: String { name }
}

let invalidCases: [InvalidCase] = [
    InvalidCase(
        name: "Content-Length with Transfer-Encoding",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400),
    InvalidCase(
        name: "two different Content-Lengths",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", status: 400),
    InvalidCase(
        name: "Content-Length list that disagrees", wire: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n",
        status: 400),
    InvalidCase(name: "negative Content-Length", wire: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400),
    InvalidCase(name: "obs-fold", wire: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", status: 400),
    InvalidCase(name: "bare LF in headers", wire: "GET / HTTP/1.1\nHost: a\r\n\r\n", status: 400),
    InvalidCase(name: "bare LF ending the head", wire: "GET / HTTP/1.1\r\nHost: a\r\n\n", status: 400),
    InvalidCase(name: "control character in a value", wire: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{01}c\r\n\r\n", status: 400),
    InvalidCase(name: "stray CR in a value", wire: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", status: 400),
    InvalidCase(name: "NUL in the target", wire: "GET /a\u{00}b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    InvalidCase(name: "space before colon", wire: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400),
    InvalidCase(name: "invalid method", wire: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    InvalidCase(name: "invalid version", wire: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", status: 400),
    InvalidCase(name: "HTTP/2 version text", wire: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 400),
    InvalidCase(name: "missing target", wire: "GET  HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    InvalidCase(name: "missing Host in HTTP/1.1", wire: "GET / HTTP/1.1\r\n\r\n", status: 400),
    InvalidCase(name: "two Host fields", wire: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400),
    InvalidCase(name: "gzip transfer coding", wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501),
    InvalidCase(
        name: "gzip then chunked", wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501),
    InvalidCase(
        name: "chunked twice", wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400),
    InvalidCase(
        name: "Transfer-Encoding in HTTP/1.0", wire: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        status: 400),
    InvalidCase(
        name: "invalid chunk size", wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 400),
    InvalidCase(
        name: "chunk data without CRLF",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", status: 400),
    InvalidCase(
        name: "headers over the limit", wire: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "a", count: 300) + "\r\n\r\n",
        status: 431, limits: .init(maxHeaderBytes: 256, maxBodyBytes: 1000)),
    InvalidCase(
        name: "endless header line", wire: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 600),
        status: 431, limits: .init(maxHeaderBytes: 256, maxBodyBytes: 1000)),
    InvalidCase(
        name: "too many header fields",
        wire: "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-A: b\r\n", count: 5) + "\r\n",
        status: 431, limits: .init(maxHeaderBytes: 4096, maxBodyBytes: 1000, maxHeaderCount: 4)),
    InvalidCase(
        name: "declared body over the limit", wire: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n",
        status: 413, limits: .init(maxHeaderBytes: 4096, maxBodyBytes: 1000)),
    InvalidCase(
        name: "huge Content-Length", wire: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        status: 413),
    InvalidCase(
        name: "chunked body over the limit",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", status: 413,
        limits: .init(maxHeaderBytes: 4096, maxBodyBytes: 1000)),
    // The limit holds over the whole body, not per chunk or per read.
    InvalidCase(
        name: "many small chunks over the limit",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "a\r\n0123456789\r\n", count: 11) + "0\r\n\r\n",
        status: 413, limits: .init(maxHeaderBytes: 4096, maxBodyBytes: 100)),
    InvalidCase(
        name: "whitespace after a chunk size",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4 \r\nabcd\r\n0\r\n\r\n", status: 400),
    InvalidCase(
        name: "a chunk extension over the line limit",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;x=" + String(repeating: "y", count: 2000) + "\r\nabcd\r\n0\r\n\r\n",
        status: 400),
    InvalidCase(
        name: "a trailer section over the header limit",
        wire: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + String(repeating: "y", count: 600) + "\r\n\r\n",
        status: 431, limits: .init(maxHeaderBytes: 256, maxBodyBytes: 1000)),
    InvalidCase(
        name: "endless empty lines before a request", wire: String(repeating: "\r\n", count: 9) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
]

/// Empty lines are the start of a request: they do not leave the connection idle, so its
/// header deadline keeps running.
@Test func emptyLinesBeforeARequestAreNotIdle() throws {
    var parser = HTTPRequestParser()
    _ = try parser.feed(bytes("\r\n"))
    #expect(!parser.isIdle)
    #expect(parser.isReadingHead)
    _ = try parser.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    #expect(parser.isIdle)
}

@Test(arguments: invalidCases)
func rejectsMalformedRequestsSplitAtEveryOffset(_ testCase: InvalidCase) {
    for chunks in splits(testCase.wire) {
        switch parse(chunks, limits: testCase.limits) {
        case .success(let requests):
            Issue.record("accepted \(requests.count) request(s), chunks \(chunks.map(\.count))")
            return
        case .failure(let error):
            #expect(error.status.code == testCase.status, "\(error) with chunks \(chunks.map(\.count))")
        }
    }
}

@Test func declaredBodyOverLimitIsRejectedBeforeAnyBodyByte() {
    var parser = HTTPRequestParser(limits: .init(maxHeaderBytes: 4096, maxBodyBytes: 10))
    #expect(throws: HTTPParseError.payloadTooLarge) {
        _ = try parser.feed(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"))
    }
}

@Test func headerNamesAreLowerCasedAndValuesTrimmed() throws {
    let request = try #require(
        try parse([bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Shopify-Topic: \t orders/create \t\r\n\r\n")]).get().first)
    #expect(request.head.headers["x-shopify-topic"] == "orders/create")
    #expect(request.head.headers.fields.map(\.name) == ["host", "x-shopify-topic"])
}

@Test func connectionSemanticsFollowTheVersion() throws {
    let requests = try parse([
        bytes(
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
        )
    ]).get()
    #expect(requests.map(\.head.keepAlive) == [true, false, false, true])
}

@Test func expectContinueIsReported() throws {
    var parser = HTTPRequestParser()
    let events = try parser.feed(bytes("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"))
    guard case .head(let head) = events.first else {
        Issue.record("no head")
        return
    }
    #expect(head.expectsContinue)
    #expect(parser.isIdle == false)
}

@Test func parserStaysFailedAfterAnError() {
    var parser = HTTPRequestParser()
    #expect(throws: HTTPParseError.self) { _ = try parser.feed(bytes("GET / HTTP/1.1\nHost: a\r\n\r\n")) }
    #expect(throws: HTTPParseError.self) { _ = try parser.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) }
}

@Test func idleAndReadingHeadStates() throws {
    var parser = HTTPRequestParser()
    #expect(parser.isIdle)
    _ = try parser.feed(bytes("GET / HT"))
    #expect(parser.isReadingHead)
    _ = try parser.feed(bytes("TP/1.1\r\nHost: a\r\n\r\n"))
    #expect(parser.isIdle)
}

@Test func completeRequestsBeforeAMalformedOneAreStillReturned() throws {
    var parser = HTTPRequestParser()
    let events = try parser.feed(bytes("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\nHost: a\r\n\r\n"))
    #expect(events.count == 2)
    #expect(parser.error == .malformed("bare LF where CRLF is required"))
    #expect(throws: HTTPParseError.self) { _ = try parser.feed(bytes("x")) }
}

/// The path is the target up to the first `?`, the query what follows it, whatever the
/// characters around them (found by byte, not by Character).
@Test func pathAndQuerySplitAtTheFirstQuestionMark() {
    let cases: [(target: String, path: String, query: String)] = [
        ("/hooks/orders", "/hooks/orders", ""), ("/hooks?a=1&b=2", "/hooks", "a=1&b=2"), ("/a?b?c", "/a", "b?c"),
        ("/주문?상점=한\u{301}", "/주문", "상점=한\u{301}"), ("/e\u{301}?", "/e\u{301}", ""), ("?x", "", "x"),
    ]
    for (target, path, query) in cases {
        let head = HTTPRequestHead(method: .post, target: target)
        #expect(head.path == path[...] && head.query == query[...], "\(target)")
    }
}

/// List fields (RFC 9110 §5.6.1) are split at commas and trimmed of SP and HTAB by byte;
/// Content-Length lists must agree and hold no empty element; tokens compare without case.
@Test func listFieldsSplitTrimAndFoldCase() throws {
    func elements(_ value: String) -> [String] {
        var found: [String] = []
        forEachListElement(of: value) { found.append(String(decoding: $0, as: UTF8.self)) }
        return found
    }
    #expect(elements("a") == ["a"])
    #expect(elements(" a ,\tb\t, ,c,") == ["a", "b", "", "c", ""])
    #expect(elements("") == [""])
    #expect(elements("한, é ") == ["한", "é"])
    var headers = HTTPHeaders()
    headers.add(lowercasedName: "connection", value: "Upgrade, \tKeep-Alive ,,CLOSE")
    headers.add(lowercasedName: "transfer-encoding", value: "Chunked")
    let fields = FramingFields(headers)
    #expect(fields.connectionOptions == ["upgrade", "keep-alive", "close"])
    #expect(fields.transferCodings == ["chunked"])
    for (value, framing) in [("2, 2", BodyFraming.length(2)), ("\t7 ", .length(7)), ("007", .length(7)), ("0", .length(0))] {
        var lengths = HTTPHeaders()
        lengths.add(lowercasedName: "content-length", value: value)
        #expect(try bodyFraming(FramingFields(lengths), version: .http1_1, isRequest: true) == framing, "\(value)")
    }
    for value in ["3,", ",3", "3 4", "0x10", "+3", "", "1, 2"] {
        var lengths = HTTPHeaders()
        lengths.add(lowercasedName: "content-length", value: value)
        #expect(throws: HTTPParseError.self, "\(value)") { try bodyFraming(FramingFields(lengths), version: .http1_1, isRequest: true) }
    }
}
