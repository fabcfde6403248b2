/// A sans-I/O HTTP/1.1 response parser for the outbound client: bytes in, one complete
/// response out. Handles `Content-Length`, `chunked` and close-delimited bodies, and skips
/// interim (1xx) responses.
struct HTTPResponseParser {
    /// A complete response head and body.
    struct Response: Equatable {
        var status: Int
        var version: HTTPVersion
        var headers: HTTPHeaders
        var body: [UInt8]
        /// Whether the server allows the connection to be reused.
        var keepAlive: Bool
    }

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkedBody
        case untilClose
        case done
    }

    private var buffer: [UInt8] = []
    private var state = State.head
    private var scanner = HeadScanner()
    private var chunked = ChunkedDecoder()
    private var response: Response?
    private let maxHeaderBytes: Int
    private let maxBodyBytes: Int
    /// The request was HEAD: the response has no body whatever its headers say.
    private let isHeadRequest: Bool

    init(isHeadRequest: Bool = false, maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int = 16 << 20) {
        self.isHeadRequest = isHeadRequest
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// True once any byte of the response has arrived.
    var hasStarted: Bool { !buffer.isEmpty || response != nil }

    /// Feeds bytes; returns the response once it is complete.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> Response? {
        buffer.append(contentsOf: bytes)
        var result: Result<Response?, HTTPParseError> = .success(nil)
        var consumed = 0
        do {
            // A local reference (no copy) keeps the read of the bytes apart from the mutation of self.
            let input = buffer
            input.withUnsafeBufferPointer { pointer in
                do throws(HTTPParseError) {
                    result = .success(try parse(pointer, index: &consumed))
                } catch {
                    result = .failure(error)
                }
            }
        }
        buffer.removeSubrange(0..<consumed)
        return try result.get()
    }

    /// The peer closed the connection: completes a close-delimited body, else fails.
    mutating func finish() throws(HTTPParseError) -> Response {
        if case .untilClose = state, var response {
            response.body += buffer
            response.keepAlive = false
            buffer = []
            state = .done
            return response
        }
        throw .malformed("connection closed before the response was complete")
    }

    private mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>, index: inout Int) throws(HTTPParseError) -> Response? {
        while true {
            switch state {
            case .head:
                guard let length = try scanner.findEnd(in: bytes, from: index) else {
                    if scanner.scanned > maxHeaderBytes { throw .headersTooLarge }
                    return nil
                }
                guard length > 2 else { throw .malformed("empty status line") }
                let (head, fields) = try parseHead(UnsafeBufferPointer(rebasing: bytes[index..<(index + length - 2)]))
                index += length
                scanner.reset()
                if head.status < 200 {
                    continue
                }
                response = head
                if isHeadRequest || head.status == 204 || head.status == 304 {
                    state = .done
                    continue
                }
                switch try bodyFraming(fields, version: head.version, isRequest: false) {
                case .none, .length(0):
                    state = .done
                case .length(let length):
                    guard length <= maxBodyBytes else { throw .payloadTooLarge }
                    state = .fixedBody(remaining: length)
                case .chunked:
                    chunked.reset()
                    state = .chunkedBody
                case .untilClose:
                    response?.keepAlive = false
                    state = .untilClose
                }
            case .fixedBody(let remaining):
                let take = min(remaining, bytes.count - index)
                response?.body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                guard take == remaining else {
                    state = .fixedBody(remaining: remaining - take)
                    return nil
                }
                state = .done
            case .chunkedBody:
                var body = response?.body ?? []
                response?.body = []
                try chunked.decode(bytes, index: &index, body: &body, maxLineBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes)
                response?.body = body
                guard chunked.isDone else { return nil }
                state = .done
            case .untilClose:
                guard (response?.body.count ?? 0) + bytes.count - index <= maxBodyBytes else { throw .payloadTooLarge }
                response?.body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index...]))
                index = bytes.count
                return nil
            case .done:
                return response
            }
        }
    }

    private func parseHead(_ head: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> (Response, FramingFields) {
        var lineEnd = 0
        while lineEnd < head.count && head[lineEnd] != ASCII.lf { lineEnd += 1 }
        lineEnd -= 1
        // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4), read
        // by byte: "HTTP/1.x", a space, three digits, then a space or the end of the line.
        let line = UnsafeBufferPointer(rebasing: head[0..<max(lineEnd, 0)])
        guard let versionEnd = line.firstIndex(of: ASCII.space) else { throw .malformed("invalid status line") }
        let digits = line.index(after: versionEnd)..<min(versionEnd + 4, line.count)
        guard digits.count == 3, line[digits].allSatisfy(ASCII.isDigit),
            digits.upperBound == line.count || line[digits.upperBound] == ASCII.space
        else {
            throw .malformed("invalid status line")
        }
        let status = line[digits].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        let version: HTTPVersion
        switch versionEnd == 8 && line[0..<7].elementsEqual("HTTP/1.".utf8) ? line[7] : nil {
        case UInt8(ascii: "1"): version = .http1_1
        case UInt8(ascii: "0"): version = .http1_0
        default: throw .malformed("unsupported HTTP version in response")
        }
        let headers = try parseHeaderBlock(head, from: lineEnd + 2, maxCount: 1024)
        let fields = FramingFields(headers)
        return (Response(status: status, version: version, headers: headers, body: [], keepAlive: fields.keepAlive(version: version)), fields)
    }
}
