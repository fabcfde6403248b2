/// `application/x-www-form-urlencoded` bodies and query strings (WHATWG URL, "urlencoded parsing").
package enum FormBody {
    /// The name/value pairs, percent-decoded, `+` as space; invalid UTF-8 is repaired. Takes
    /// an array, not any collection: a generic called from another module runs unspecialized.
    package static func pairs(_ bytes: [UInt8]) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        if bytes.isEmpty { return result }
        for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = part.firstIndex(of: UInt8(ascii: "="))
            let name = decode(equals.map { part[..<$0] } ?? part[...])
            let value = equals.map { decode(part[part.index(after: $0)...]) } ?? ""
            result.append((name, value))
        }
        return result
    }

    /// The pairs as an object of strings (a repeated name keeps its last value).
    package static func object(_ bytes: [UInt8]) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        for (name, value) in pairs(bytes) {
            if let index = members.firstIndex(where: { $0.key == name }) {
                members[index].value = .string(value)
            } else {
                members.append((name, .string(value)))
            }
        }
        return .object(members)
    }

    static func decode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "+") {
                output.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < input.count,
                let high = hex(input[index + 1]), let low = hex(input[index + 2])
            {
                output.append(high << 4 | low)
                index += 2
            } else {
                output.append(byte)
            }
            index += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - 55
        default: nil
        }
    }
}
