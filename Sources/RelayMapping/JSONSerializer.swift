/// Writes JSON: compact, members in order, numbers as their source text, and strings
/// escaped minimally (RFC 8259 §7), non-ASCII kept as UTF-8.
package enum JSONSerializer {
    /// The compact JSON text of a value.
    package static func string(_ value: JSONValue) -> String {
        var output: [UInt8] = []
        write(value, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends a value's compact JSON to `output`.
    package static func write(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let digits): output.append(contentsOf: digits.utf8)
        case .string(let text): writeString(text, to: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (offset, item) in items.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                write(item, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .tape(let node):
            write(node.value, to: &output)
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (offset, member) in members.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// The compact JSON text of a flat object of string fields, in order.
    package static func objectText(_ fields: some Sequence<(key: String, value: String)>) -> String {
        var output: [UInt8] = []
        writeObject(fields, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends a flat object of string fields, in order: the shape of a `set_user_info` body.
    package static func writeObject(_ fields: some Sequence<(key: String, value: String)>, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in fields { writeMember(key, value, first: &first, to: &output) }
        output.append(UInt8(ascii: "}"))
    }

    /// A flat object of string fields, in order, with `leading` first when given: the shape
    /// of a `set_user_info` body and of a stored call. Written in one pass into storage sized
    /// for the worst case (every byte escaped as `\u00XX`).
    package static func flatObject(leading: CallField? = nil, _ fields: [CallField]) -> [UInt8] {
        // Braces; per field two pairs of quotes, a colon and a comma; each byte escaped at most to six.
        var capacity = 2 + fields.count * 6
        if let leading { capacity += 6 * (leading.name.utf8.count + leading.value.utf8.count) + 6 }
        for field in fields { capacity += 6 * (field.name.utf8.count + field.value.utf8.count) }
        return [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            var cursor = buffer.baseAddress!
            cursor.put(UInt8(ascii: "{"))
            var first = true
            if let leading { writeMember(leading.name, leading.value, first: &first, to: &cursor) }
            for field in fields { writeMember(field.name, field.value, first: &first, to: &cursor) }
            cursor.put(UInt8(ascii: "}"))
            initialized = cursor - buffer.baseAddress!
            precondition(initialized <= capacity, "a flat object outgrew its worst case")
        }
    }

    /// Appends `"key":"value"` to an object written member by member, after a comma unless
    /// `first` (which it clears). Not generic: a generic writer called from another module runs
    /// unspecialized, looking up type metadata at run time for every call.
    package static func appendMember(_ key: String, _ value: String, first: inout Bool, to output: inout [UInt8]) {
        writeMember(key, value, first: &first, to: &output)
    }

    /// `"key":"value"` of a flat object, after a comma unless it is the first.
    @inline(__always) private static func writeMember(_ key: String, _ value: String, first: inout Bool, to sink: inout some ByteSink) {
        if !first { sink.put(UInt8(ascii: ",")) }
        first = false
        writeQuoted(key, to: &sink)
        sink.put(UInt8(ascii: ":"))
        writeQuoted(value, to: &sink)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends a quoted, escaped string; runs that need no escaping are copied whole.
    package static func writeString(_ text: String, to output: inout [UInt8]) {
        writeQuoted(text, to: &output)
    }

    /// Writes `text` quoted and escaped: at most six bytes a byte, and the quotes.
    static func writeQuoted(_ text: String, to sink: inout some ByteSink) {
        sink.put(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            var index = 0
            // Eight bytes at a time to the next one that needs escaping (most text has none;
            // non-ASCII bytes go out as they are).
            while index < bytes.count {
                if index &+ 8 <= bytes.count {
                    let marked = ByteWord(bytes.baseAddress! + index).needingEscape
                    if marked == 0 {
                        index &+= 8
                        continue
                    }
                    index &+= marked.trailingZeroBitCount >> 3
                }
                let byte = bytes[index]
                index += 1
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                sink.put(UnsafeBufferPointer(rebasing: bytes[runStart..<index - 1]))
                runStart = index
                sink.put(92)
                switch byte {
                case 0x0A: sink.put(UInt8(ascii: "n"))
                case 0x0D: sink.put(UInt8(ascii: "r"))
                case 0x09: sink.put(UInt8(ascii: "t"))
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): sink.put(byte)
                default:
                    sink.put(UInt8(ascii: "u"))
                    sink.put(48)
                    sink.put(48)
                    sink.put(hexDigits[Int(byte >> 4)])
                    sink.put(hexDigits[Int(byte & 15)])
                }
            }
            sink.put(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        sink.put(UInt8(ascii: "\""))
    }
}

/// Where the JSON writer puts bytes: an array it appends to, or storage it was sized for.
protocol ByteSink {
    mutating func put(_ byte: UInt8)
    mutating func put(_ bytes: UnsafeBufferPointer<UInt8>)
}

extension [UInt8]: ByteSink {
    @inline(__always) mutating func put(_ byte: UInt8) { append(byte) }
    @inline(__always) mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) { append(contentsOf: bytes) }
}

/// Storage sized beforehand, written from a cursor that moves past what it writes.
extension UnsafeMutablePointer<UInt8>: ByteSink {
    /// Writes a byte and moves past it.
    @inline(__always) mutating func put(_ byte: UInt8) {
        pointee = byte
        self += 1
    }

    /// Writes bytes and moves past them.
    @inline(__always) mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        update(from: base, count: bytes.count)
        self += bytes.count
    }
}
