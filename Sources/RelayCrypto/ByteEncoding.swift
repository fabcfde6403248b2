/// Base64 (RFC 4648 §4), base64url (§5) and hex, written out rather than borrowed from
/// Foundation so that decoding is strict and allocation-light.
package enum ByteEncoding {
    private static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlSafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Base64 with padding, or base64url without.
    package static func base64(_ bytes: [UInt8], urlSafe: Bool = false) -> String {
        let alphabet = urlSafe ? Self.urlSafe : standard
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output += [alphabet[Int(value >> 18)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], alphabet[Int(value & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let value = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            output += [alphabet[Int(value >> 18)], alphabet[Int(value >> 12 & 63)]]
            if rest == 2 { output.append(alphabet[Int(value >> 6 & 63)]) }
            if !urlSafe { output += Array(repeating: UInt8(ascii: "="), count: 3 - rest) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes base64 or base64url (either alphabet, padding optional); nil when malformed.
    package static func decodeBase64(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        // Sextets are gathered four at a time (24 bits, three bytes) in one pass.
        var group: UInt32 = 0
        var sextets = 0
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return nil }
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - 65
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - 71
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte + 4
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            default: return nil
            }
            group = group << 6 | UInt32(value)
            sextets += 1
            if sextets & 3 == 0 {
                output.append(UInt8(group >> 16))
                output.append(UInt8(group >> 8 & 255))
                output.append(UInt8(group & 255))
                group = 0
            }
        }
        guard sextets % 4 != 1, padding <= 2, padding == 0 || (sextets + padding) % 4 == 0 else { return nil }
        switch sextets % 4 {
        case 2: output.append(UInt8(group >> 4 & 255))
        case 3:
            output.append(UInt8(group >> 10 & 255))
            output.append(UInt8(group >> 2 & 255))
        default: break
        }
        return output
    }

    /// Lower-case hex.
    package static func hex(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 2)
        for byte in bytes { output += [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]] }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes hex of either case; nil when malformed.
    package static func decodeHex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            output.append(high << 4 | low)
            index += 2
        }
        return output
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - 55
        default: nil
        }
    }
}
