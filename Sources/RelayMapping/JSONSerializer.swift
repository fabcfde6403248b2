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
        for (key, value) in fields {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            writeString(key, to: &output)
            output.append(UInt8(ascii: ":"))
            writeString(value, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends a quoted, escaped string; runs that need no escaping are copied whole.
    package static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
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
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index - 1]))
                runStart = index
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: [92, 34])
                case UInt8(ascii: "\\"): output.append(contentsOf: [92, 92])
                case 0x0A: output.append(contentsOf: [92, UInt8(ascii: "n")])
                case 0x0D: output.append(contentsOf: [92, UInt8(ascii: "r")])
                case 0x09: output.append(contentsOf: [92, UInt8(ascii: "t")])
                default:
                    output.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]])
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        output.append(UInt8(ascii: "\""))
    }
}
