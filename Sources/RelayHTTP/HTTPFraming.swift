// Pieces of RFC 9112 message syntax shared by the request and response parsers.

enum ASCII {
    static let cr: UInt8 = 13
    static let lf: UInt8 = 10
    static let space: UInt8 = 32
    static let tab: UInt8 = 9
    static let colon: UInt8 = 58
    static let semicolon: UInt8 = 59

    // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    static let isTokenTable: [Bool] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(UInt8(byte))
        }
    }

    @inline(__always) static func isToken(_ byte: UInt8) -> Bool { isTokenTable[Int(byte)] }

    /// field-vchar, SP and HTAB (RFC 9110 §5.5); obs-text (0x80-0xFF) is allowed.
    @inline(__always) static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == tab || (byte >= 0x20 && byte != 0x7F)
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    @inline(__always) static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte | 0x20 : byte
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}

/// Finds the end of a header block incrementally: remembers how far it has scanned so that
/// a head delivered one byte at a time costs linear work, and rejects a bare LF.
struct HeadScanner {
    private(set) var scanned = 0
    private var lineStart = 0

    mutating func reset() {
        scanned = 0
        lineStart = 0
    }

    /// Scans `bytes[start + scanned ..< end]`; returns the offset (from `start`) just past the
    /// blank line that ends the block, or nil when more bytes are needed.
    mutating func findEnd(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) throws(HTTPParseError) -> Int? {
        var position = start + scanned
        let end = bytes.count
        while position < end {
            if bytes[position] == ASCII.lf {
                // RFC 9112 §2.2: a bare LF is rejected here, since it can desynchronise intermediaries.
                if position == start || bytes[position - 1] != ASCII.cr {
                    throw .malformed("bare LF where CRLF is required")
                }
                let lineLength = position - 1 - (start + lineStart)
                if lineLength == 0 {
                    scanned = position + 1 - start
                    return scanned
                }
                lineStart = position + 1 - start
            }
            position += 1
        }
        scanned = position - start
        return nil
    }
}

/// The header lines of a head, starting at `start` (each ends in CRLF; HeadScanner has
/// checked that every LF follows a CR). More than `maxCount` fields is 431.
func parseHeaderBlock(_ head: UnsafeBufferPointer<UInt8>, from start: Int, maxCount: Int) throws(HTTPParseError) -> HTTPHeaders {
    var lineCount = 0
    for index in start..<max(start, head.count) where head[index] == ASCII.lf { lineCount += 1 }
    guard lineCount <= maxCount else { throw .headersTooLarge }
    var headers = HTTPHeaders(capacity: lineCount)
    var lineStart = start
    while lineStart < head.count {
        var end = lineStart
        while end < head.count && head[end] != ASCII.lf { end += 1 }
        end -= 1
        try parseHeaderLine(UnsafeBufferPointer(rebasing: head[lineStart..<end]), into: &headers)
        lineStart = end + 2
    }
    return headers
}

/// A header line split into name and trimmed value; validates RFC 9110 field syntax.
func parseHeaderLine(_ line: UnsafeBufferPointer<UInt8>, into headers: inout HTTPHeaders) throws(HTTPParseError) {
    guard let first = line.first else { return }
    if first == ASCII.space || first == ASCII.tab {
        // RFC 9112 §5.2: obs-fold is rejected with 400.
        throw .malformed("obsolete line folding in a header field")
    }
    var colon = 0
    while colon < line.count && line[colon] != ASCII.colon {
        guard ASCII.isToken(line[colon]) else { throw .malformed("invalid character in a header field name") }
        colon += 1
    }
    // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon.
    guard colon < line.count, colon > 0 else { throw .malformed("malformed header field") }
    var valueStart = colon + 1
    var valueEnd = line.count
    while valueStart < valueEnd && (line[valueStart] == ASCII.space || line[valueStart] == ASCII.tab) { valueStart += 1 }
    while valueEnd > valueStart && (line[valueEnd - 1] == ASCII.space || line[valueEnd - 1] == ASCII.tab) { valueEnd -= 1 }
    for index in valueStart..<valueEnd where !ASCII.isFieldValueByte(line[index]) {
        throw .malformed("control character in a header field value")
    }
    let name = String(unsafeUninitializedCapacity: colon) { buffer in
        for index in 0..<colon { buffer[index] = ASCII.lowercased(line[index]) }
        return colon
    }
    let value = String(decoding: UnsafeBufferPointer(rebasing: line[valueStart..<valueEnd]), as: UTF8.self)
    headers.add(lowercasedName: name, value: value)
}

