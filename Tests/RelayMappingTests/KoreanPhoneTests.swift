import Testing

@testable import RelayMapping

/// `phone_kr` reads the number by byte. The String-based version it replaced (as of
/// `33e8849`) is kept here as the reference: both must agree on any text.
@Suite struct KoreanPhoneTests {
    enum Reference {
        static func normalize(_ text: String) -> String? {
            let folded = NFKC.normalize(text)
            var digits = ""
            var sawPlus = false
            let scalars = Array(folded.unicodeScalars)
            var index = 0
            while index < scalars.count {
                let scalar = scalars[index]
                switch scalar {
                case "0"..."9":
                    digits.unicodeScalars.append(scalar)
                case "+":
                    guard digits.isEmpty, !sawPlus else { return nil }
                    sawPlus = true
                case "(":
                    // "+82 (0)10 …": an optional trunk zero written in parentheses after the country code.
                    if index + 2 < scalars.count, scalars[index + 1] == "0", scalars[index + 2] == ")", digits == "82" {
                        index += 3
                        continue
                    }
                case " ", "-", ".", ")", "/", "\u{00A0}", "\u{3000}", "\t":
                    break
                default:
                    return nil
                }
                index += 1
            }
            var national: String
            if sawPlus {
                guard digits.hasPrefix("82") else { return nil }
                national = String(digits.dropFirst(2))
            } else if digits.hasPrefix("0082") {
                national = String(digits.dropFirst(4))
            } else if digits.hasPrefix("82") && !digits.hasPrefix("0") && (digits.count == 11 || digits.count == 12) {
                national = String(digits.dropFirst(2))
            } else {
                national = digits
            }
            if national.hasPrefix("0") {
                // Already domestic, or "+82 010…" written with its trunk zero.
            } else if sawPlus || digits.hasPrefix("0082") || national.count != digits.count {
                national = "0" + national
            }
            return isValidDomestic(national) ? national : nil
        }

        /// Whether digits form a plausible Korean number: mobile `01X`, Seoul `02`, area codes
        /// `031`–`064`, `070` internet phones, `050X`, `080` toll-free, or an 8-digit `1XXX` line.
        static func isValidDomestic(_ number: String) -> Bool {
            let count = number.count
            let bytes = Array(number.utf8)
            guard bytes.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return false }
            if bytes.first == UInt8(ascii: "1") {
                // 15XX, 16XX, 18XX representative numbers: 8 digits.
                return count == 8 && [UInt8(ascii: "5"), UInt8(ascii: "6"), UInt8(ascii: "8")].contains(bytes[1])
            }
            guard bytes.first == UInt8(ascii: "0"), count >= 9 else { return false }
            if number.hasPrefix("010") { return count == 11 }
            if ["011", "016", "017", "018", "019"].contains(where: number.hasPrefix) { return count == 10 || count == 11 }
            if number.hasPrefix("02") { return count == 9 || count == 10 }
            if number.hasPrefix("070") || number.hasPrefix("080") { return count == 10 || count == 11 }
            if number.hasPrefix("050") { return count == 11 || count == 12 }
            let areaCodes = ["031", "032", "033", "041", "042", "043", "044", "051", "052", "053", "054", "055", "061", "062", "063", "064"]
            if areaCodes.contains(where: number.hasPrefix) { return count == 10 || count == 11 }
            return false
        }
    }

    @Test func theByteVersionAgreesWithTheStringVersion() {
        let pieces = [
            "0", "1", "2", "5", "6", "7", "8", "9", "82", "0082", "010", "02", "031", "070", "050", "15", "+", "(", ")", "(0)", " ",
            "-", ".", "/", "\u{00A0}", "\u{3000}", "\t", "０", "８", "２", "＋", "x", "한", "e\u{301}",
        ]
        var generator = SystemRandomNumberGenerator()
        var disagreements: [String] = []
        var numbers = 0
        for _ in 0..<200_000 {
            let text = (0..<Int.random(in: 0...9, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let number = KoreanPhone.normalize(text)
            if number != Reference.normalize(text) { disagreements.append(text) }
            if number != nil { numbers += 1 }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
        // Enough of the texts are numbers for the comparison to mean something.
        #expect(numbers > 1000, "\(numbers) numbers")
    }
}
