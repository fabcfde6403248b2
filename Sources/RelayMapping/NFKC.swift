/// Unicode normalization form KC (compatibility decomposition, then canonical composition):
/// full-width digits and letters become ASCII, `①` becomes `1`, Hangul stays composed. The
/// tables (NFKCData.swift) are generated from the Unicode Character Database.
package enum NFKC {
    /// Builds the tables now (they are otherwise built on first use).
    package static func prepare() {
        _ = Tables.shared
    }

    /// `text` in NFKC.
    package static func normalize(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        let tables = Tables.shared
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if Hangul.syllables.contains(scalar.value) {
                Hangul.decompose(scalar.value, into: &scalars)
            } else if let range = tables.decompositions[scalar.value] {
                scalars += tables.decomposed[range]
            } else {
                scalars.append(scalar)
            }
        }
        orderCanonically(&scalars, tables)
        compose(&scalars, tables)
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars)
        return String(result)
    }

    /// Sorts each run of combining marks by combining class, keeping the order of equal ones.
    private static func orderCanonically(_ scalars: inout [Unicode.Scalar], _ tables: Tables) {
        var index = 1
        while index < scalars.count {
            let mark = tables.combiningClass(scalars[index])
            var position = index
            if mark != 0 {
                while position > 0 {
                    let previous = tables.combiningClass(scalars[position - 1])
                    guard previous > mark else { break }
                    scalars.swapAt(position, position - 1)
                    position -= 1
                }
            }
            index += 1
        }
    }

    /// Canonical composition (Unicode's algorithm): each scalar that follows a starter,
    /// unblocked, and forms a primary composite with it replaces the starter.
    private static func compose(_ scalars: inout [Unicode.Scalar], _ tables: Tables) {
        guard !scalars.isEmpty else { return }
        var starter: Int? = tables.combiningClass(scalars[0]) == 0 ? 0 : nil
        var lastClass: Int = starter == nil ? 256 : 0
        var output = 1
        for index in 1..<scalars.count {
            let scalar = scalars[index]
            let currentClass = Int(tables.combiningClass(scalar))
            if let starterIndex = starter {
                let blocked = output - 1 != starterIndex && (lastClass == 0 || lastClass >= currentClass)
                if !blocked, let composite = composite(scalars[starterIndex], scalar, tables) {
                    scalars[starterIndex] = composite
                    continue
                }
            }
            if currentClass == 0 { starter = output }
            lastClass = currentClass
            scalars[output] = scalar
            output += 1
        }
        scalars.removeSubrange(output...)
    }

    private static func composite(_ first: Unicode.Scalar, _ second: Unicode.Scalar, _ tables: Tables) -> Unicode.Scalar? {
        if let hangul = Hangul.compose(first.value, second.value) { return Unicode.Scalar(hangul) }
        return tables.compositions[UInt64(first.value) << 32 | UInt64(second.value)]
    }

    /// The conjoining jamo arithmetic of Unicode's chapter 3.12.
    private enum Hangul {
        static let syllables: ClosedRange<UInt32> = 0xAC00...0xD7A3
        static let leading: UInt32 = 0x1100, vowel: UInt32 = 0x1161, trailing: UInt32 = 0x11A7
        static let vowels: UInt32 = 21, trailings: UInt32 = 28

        static func decompose(_ syllable: UInt32, into scalars: inout [Unicode.Scalar]) {
            let index = syllable - syllables.lowerBound
            scalars.append(Unicode.Scalar(leading + index / (vowels * trailings))!)
            scalars.append(Unicode.Scalar(vowel + index % (vowels * trailings) / trailings)!)
            if index % trailings != 0 { scalars.append(Unicode.Scalar(trailing + index % trailings)!) }
        }

        static func compose(_ first: UInt32, _ second: UInt32) -> UInt32? {
            if (leading..<leading + 19).contains(first), (vowel..<vowel + vowels).contains(second) {
                return syllables.lowerBound + ((first - leading) * vowels + second - vowel) * trailings
            }
            if syllables.contains(first), (first - syllables.lowerBound) % trailings == 0,
                (trailing + 1..<trailing + trailings).contains(second)
            {
                return first + second - trailing
            }
            return nil
        }
    }

    /// The generated tables, read from their text on first use.
    private final class Tables: Sendable {
        static let shared = Tables()
        /// Where each decomposable scalar's decomposition lies in `decomposed`.
        let decompositions: [UInt32: Range<Int>]
        let decomposed: [Unicode.Scalar]
        /// Each pair (first << 32 | second) that composes, and what it composes to.
        let compositions: [UInt64: Unicode.Scalar]
        /// The canonical combining classes that are not 0.
        let combiningClasses: [UInt32: UInt8]

        func combiningClass(_ scalar: Unicode.Scalar) -> UInt8 {
            // Below U+0300 no scalar combines.
            scalar.value < 0x300 ? 0 : combiningClasses[scalar.value] ?? 0
        }

        private init() {
            func scalars(_ text: Substring) -> [Unicode.Scalar] {
                text.split(separator: " ").map { Unicode.Scalar(UInt32($0, radix: 16)!)! }
            }
            var decompositions: [UInt32: Range<Int>] = [:]
            var decomposed: [Unicode.Scalar] = []
            for (scalar, value) in Self.entries(NFKC.decompositionData) {
                let parts = scalars(value)
                decompositions[scalar] = decomposed.count..<decomposed.count + parts.count
                decomposed += parts
            }
            var compositions: [UInt64: Unicode.Scalar] = [:]
            for (scalar, value) in Self.entries(NFKC.compositionData) {
                let pair = scalars(value)
                compositions[UInt64(pair[0].value) << 32 | UInt64(pair[1].value)] = Unicode.Scalar(scalar)!
            }
            var combiningClasses: [UInt32: UInt8] = [:]
            for (scalar, value) in Self.entries(NFKC.combiningClassData) { combiningClasses[scalar] = UInt8(value)! }
            self.combiningClasses = combiningClasses
            self.decompositions = decompositions
            self.decomposed = decomposed
            self.compositions = compositions
        }

        /// `A0:20,A8:20 308,…`: each entry's scalar (hexadecimal) and the text after its colon.
        private static func entries(_ data: String) -> [(UInt32, Substring)] {
            data.split(whereSeparator: { $0 == "," || $0 == "\n" }).map { entry in
                let colon = entry.firstIndex(of: ":")!
                return (UInt32(entry[..<colon], radix: 16)!, entry[entry.index(after: colon)...])
            }
        }
    }
}