/// Calls `body` with each comma-separated element of a list field's value (RFC 9110 §5.6.1),
/// without the optional whitespace (SP, HTAB) around it, empty elements included. By byte,
/// with no copy: a Content-Length or Connection value is read on every message.
func forEachListElement<Failure: Error>(of value: String, _ body: (Substring.UTF8View) throws(Failure) -> Void) throws(Failure) {
    let bytes = value.utf8
    var start = bytes.startIndex
    while true {
        let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
        var element = Substring(value).utf8[start..<end]
        while let first = element.first, first == ASCII.space || first == ASCII.tab { element = element.dropFirst() }
        while let last = element.last, last == ASCII.space || last == ASCII.tab { element = element.dropLast() }
        try body(element)
        guard end < bytes.endIndex else { return }
        start = bytes.index(after: end)
    }
}

/// The fields that decide framing and connection handling, gathered in one pass over the
/// header list instead of one lookup per name.
struct FramingFields {
    var contentLengths: [String] = []
    var transferCodings: [String] = []
    var connectionOptions: [String] = []
    var hostCount = 0
    var expect: String?

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch name {
            case "content-length": contentLengths.append(value)
            case "transfer-encoding": Self.appendElements(of: value, to: &transferCodings)
            case "connection": Self.appendElements(of: value, to: &connectionOptions)
            case "host": hostCount += 1
            case "expect": expect = value
            default: break
            }
        }
    }

    /// The comma-separated elements of a list value, trimmed and lower-cased (they are tokens:
    /// ASCII case is all there is), empty ones left out.
    static func appendElements(of value: String, to elements: inout [String]) {
        forEachListElement(of: value) { element in
            if element.isEmpty { return }
            elements.append(String(unsafeUninitializedCapacity: element.count) { buffer in
                for (index, byte) in element.enumerated() { buffer[index] = ASCII.lowercased(byte) }
                return element.count
            })
        }
    }

    /// Whether the connection persists after this message (RFC 9112 §9.3).
    func keepAlive(version: HTTPVersion) -> Bool {
        version == .http1_1 ? !connectionOptions.contains("close") : connectionOptions.contains("keep-alive")
    }
}

/// How a message body is delimited (RFC 9112 §6.3).
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
    /// Responses only: the body runs until the connection closes.
    case untilClose
}

/// Decides the framing from `Transfer-Encoding` and `Content-Length`, rejecting the
/// ambiguous combinations that enable request smuggling.
func bodyFraming(_ fields: FramingFields, version: HTTPVersion, isRequest: Bool) throws(HTTPParseError) -> BodyFraming {
    let codings = fields.transferCodings
    let lengths = fields.contentLengths
    if !codings.isEmpty {
        // RFC 9112 §6.1: Content-Length with Transfer-Encoding is an error in a request.
        if !lengths.isEmpty && isRequest { throw .malformed("both Content-Length and Transfer-Encoding") }
        if version == .http1_0 && isRequest { throw .malformed("Transfer-Encoding in an HTTP/1.0 request") }
        if let unsupported = codings.first(where: { $0 != "chunked" }) { throw .unsupportedTransferCoding(unsupported) }
        if codings.count > 1 { throw .malformed("chunked applied more than once") }
        return .chunked
    }
    guard !lengths.isEmpty else { return isRequest ? .none : .untilClose }
    var length: Int?
    for value in lengths {
        try forEachListElement(of: value) { element throws(HTTPParseError) in
            guard !element.isEmpty, element.allSatisfy(ASCII.isDigit) else {
                throw .malformed("invalid Content-Length")
            }
            // More than 18 digits cannot be a body anyone accepts; avoid overflow.
            guard element.count <= 18 else { throw .payloadTooLarge }
            let parsed = element.reduce(0) { $0 * 10 + Int($1 - 48) }
            if let length, length != parsed { throw .malformed("conflicting Content-Length values") }
            length = parsed
        }
    }
    return .length(length ?? 0)
}

/// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1), extensions and
/// trailer fields tolerated and discarded.
struct ChunkedDecoder {
    private enum State: Equatable {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
        case done
    }

    private var state = State.size
    private var trailerScanner = HeadScanner()

    /// A chunk-size line (size and extensions) is at most this long; extensions carry nothing
    /// the relay uses.
    static let maxSizeLineBytes = 1024

    var isDone: Bool { state == .done }

    mutating func reset() {
        state = .size
        trailerScanner.reset()
    }

    /// Decodes from `bytes[index...]`, appending data to `body`; advances `index` over what it consumed.
    mutating func decode(
        _ bytes: UnsafeBufferPointer<UInt8>, index: inout Int, body: inout [UInt8], maxLineBytes: Int,
        maxBodyBytes: Int
    ) throws(HTTPParseError) {
        while index < bytes.count {
            switch state {
            case .size:
                guard let lf = try firstLF(bytes, from: index, limit: Self.maxSizeLineBytes) else { return }
                guard lf > index, bytes[lf - 1] == ASCII.cr else { throw .malformed("bare LF where CRLF is required") }
                var size = 0
                var position = index
                var digits = 0
                while position < lf - 1, let value = ASCII.hexValue(bytes[position]) {
                    guard digits < 15 else { throw .payloadTooLarge }
                    size = size << 4 | value
                    digits += 1
                    position += 1
                }
                guard digits > 0 else { throw .malformed("invalid chunk size") }
                // RFC 9112 §7.1.1: whitespace (BWS) may only precede a ";" that starts an extension.
                var afterSpace = position
                while afterSpace < lf - 1 && (bytes[afterSpace] == ASCII.space || bytes[afterSpace] == ASCII.tab) {
                    afterSpace += 1
                }
                if afterSpace < lf - 1 && bytes[afterSpace] == ASCII.semicolon { position = afterSpace }
                guard position == lf - 1 || bytes[position] == ASCII.semicolon else {
                    throw .malformed("invalid chunk size")
                }
                for check in position..<(lf - 1) where !ASCII.isFieldValueByte(bytes[check]) {
                    throw .malformed("control character in a chunk extension")
                }
                index = lf + 1
                if size == 0 {
                    state = .trailers
                } else {
                    guard body.count + size <= maxBodyBytes else { throw .payloadTooLarge }
                    state = .data(remaining: size)
                }
            case .data(let remaining):
                let take = min(remaining, bytes.count - index)
                body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                state = remaining == take ? .dataEnd : .data(remaining: remaining - take)
            case .dataEnd:
                guard bytes.count - index >= 2 else {
                    if bytes[index] != ASCII.cr { throw .malformed("chunk data not followed by CRLF") }
                    return
                }
                guard bytes[index] == ASCII.cr, bytes[index + 1] == ASCII.lf else {
                    throw .malformed("chunk data not followed by CRLF")
                }
                index += 2
                state = .size
            case .trailers:
                // The trailer section is a header block that may be empty: a lone CRLF ends it.
                // It is discarded, and held to the header limit however it arrives.
                if let end = try trailerScanner.findEnd(in: bytes, from: index) {
                    guard end <= maxLineBytes else { throw .headersTooLarge }
                    index += end
                    state = .done
                    return
                }
                if trailerScanner.scanned > maxLineBytes { throw .headersTooLarge }
                return
            case .done:
                return
            }
        }
    }

    /// The first LF at or after `start`; a line longer than `limit` is refused whether or not its
    /// end has arrived.
    private func firstLF(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, limit: Int) throws(HTTPParseError) -> Int? {
        var position = start
        while position < bytes.count {
            if bytes[position] == ASCII.lf { break }
            position += 1
        }
        if position - start > limit { throw .malformed("chunk size line is too long") }
        return position < bytes.count ? position : nil
    }
}
