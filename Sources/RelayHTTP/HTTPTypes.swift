import CSystem
import Synchronization

/// An HTTP request method token (RFC 9110 §9); an open set, so a struct with static members.
package struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    /// The method token as sent, e.g. `GET`.
    package let rawValue: String

    package init(_ rawValue: String) { self.rawValue = rawValue }

    package static let get = HTTPMethod("GET")
    package static let head = HTTPMethod("HEAD")
    package static let post = HTTPMethod("POST")
    package static let put = HTTPMethod("PUT")
    package static let delete = HTTPMethod("DELETE")
    package static let options = HTTPMethod("OPTIONS")

    package var description: String { rawValue }
}

/// The protocol version of a message; only HTTP/1.0 and HTTP/1.1 are spoken.
package enum HTTPVersion: Sendable, Equatable {
    case http1_0
    case http1_1

    var text: String { self == .http1_0 ? "HTTP/1.0" : "HTTP/1.1" }
}

/// A response status code with its reason phrase.
package struct HTTPStatus: Hashable, Sendable, CustomStringConvertible {
    /// The three-digit code.
    package let code: Int
    /// The reason phrase written on the status line.
    package let reason: String

    package init(code: Int, reason: String) {
        self.code = code
        self.reason = reason
    }

    package var description: String { "\(code) \(reason)" }

    package static let `continue` = HTTPStatus(code: 100, reason: "Continue")
    package static let ok = HTTPStatus(code: 200, reason: "OK")
    package static let accepted = HTTPStatus(code: 202, reason: "Accepted")
    package static let noContent = HTTPStatus(code: 204, reason: "No Content")
    package static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    package static let unauthorized = HTTPStatus(code: 401, reason: "Unauthorized")
    package static let forbidden = HTTPStatus(code: 403, reason: "Forbidden")
    package static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    package static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    package static let requestTimeout = HTTPStatus(code: 408, reason: "Request Timeout")
    package static let conflict = HTTPStatus(code: 409, reason: "Conflict")
    package static let payloadTooLarge = HTTPStatus(code: 413, reason: "Content Too Large")
    package static let unsupportedMediaType = HTTPStatus(code: 415, reason: "Unsupported Media Type")
    package static let unprocessableContent = HTTPStatus(code: 422, reason: "Unprocessable Content")
    package static let tooManyRequests = HTTPStatus(code: 429, reason: "Too Many Requests")
    package static let headersTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    package static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    package static let notImplemented = HTTPStatus(code: 501, reason: "Not Implemented")
    package static let badGateway = HTTPStatus(code: 502, reason: "Bad Gateway")
    package static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    package static let gatewayTimeout = HTTPStatus(code: 504, reason: "Gateway Timeout")

    /// The status for a code, with the standard reason phrase where one is known.
    package static func code(_ code: Int) -> HTTPStatus {
        let known: [HTTPStatus] = [
            .continue, .ok, .accepted, .noContent, .badRequest, .unauthorized, .forbidden, .notFound,
            .methodNotAllowed, .requestTimeout, .conflict, .payloadTooLarge, .unsupportedMediaType, .unprocessableContent,
            .tooManyRequests, .headersTooLarge, .internalServerError, .notImplemented, .badGateway, .serviceUnavailable,
            .gatewayTimeout,
        ]
        return known.first { $0.code == code } ?? HTTPStatus(code: code, reason: "Status \(code)")
    }
}

/// Header fields in arrival order. Names are stored lower-cased (they are case-insensitive,
/// RFC 9110 §5.1), so lookups compare bytes.
package struct HTTPHeaders: Sendable, Equatable, Sequence {
    package private(set) var fields: [(name: String, value: String)] = []

    package init() {}

    /// Room for `capacity` fields without growing (a parsed head reserves what it counted).
    init(capacity: Int) { fields.reserveCapacity(capacity) }

    /// Room for `capacity` fields in all.
    mutating func reserveCapacity(_ capacity: Int) { fields.reserveCapacity(capacity) }

    package static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Appends a field; the name is lower-cased.
    package mutating func add(name: String, value: String) {
        fields.append((name.lowercased(), value))
    }

    /// Appends a field whose name is already lower-case.
    mutating func add(lowercasedName name: String, value: String) {
        fields.append((name, value))
    }

    /// Replaces every field of that name by one.
    package mutating func replaceOrAdd(name: String, value: String) {
        let lowered = name.lowercased()
        fields.removeAll { $0.name == lowered }
        fields.append((lowered, value))
    }

    /// The first value of a field, or nil.
    package subscript(name: String) -> String? {
        let lowered = Self.lowercased(name)
        return fields.first { $0.name == lowered }?.value
    }


    /// Lower-cases only when needed: lookups by a literal lower-case name allocate nothing.
    private static func lowercased(_ name: String) -> String {
        name.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) ? name.lowercased() : name
    }

    package func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }

    package var count: Int { fields.count }
}

