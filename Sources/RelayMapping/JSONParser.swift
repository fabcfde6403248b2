#if canImport(Glibc)
import Glibc
#endif

/// Why a JSON text could not be parsed, with the 1-based line and column of the problem.
package struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    package let message: String
    package let line: Int
    package let column: Int

    package var description: String { "\(message) at line \(line), column \(column)" }
}

/// A byte-level RFC 8259 JSON parser: strict grammar, UTF-8 validated, surrogate pairs
/// joined, numbers kept as their source text, bounded depth and size.
package struct JSONParser {
    /// Nesting deeper than this is refused.
    package var maxDepth = 64
    /// Inputs larger than this are refused.
    package var maxBytes = 16 << 20

    package init(maxDepth: Int = 64, maxBytes: Int = 16 << 20) {
        self.maxDepth = maxDepth
        self.maxBytes = maxBytes
    }

    /// Parses one JSON text (surrounding whitespace allowed, nothing else).
    package func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var result: Result<JSONValue, JSONParseError> = .success(.null)
        bytes.withUnsafeBufferPointer { buffer in
            do throws(JSONParseError) {
                result = .success(try parse(buffer))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Parses a string's UTF-8.
    package func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Parses into a tape over `bytes`: the same grammar, checks and errors as `parse`, but
    /// nothing is built — strings and numbers are decoded when they are read.
    package func tape(_ bytes: [UInt8]) throws(JSONParseError) -> JSONTape {
        // Refused before anything is copied or allocated for it.
        // Tape entries hold offsets as 32-bit numbers.
        let limit = min(maxBytes, Int(Int32.max))
        guard bytes.count <= limit else { throw JSONParseError(message: "document is larger than \(limit) bytes", line: 1, column: 1) }
        // The tape owns a copy of the document, and its entries are written straight into
        // storage it then owns.
        let document = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = document.initialize(from: bytes)
        // About one entry per ten bytes in real payloads; room for more so most never grow.
        let builder: TapeBuilder
        do throws(JSONParseError) {
            builder = try Reader.tapeEntries(of: UnsafeBufferPointer(document), maxDepth: maxDepth, capacity: max(16, bytes.count / 7))
        } catch {
            document.deallocate()
            throw error
        }
        return JSONTape(bytes: document, entries: UnsafeMutableBufferPointer(rebasing: builder.storage[..<builder.count]))
    }

    /// Parses from raw bytes.
    package func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        var reader = Reader(bytes: buffer, maxDepth: maxDepth)
        guard buffer.count <= maxBytes else { throw reader.error("document is larger than \(maxBytes) bytes") }
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.index == buffer.count else { throw reader.error("unexpected data after the JSON value") }
        return value
    }
}

struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ message: String, at position: Int? = nil) -> JSONParseError {
        let end = min(position ?? index, bytes.count)
        var line = 1
        var lineStart = 0
        for offset in 0..<end where bytes[offset] == 10 {
            line += 1
            lineStart = offset + 1
        }
        // Columns count characters, not bytes: skip UTF-8 continuation bytes.
        var column = 1
        for offset in lineStart..<end where bytes[offset] & 0xC0 != 0x80 { column += 1 }
        return JSONParseError(message: message, line: line, column: column)
    }

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count {
            let byte = bytes[index]
            // One comparison settles the usual case: a byte that is not whitespace.
            guard byte <= 0x20, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            index += 1
        }
    }

    /// An object's members, in order.
    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error(index < bytes.count ? "expected a member name in quotes" : "unexpected end of input")
            }
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
            index += 1
            skipWhitespace()
            members.append((key, try value(depth: depth)))
            if try endOfMember(closing: UInt8(ascii: "}")) { return .object(members) }
        }
    }

    /// After a member or element: true at the closing bracket, false after a comma.
    @inline(__always) mutating func endOfMember(closing: UInt8) throws(JSONParseError) -> Bool {
        skipWhitespace()
        if index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: ",") { return false }
            if byte == closing { return true }
            index -= 1
        }
        throw endOfMemberError(closing: closing)
    }

    private func endOfMemberError(closing: UInt8) -> JSONParseError {
        guard index < bytes.count else { return error("unexpected end of input") }
        return error("expected ',' or '\(Character(Unicode.Scalar(closing)))' in \(closing == UInt8(ascii: "}") ? "an object" : "an array")")
    }

    /// An array's elements, in order.
    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth))
            if try endOfMember(closing: UInt8(ascii: "]")) { return .array(items) }
        }
    }

    /// Validates a whole document and records it on a tape: one loop over the text, the open
    /// containers chained through the tape itself (no recursion: the position and the open
    /// container are local variables, not state passed from call to call through memory).
    /// Errors are those of `value`.
    static func tapeEntries(of bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, capacity: Int) throws(JSONParseError) -> TapeBuilder {
        var reader = Reader(bytes: bytes, maxDepth: maxDepth)
        var entries = TapeBuilder(capacity: capacity)
        do throws(JSONParseError) {
            try reader.record(into: &entries)
        } catch {
            entries.storage.deallocate()
            throw error
        }
        return entries
    }

    @inline(__always) private mutating func record(into entries: inout TapeBuilder) throws(JSONParseError) {
        // The open container's entry and its children so far. While a container is open its
        // entry's `end` holds the enclosing container's index (-1 at the top) and the
        // enclosing container's `count` its own children so far; both are set right at close.
        var container = -1
        var inObject = false
        var children: Int32 = 0
        var depth = 0
        var expectingName = false
        skipWhitespace()
        document: while true {
            if expectingName {
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error(index < bytes.count ? "expected a member name in quotes" : "unexpected end of input")
                }
                let nameStart = index
                let hasEscape = try skipString()
                // Names are chained from the object's last one back to its first.
                let name = entries.count
                entries.append(
                    JSONTape.Entry(
                        kind: .string, start: Int32(truncatingIfNeeded: nameStart &+ 1), end: Int32(truncatingIfNeeded: index &- 1), hasEscapes: hasEscape,
                        count: entries[container].start))
                entries[container].start = Int32(truncatingIfNeeded: name)
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
                index &+= 1
                skipWhitespace()
            }
            guard index < bytes.count else { throw error("unexpected end of input") }
            // The value just recorded, once it is complete.
            var value = entries.count
            let start = index
            switch bytes[index] {
            case UInt8(ascii: "\""):
                let hasEscape = try skipString()
                entries.append(JSONTape.Entry(kind: .string, start: Int32(truncatingIfNeeded: start &+ 1), end: Int32(truncatingIfNeeded: index &- 1), hasEscapes: hasEscape))
            case UInt8(ascii: "1")...UInt8(ascii: "9"):
                // Most numbers are whole: their digits are the number unless a fraction or an
                // exponent follows, which the full check then reads from the start.
                index &+= 1
                skipDigits()
                if index < bytes.count && (bytes[index] == UInt8(ascii: ".") || bytes[index] | 0x20 == UInt8(ascii: "e")) {
                    index = start
                    try skipNumber()
                }
                entries.append(JSONTape.Entry(kind: .number, start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: index)))
            case UInt8(ascii: "-"), UInt8(ascii: "0"):
                try skipNumber()
                entries.append(JSONTape.Entry(kind: .number, start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: index)))
            case let bracket where bracket == UInt8(ascii: "{") || bracket == UInt8(ascii: "["):
                guard depth < maxDepth else { throw error("nesting deeper than \(maxDepth)") }
                let isObject = bracket == UInt8(ascii: "{")
                if container >= 0 { entries[container].count = children }
                // An object's `start` holds its last member's name, itself until it has one.
                entries.append(
                    JSONTape.Entry(kind: isObject ? .object : .array, start: Int32(truncatingIfNeeded: isObject ? value : start), end: Int32(truncatingIfNeeded: container)))
                container = value
                inObject = isObject
                children = 0
                depth &+= 1
                index &+= 1
                skipWhitespace()
                if index < bytes.count && bytes[index] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    index &+= 1
                    value = closeContainer(&container, &inObject, &children, &depth, in: &entries)
                } else {
                    expectingName = isObject
                    continue document
                }
            case UInt8(ascii: "t"):
                try literal("true")
                entries.append(JSONTape.Entry(kind: .true, start: Int32(truncatingIfNeeded: start)))
            case UInt8(ascii: "f"):
                try literal("false")
                entries.append(JSONTape.Entry(kind: .false, start: Int32(truncatingIfNeeded: start)))
            case UInt8(ascii: "n"):
                try literal("null")
                entries.append(JSONTape.Entry(kind: .null, start: Int32(truncatingIfNeeded: start)))
            default:
                throw error("unexpected character \(describe(bytes[index]))")
            }
            // `value` is complete: count it, and close every container it completes.
            while container >= 0 {
                children &+= 1
                skipWhitespace()
                if index < bytes.count {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: ",") {
                        index &+= 1
                        skipWhitespace()
                        expectingName = inObject
                        continue document
                    }
                    if byte == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        index &+= 1
                        value = closeContainer(&container, &inObject, &children, &depth, in: &entries)
                        continue
                    }
                }
                throw endOfMemberError(closing: inObject ? UInt8(ascii: "}") : UInt8(ascii: "]"))
            }
            skipWhitespace()
            guard index == bytes.count else { throw error("unexpected data after the JSON value") }
            return
        }
    }

    /// Ends the open container: its entry gets its end and count, and the enclosing one is
    /// open again. Returns the closed container's index.
    @inline(__always) private func closeContainer(
        _ container: inout Int, _ inObject: inout Bool, _ children: inout Int32, _ depth: inout Int, in entries: inout TapeBuilder
    ) -> Int {
        let closed = container
        container = Int(entries[closed].end)
        entries[closed].end = Int32(truncatingIfNeeded: entries.count)
        entries[closed].count = children
        depth &-= 1
        if container >= 0 {
            children = entries[container].count
            inObject = entries[container].kind == .object
        }
        return closed
    }

    /// Validates a number (RFC 8259 §6) and moves past it.
    mutating func skipNumber() throws(JSONParseError) {
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) { throw error("leading zero in a number") }
        } else {
            skipDigits()
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit after '.'") }
            skipDigits()
        }
        if index < bytes.count && (bytes[index] | 0x20) == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit in the exponent") }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
    }

    /// Moves past a run of digits, eight bytes at a time while they last (ids are long).
    @inline(__always) mutating func skipDigits() {
        let base = UnsafeRawPointer(bytes.baseAddress!)
        while index &+ 8 <= bytes.count {
            let others = ByteWord(base + index).nonDigits
            if others == 0 {
                index &+= 8
                continue
            }
            index &+= others.trailingZeroBitCount >> 3
            return
        }
        while index < bytes.count && isDigit(bytes[index]) { index += 1 }
    }

    /// Validates a string (escapes, UTF-8, no control characters) and moves past it;
    /// returns whether it holds an escape.
    @inline(__always) mutating func skipString() throws(JSONParseError) -> Bool {
        let start = index
        index += 1
        var hasEscape = false
        let base = UnsafeRawPointer(bytes.baseAddress!)
        while true {
            // Eight bytes at a time to the next quote, backslash, control character or
            // non-ASCII byte (most of a payload's text is plain ASCII).
            if index &+ 8 <= bytes.count {
                let word = ByteWord(base + index)
                let quotes = word.quotes
                let special = quotes | word.needingEscapeOtherThanQuotes | word.nonASCII
                if special == 0 {
                    index &+= 8
                    continue
                }
                index &+= special.trailingZeroBitCount >> 3
                // The first special byte is a quote when the quote test marks it (that mark is
                // exact: nothing below it borrows): the string ends without reading it again.
                if quotes & special & (0 &- special) != 0 {
                    index &+= 1
                    return hasEscape
                }
            }
            guard index < bytes.count else { throw error("unterminated string", at: start) }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return hasEscape
            }
            if byte == UInt8(ascii: "\\") {
                hasEscape = true
                _ = try escape()
                continue
            }
            if byte < 0x20 { throw error("control character in a string (escape it)") }
            if byte < 0x80 {
                index += 1
                continue
            }
            guard let length = Self.utf8SequenceLength(bytes, at: index) else { throw error("invalid UTF-8 in a string", at: index) }
            index += length
        }
    }

    /// The length of the well-formed UTF-8 sequence at `index` (RFC 3629 §4), or nil.
    static func utf8SequenceLength(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int? {
        let first = bytes[index]
        func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
            index + offset < bytes.count && range.contains(bytes[index + offset])
        }
        switch first {
        case 0xC2...0xDF: return continuation(1) ? 2 : nil
        case 0xE0: return continuation(1, 0xA0...0xBF) && continuation(2) ? 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF: return continuation(1) && continuation(2) ? 3 : nil
        case 0xED: return continuation(1, 0x80...0x9F) && continuation(2) ? 3 : nil
        case 0xF0: return continuation(1, 0x90...0xBF) && continuation(2) && continuation(3) ? 4 : nil
        case 0xF1...0xF3: return continuation(1) && continuation(2) && continuation(3) ? 4 : nil
        case 0xF4: return continuation(1, 0x80...0x8F) && continuation(2) && continuation(3) ? 4 : nil
        default: return nil
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw error("unexpected character \(describe(bytes[index]))")
        }
    }

    func describe(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : Self.hex(byte)
    }

    /// `0x1F`-style text for a byte that cannot be shown as itself.
    static func hex(_ byte: UInt8) -> String {
        let hex = Swift.String(byte, radix: 16, uppercase: true)
        return "0x" + (hex.count == 1 ? "0" + hex : hex)
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        if index + count <= bytes.count && memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0 {
            index += count
            return
        }
        for offset in 0..<min(count, bytes.count - index) where bytes[index + offset] != word.utf8Start[offset] {
            throw error("invalid literal", at: index + offset)
        }
        throw error("invalid literal")
    }

    /// Reads a number and returns its text exactly as written.
    mutating func number() throws(JSONParseError) -> String {
        let start = index
        try skipNumber()
        return Swift.String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    /// Reads a string at `index` (the opening quote). Errors name the exact offending byte,
    /// as `skipString` does, so the tape and the tree fail alike.
    mutating func string() throws(JSONParseError) -> String {
        let quote = index
        index += 1
        var runStart = index
        var scalars = Swift.String.UnicodeScalarView()
        var hasEscape = false
        while true {
            guard index < bytes.count else { throw error("unterminated string", at: quote) }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                // Every byte in the run was validated while scanning.
                let run = Swift.String(decoding: UnsafeBufferPointer(rebasing: bytes[runStart..<index]), as: UTF8.self)
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    guard hasEscape else { return run }
                    scalars.append(contentsOf: run.unicodeScalars)
                    return Swift.String(scalars)
                }
                hasEscape = true
                scalars.append(contentsOf: run.unicodeScalars)
                scalars.append(try escape())
                runStart = index
                continue
            }
            if byte < 0x20 { throw error("control character in a string (escape it)") }
            if byte < 0x80 {
                index += 1
                continue
            }
            guard let length = Self.utf8SequenceLength(bytes, at: index) else { throw error("invalid UTF-8 in a string", at: index) }
            index += length
        }
    }

    /// Reads an escape sequence at `index` (the backslash) and returns its scalar.
    mutating func escape() throws(JSONParseError) -> Unicode.Scalar {
        index += 1
        guard index < bytes.count else { throw error("unterminated string") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try hex4()
            if (0xD800...0xDBFF).contains(high) {
                // RFC 8259 §7: a pair of escaped UTF-16 surrogates encodes one scalar.
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw error("unpaired surrogate \\u\(Swift.String(high, radix: 16, uppercase: true))")
                }
                index += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid low surrogate") }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
            }
            guard let scalar = Unicode.Scalar(high) else {
                throw error("unpaired surrogate \\u\(Swift.String(high, radix: 16, uppercase: true))")
            }
            return scalar
        default:
            throw error("invalid escape '\\\(Character(Unicode.Scalar(byte)))'", at: index - 2)
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("incomplete \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - 48)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - 87)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - 55)
            default: throw error("invalid hex digit in a \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}

/// Eight bytes of text tested at once (the classic zero-byte and less-than tests over a
/// 64-bit word): each test marks the high bit of the bytes that pass it, the first byte
/// lowest. Bytes after the first marked one may be marked too (borrows carry upwards), so only
/// the lowest mark is exact: `mark.trailingZeroBitCount >> 3` is the offset of the first.
struct ByteWord {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080
    let bits: UInt64

    /// The eight bytes at `pointer` (read unaligned).
    @inline(__always) init(_ pointer: UnsafeRawPointer) {
        bits = UInt64(littleEndian: pointer.loadUnaligned(as: UInt64.self))
    }

    /// Quotes.
    @inline(__always) var quotes: UInt64 {
        let quote = bits ^ (Self.ones &* 0x22)
        return (quote &- Self.ones) & ~quote & Self.highs
    }

    /// Backslashes and control characters.
    @inline(__always) var needingEscapeOtherThanQuotes: UInt64 {
        let backslash = bits ^ (Self.ones &* 0x5C)
        return (((backslash &- Self.ones) & ~backslash) | ((bits &- Self.ones &* 0x20) & ~bits)) & Self.highs
    }

    /// Quotes, backslashes and control characters: what a JSON string cannot hold as it is.
    @inline(__always) var needingEscape: UInt64 { quotes | needingEscapeOtherThanQuotes }

    /// Bytes that are not ASCII digits: a byte is a digit when it reads 0...9 after the
    /// offset, and adding 0x76 sets the high bit of 10...0x7F; higher bytes have it already.
    @inline(__always) var nonDigits: UInt64 {
        let offset = bits ^ (Self.ones &* 0x30)
        return ((offset &+ Self.ones &* 0x76) | offset) & Self.highs
    }

    /// Bytes of multi-byte UTF-8 sequences.
    @inline(__always) var nonASCII: UInt64 { bits & Self.highs }
}
