/// A sans-I/O HTTP/1.1 request parser: bytes in, events out. It never touches a socket.
///
/// Pipelined requests come out in order; after an error the parser stays failed, since the
/// connection's framing is lost.
package struct HTTPRequestParser {
    /// Size limits enforced while parsing.
    package struct Limits: Sendable {
        /// Request line plus header fields, in bytes (431 beyond).
        package var maxHeaderBytes: Int
        /// Body bytes (413 beyond), decided from `Content-Length` before any is read.
        package var maxBodyBytes: Int
        /// Header fields per request (431 beyond).
        package var maxHeaderCount: Int

        package init(maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int = 1024 * 1024, maxHeaderCount: Int = 128) {
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
            self.maxHeaderCount = maxHeaderCount
        }
    }

    /// What the parser produced from the bytes fed so far.
    package enum Event: Equatable, Sendable {
        case head(HTTPRequestHead)
        case body([UInt8])
        case end
    }

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkedBody
        case failed(HTTPParseError)
    }

    package let limits: Limits
    private var buffer: [UInt8] = []
    private var index = 0
    private var state = State.head
    private var scanner = HeadScanner()
    private var chunked = ChunkedDecoder()
    private var chunkedBodyBytes = 0
    /// Empty lines received before the current request line.
    private var leadingEmptyLines = 0

    /// Empty lines tolerated before a request line (RFC 9112 §2.2 asks for at least one).
    static let maxLeadingEmptyLines = 8

    package init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// True when no byte of a request has arrived: the connection is between requests. Empty
    /// lines before a request line count as its bytes, so they cannot hold a connection idle.
    package var isIdle: Bool {
        if case .head = state { return buffer.isEmpty && leadingEmptyLines == 0 }
        return false
    }

    /// True while a request head has started arriving but is not complete.
    package var isReadingHead: Bool {
        if case .head = state { return !buffer.isEmpty || leadingEmptyLines > 0 }
        return false
    }

    /// The error that ended parsing, if any. Once set, every `feed` throws it.
    package var error: HTTPParseError? {
        if case .failed(let error) = state { return error }
        return nil
    }

    /// Feeds bytes and returns the events they complete. When the bytes hold complete
    /// requests followed by a malformed one, the events of the complete ones are returned
    /// and `error` is set; the error is thrown when nothing precedes it.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> [Event] {
        var events: [Event] = []
        try feed(bytes, into: &events)
        return events
    }

    /// Feeds bytes and appends the events they complete to `events` (which the caller may
    /// reuse from read to read); errors as `feed(_:)`.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer, into events: inout [Event]) throws(HTTPParseError) {
        if case .failed(let error) = state { throw error }
        let eventsBefore = events.count
        var failure: HTTPParseError?
        if buffer.isEmpty {
            // Nothing held back: parse straight from the caller's bytes and keep only the rest.
            let input = bytes.bindMemory(to: UInt8.self)
            index = 0
            do {
                try parse(input, into: &events)
            } catch {
                failure = error
            }
            if failure == nil && index < input.count {
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: input[index...]))
            }
            index = 0
        } else {
            buffer.append(contentsOf: bytes)
            do {
                try parse(into: &events)
            } catch {
                failure = error
            }
            if index == buffer.count {
                buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
                index = 0
            } else if index > 4096 && index > buffer.count / 2 {
                buffer.removeSubrange(0..<index)
                index = 0
            }
        }
        if let failure {
            state = .failed(failure)
            buffer = []
            index = 0
            if events.count == eventsBefore { throw failure }
        }
    }

    /// Feeds bytes from any byte collection (convenient in tests).
    package mutating func feed(_ bytes: [UInt8]) throws(HTTPParseError) -> [Event] {
        var result: Result<[Event], HTTPParseError> = .success([])
        bytes.withUnsafeBytes { raw in
            do throws(HTTPParseError) {
                result = .success(try feed(raw))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    private mutating func parse(into events: inout [Event]) throws(HTTPParseError) {
        var result: Result<Void, HTTPParseError> = .success(())
        // A local reference (no copy) keeps the read of the bytes apart from the mutation of self;
        // it ends with this scope, before the buffer is compacted.
        let input = buffer
        input.withUnsafeBufferPointer { bytes in
            do throws(HTTPParseError) {
                try parse(bytes, into: &events)
            } catch {
                result = .failure(error)
            }
        }
        try result.get()
    }

    private mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>, into events: inout [Event]) throws(HTTPParseError) {
        while index < bytes.count {
            switch state {
            case .head:
                // RFC 9112 §2.2: ignore empty lines received before a request line.
                if scanner.scanned == 0 {
                    while index + 1 < bytes.count && bytes[index] == ASCII.cr && bytes[index + 1] == ASCII.lf {
                        index += 2
                        leadingEmptyLines += 1
                        guard leadingEmptyLines <= Self.maxLeadingEmptyLines else {
                            throw .malformed("too many empty lines before the request line")
                        }
                    }
                    if index < bytes.count && bytes[index] == ASCII.lf { throw .malformed("bare LF where CRLF is required") }
                    if index + 1 == bytes.count && bytes[index] == ASCII.cr { return }
                }
                guard let headLength = try scanner.findEnd(in: bytes, from: index) else {
                    if scanner.scanned > limits.maxHeaderBytes { throw .headersTooLarge }
                    return
                }
                guard headLength <= limits.maxHeaderBytes + 2 else { throw .headersTooLarge }
                let (head, fields) = try parseHead(UnsafeBufferPointer(rebasing: bytes[index..<(index + headLength - 2)]))
                // Framing is decided (and a too-large body refused) before the head is reported.
                let framing = try bodyFraming(fields, version: head.version, isRequest: true)
                if case .length(let length) = framing, length > limits.maxBodyBytes { throw .payloadTooLarge }
                index += headLength
                scanner.reset()
                leadingEmptyLines = 0
                events.append(.head(head))
                switch framing {
                case .none, .untilClose, .length(0):
                    events.append(.end)
                case .length(let length):
                    state = .fixedBody(remaining: length)
                case .chunked:
                    chunked.reset()
                    state = .chunkedBody
                }
            case .fixedBody(let remaining):
                let take = min(remaining, bytes.count - index)
                events.append(.body(Array(UnsafeBufferPointer(rebasing: bytes[index..<(index + take)]))))
                index += take
                if take == remaining {
                    state = .head
                    events.append(.end)
                } else {
                    state = .fixedBody(remaining: remaining - take)
                }
            case .chunkedBody:
                var body: [UInt8] = []
                do {
                    try chunked.decode(
                        bytes, index: &index, body: &body, maxLineBytes: limits.maxHeaderBytes,
                        maxBodyBytes: limits.maxBodyBytes - chunkedBodyBytes)
                } catch {
                    // Data decoded before a framing error is still reported, however the bytes were split.
                    if !body.isEmpty { events.append(.body(body)) }
                    throw error
                }
                chunkedBodyBytes += body.count
                if !body.isEmpty { events.append(.body(body)) }
                if chunked.isDone {
                    chunkedBodyBytes = 0
                    state = .head
                    events.append(.end)
                } else {
                    return
                }
            case .failed(let error):
                throw error
            }
        }
    }

    private func parseHead(_ head: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> (HTTPRequestHead, FramingFields) {
        // Every LF in the head follows a CR (HeadScanner checks), so a line ends one byte
        // before its LF; any other CR is a control character and rejected below.
        var lineEnd = 0
        while lineEnd < head.count && head[lineEnd] != ASCII.lf { lineEnd += 1 }
        lineEnd -= 1
        let requestLine = UnsafeBufferPointer(rebasing: head[0..<lineEnd])

        // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
        var position = 0
        while position < requestLine.count && ASCII.isToken(requestLine[position]) { position += 1 }
        guard position > 0, position < requestLine.count, requestLine[position] == ASCII.space else {
            throw .malformed("invalid request method")
        }
        let method = HTTPMethod(String(decoding: UnsafeBufferPointer(rebasing: requestLine[0..<position]), as: UTF8.self))
        let targetStart = position + 1
        position = targetStart
        while position < requestLine.count && requestLine[position] > 0x20 && requestLine[position] < 0x7F {
            position += 1
        }
        guard position > targetStart, position < requestLine.count, requestLine[position] == ASCII.space else {
            throw .malformed("invalid request target")
        }
        var target = String(decoding: UnsafeBufferPointer(rebasing: requestLine[targetStart..<position]), as: UTF8.self)
        let version: HTTPVersion
        switch String(decoding: UnsafeBufferPointer(rebasing: requestLine[(position + 1)...]), as: UTF8.self) {
        case "HTTP/1.1": version = .http1_1
        case "HTTP/1.0": version = .http1_0
        default: throw .malformed("unsupported HTTP version")
        }
        target = try originForm(target, method: method)

        let headers = try parseHeaderBlock(head, from: lineEnd + 2, maxCount: limits.maxHeaderCount)
        let fields = FramingFields(headers)
        if version == .http1_1 && fields.hostCount != 1 {
            // RFC 9112 §3.2: exactly one Host field in an HTTP/1.1 request.
            throw .malformed(fields.hostCount == 0 ? "missing Host header" : "more than one Host header")
        }
        let expectsContinue = version == .http1_1 && fields.expect?.lowercased() == "100-continue"
        let head = HTTPRequestHead(
            method: method, target: target, version: version, headers: headers, keepAlive: fields.keepAlive(version: version),
            expectsContinue: expectsContinue)
        return (head, fields)
    }

    /// Reduces absolute-form (RFC 9112 §3.2.2) to origin-form and rejects other forms.
    private func originForm(_ target: String, method: HTTPMethod) throws(HTTPParseError) -> String {
        if target.hasPrefix("/") { return target }
        if target == "*" && method == .options { return target }
        for scheme in ["http://", "https://"] where target.lowercased().hasPrefix(scheme) {
            let rest = target.dropFirst(scheme.count)
            guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
            let path = String(rest[slash...])
            return path.hasPrefix("?") ? "/" + path : path
        }
        throw .malformed("invalid request target")
    }
}