/// A request line and its header fields, as parsed.
package struct HTTPRequestHead: Sendable, Equatable {
    package var method: HTTPMethod
    /// The request target as sent (origin form: path and optional query).
    package var target: String
    package var version: HTTPVersion
    package var headers: HTTPHeaders
    /// Whether the client wants the connection kept open after this exchange.
    package var keepAlive: Bool
    /// Whether the client sent `Expect: 100-continue`.
    package var expectsContinue: Bool

    package init(
        method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders(),
        keepAlive: Bool = true, expectsContinue: Bool = false
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
    }

    /// The target's path, without the query.
    package var path: Substring {
        // By byte: a search by Character would run the grapheme breaker over the target.
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[..<mark] }
        return target[...]
    }

    /// The target's query (after `?`), or an empty string.
    package var query: Substring {
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[target.utf8.index(after: mark)...] }
        return ""
    }
}

/// A complete request: head, body bytes, and the peer's address.
package struct HTTPRequest: Sendable {
    package var head: HTTPRequestHead
    package var body: [UInt8]
    /// The client's IP address as text (`127.0.0.1`, `::1`), empty when unknown: the peer's,
    /// or the one a trusted proxy forwarded.
    package var remoteAddress: String
    /// The request's id, returned as `X-Request-Id` and written in its log lines: the client's
    /// `X-Request-Id` when it is a safe token, otherwise one the server made.
    package let id: String
    /// Whether the server made `id` (`RequestID.make`), so that it may name stored records.
    package let hasGeneratedID: Bool

    package init(head: HTTPRequestHead, body: [UInt8] = [], remoteAddress: String = "", id: String? = nil) {
        self.head = head
        self.body = body
        self.remoteAddress = remoteAddress
        self.id = id ?? RequestID.make()
        hasGeneratedID = id == nil
    }

    package var method: HTTPMethod { head.method }
    package var headers: HTTPHeaders { head.headers }
}

/// A response to write. `Content-Length`, `Date` and `Connection` are added by the writer.
package struct HTTPResponse: Sendable {
    package var status: HTTPStatus
    package var headers: HTTPHeaders
    package var body: [UInt8]

    package init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with a JSON body (already serialized).
    package static func json(_ status: HTTPStatus, _ body: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        json(status, body: Array(body.utf8), headers: headers)
    }

    /// A JSON answer whose body is already bytes.
    package static func json(_ status: HTTPStatus, body: [UInt8], headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var headers = headers
        // Room for the request id the connection adds, so that the fields are not copied to grow.
        headers.reserveCapacity(headers.count + 2)
        headers.add(lowercasedName: "content-type", value: "application/json")
        return HTTPResponse(status: status, headers: headers, body: body)
    }
}

/// Request ids: the client's `X-Request-Id` taken when safe to log and echo, or a new one.
package enum RequestID {
    /// The longest client id kept.
    package static let maxLength = 128

    /// Hex digits in an id the server makes.
    package static let length = 24

    /// A new id of 24 hex digits: the Unix time in milliseconds (12 digits), then 48 random
    /// bits (12 digits). Ids made later sort later, so that the store's index of delivery ids
    /// grows at its end: random ids put every webhook's entry on a page of its own, one more
    /// page written to the log (and copied again by the checkpoint) per webhook.
    package static func make() -> String {
        make(unixMilliseconds: UInt64(csystem_unix_milliseconds()))
    }

    /// An id made at `unixMilliseconds` (tests pass a time).
    package static func make(unixMilliseconds: UInt64) -> String {
        let random = pool.withLock { $0.next() }
        return String(unsafeUninitializedCapacity: length) { digits in
            for index in 0..<12 {
                digits[index] = hexDigit(unixMilliseconds >> UInt64(44 - 4 * index))
                digits[12 + index] = hexDigit(random >> UInt64(44 - 4 * index))
            }
            return length
        }
    }

    /// The time in an id this server made, or nil for any other text.
    package static func time(of id: some StringProtocol) -> UInt64? {
        guard id.utf8.count == length, id.utf8.allSatisfy(isLowerHexDigit) else { return nil }
        return UInt64(id.prefix(12), radix: 16)
    }

    /// Whether `byte` is one of `0-9a-f`.
    package static func isLowerHexDigit(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (97...102).contains(byte)
    }

    private static func hexDigit(_ value: UInt64) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value) & 0xf
        return nibble < 10 ? 48 + nibble : 87 + nibble
    }

    /// The kernel's random bytes, read 4 KB at a time: one system call per 512 ids, not one
    /// per request.
    private static let pool = Mutex(RandomPool())

    private struct RandomPool: ~Copyable {
        private var words = [UInt64](repeating: 0, count: 512)
        private var position = 512

        mutating func next() -> UInt64 {
            if position == words.count {
                var generator = SystemRandomNumberGenerator()
                words.withUnsafeMutableBytes { buffer in
                    if csystem_random_bytes(buffer.baseAddress, UInt(buffer.count)) != buffer.count {
                        // Interrupted or short: word by word, as before.
                        for index in 0..<buffer.count / 8 { buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: index * 8, as: UInt64.self) }
                    }
                }
                position = 0
            }
            defer { position += 1 }
            return words[position]
        }
    }

    /// The client's id when it is 1–128 characters of letters, digits and `-_.:/+=@`; nil
    /// otherwise (it is then replaced, never cut or escaped).
    package static func sanitized(_ value: String) -> String? {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= maxLength else { return nil }
        let allowed = bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "+"),
                UInt8(ascii: "="), UInt8(ascii: "@"): true
            default: false
            }
        }
        return allowed ? value : nil
    }
}
