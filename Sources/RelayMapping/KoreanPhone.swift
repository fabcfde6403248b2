import FoundationEssentials

/// Korean phone numbers in HappyTalk's digits-only form (`01012345678`).
package enum KoreanPhone {
    /// Normalises any common writing of a Korean number (`+82 10-1234-5678`, `0082…`,
    /// `(010) 1234 5678`, full-width digits, `+82 (0)10…`) to its domestic digits, or nil
    /// when the value is not a Korean number. Never invents a number.
    package static func normalize(_ text: String) -> String? {
        let folded = NFKC.normalize(text)
        // The number is gathered and checked as ASCII bytes: String's `count`, `hasPrefix` and
        // appends go by Character, and this runs on every webhook whose mapping has phone_kr.
        var digits: [UInt8] = []
        digits.reserveCapacity(16)
        var sawPlus = false
        let scalars = folded.unicodeScalars
        var index = scalars.startIndex
        while index < scalars.endIndex {
            let scalar = scalars[index]
            switch scalar {
            case "0"..."9":
                digits.append(UInt8(scalar.value))
            case "+":
                guard digits.isEmpty, !sawPlus else { return nil }
                sawPlus = true
            case "(":
                // "+82 (0)10 …": an optional trunk zero written in parentheses after the country code.
                if digits.elementsEqual("82".utf8) {
                    let zero = scalars.index(after: index)
                    if zero < scalars.endIndex, scalars[zero] == "0" {
                        let close = scalars.index(after: zero)
                        if close < scalars.endIndex, scalars[close] == ")" {
                            index = scalars.index(after: close)
                            continue
                        }
                    }
                }
            case " ", "-", ".", ")", "/", "\u{00A0}", "\u{3000}", "\t":
                break
            default:
                return nil
            }
            index = scalars.index(after: index)
        }
        let international = digits.starts(with: "0082".utf8)
        let national: ArraySlice<UInt8>
        if sawPlus {
            guard digits.starts(with: "82".utf8) else { return nil }
            national = digits.dropFirst(2)
        } else if international {
            national = digits.dropFirst(4)
        } else if digits.starts(with: "82".utf8) && (digits.count == 11 || digits.count == 12) {
            national = digits.dropFirst(2)
        } else {
            national = digits[...]
        }
        var number: [UInt8] = []
        number.reserveCapacity(national.count + 1)
        // Already domestic, or "+82 010…" written with its trunk zero: no zero is added.
        if national.first != UInt8(ascii: "0") && (sawPlus || international || national.count != digits.count) {
            number.append(UInt8(ascii: "0"))
        }
        number += national
        return isValidDomestic(number) ? String(decoding: number, as: UTF8.self) : nil
    }

    /// Whether digits form a plausible Korean number: mobile `01X`, Seoul `02`, area codes
    /// `031`–`064`, `070` internet phones, `050X`, `080` toll-free, or an 8-digit `1XXX` line.
    static func isValidDomestic(_ number: [UInt8]) -> Bool {
        let count = number.count
        guard number.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return false }
        func starts(_ prefix: StaticString) -> Bool {
            number.starts(with: UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
        }
        if number.first == UInt8(ascii: "1") {
            // 15XX, 16XX, 18XX representative numbers: 8 digits.
            return count == 8 && (number[1] == UInt8(ascii: "5") || number[1] == UInt8(ascii: "6") || number[1] == UInt8(ascii: "8"))
        }
        guard number.first == UInt8(ascii: "0"), count >= 9 else { return false }
        if starts("010") { return count == 11 }
        if starts("011") || starts("016") || starts("017") || starts("018") || starts("019") { return count == 10 || count == 11 }
        if starts("02") { return count == 9 || count == 10 }
        if starts("070") || starts("080") { return count == 10 || count == 11 }
        if starts("050") { return count == 11 || count == 12 }
        let isArea =
            starts("031") || starts("032") || starts("033") || starts("041") || starts("042") || starts("043") || starts("044")
            || starts("051") || starts("052") || starts("053") || starts("054") || starts("055") || starts("061") || starts("062")
            || starts("063") || starts("064")
        return isArea && (count == 10 || count == 11)
    }
}
