/// The `date` pipe step: parses the date and date-time forms docs/mapping.md lists and formats
/// them with HappyTalk's `Y m d H i s` tokens.
package struct DateStep: Sendable, Equatable {
    /// The output pattern, e.g. `Y-m-d`.
    package let format: String
    /// The zone that date-times with an offset are converted to (default Asia/Seoul).
    package let zone: TimeZoneRules

    package init(format: String, zone: TimeZoneRules) {
        self.format = format
        self.zone = zone
    }

    /// Civil date and time fields.
    struct Fields: Equatable {
        var year: Int
        var month: Int
        var day: Int
        var hour = 0
        var minute = 0
        var second = 0
    }

    /// The formatted date, or nil when the value is not a date this step understands.
    package func apply(_ value: JSONValue) -> String? {
        guard let fields = fields(of: value) else { return nil }
        return Self.format(fields, pattern: format)
    }

    func fields(of value: JSONValue) -> Fields? {
        switch value.resolved {
        case .number(let text):
            guard let number = Double(text), number.isFinite else { return nil }
            // Below 1e11 the number is seconds (until the year 5138); up to 1e14, milliseconds
            // (what JavaScript and chat platforms send).
            if abs(number) < 1e11 { return local(epochSeconds: Int(number.rounded(.down))) }
            if abs(number) < 1e14 { return local(epochSeconds: Int((number / 1000).rounded(.down))) }
            return nil
        case .string(let raw):
            let text = raw.trimmingWhitespace()
            let bytes = Array(text.utf8)
            guard !bytes.isEmpty, bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            if bytes.count == 10 && bytes.allSatisfy(Self.isDigit) {
                return local(epochSeconds: Int(text)!)
            }
            if bytes.count == 13 && bytes.allSatisfy(Self.isDigit) {
                return local(epochSeconds: Int(text)! / 1000)
            }
            if bytes.count == 8 && bytes.allSatisfy(Self.isDigit) {
                return Self.valid(Fields(year: Int(text.prefix(4))!, month: Int(text.dropFirst(4).prefix(2))!, day: Int(text.suffix(2))!))
            }
            return parseDateTime(bytes)
        default:
            return nil
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    /// `Y-m-d`, `Y/m/d`, `Y.m.d`, optionally followed by `T` or a space and `H:i[:s[.frac]]`
    /// and an offset (`Z`, `+09:00`, `+0900`, `+09`).
    private func parseDateTime(_ bytes: [UInt8]) -> Fields? {
        var index = 0
        func number(minDigits: Int, maxDigits: Int) -> Int? {
            var value = 0
            var count = 0
            while index < bytes.count, Self.isDigit(bytes[index]), count < maxDigits {
                value = value * 10 + Int(bytes[index] - 48)
                index += 1
                count += 1
            }
            return count >= minDigits ? value : nil
        }
        guard let year = number(minDigits: 4, maxDigits: 4), index < bytes.count else { return nil }
        let separator = bytes[index]
        guard separator == UInt8(ascii: "-") || separator == UInt8(ascii: "/") || separator == UInt8(ascii: ".") else {
            return nil
        }
        index += 1
        guard let month = number(minDigits: 1, maxDigits: 2), index < bytes.count, bytes[index] == separator else { return nil }
        index += 1
        guard let day = number(minDigits: 1, maxDigits: 2) else { return nil }
        var fields = Fields(year: year, month: month, day: day)
        if index == bytes.count || (separator == UInt8(ascii: ".") && index == bytes.count - 1 && bytes[index] == separator) {
            // A plain date is never shifted.
            return Self.valid(fields)
        }
        guard bytes[index] == UInt8(ascii: "T") || bytes[index] == UInt8(ascii: "t") || bytes[index] == UInt8(ascii: " ") else {
            return nil
        }
        index += 1
        guard let hour = number(minDigits: 2, maxDigits: 2), index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
            return nil
        }
        index += 1
        guard let minute = number(minDigits: 2, maxDigits: 2) else { return nil }
        var second = 0
        if index < bytes.count && bytes[index] == UInt8(ascii: ":") {
            index += 1
            guard let parsed = number(minDigits: 2, maxDigits: 2) else { return nil }
            second = parsed
            if index < bytes.count && (bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: ",")) {
                index += 1
                guard number(minDigits: 1, maxDigits: 9) != nil else { return nil }
            }
        }
        fields.hour = hour
        fields.minute = minute
        fields.second = min(second, 59)  // a leap second is reported as :59
        guard Self.valid(fields) != nil, second <= 60 else { return nil }
        if index == bytes.count {
            // A date-time without an offset is taken as already in the target zone.
            return fields
        }
        var offsetSeconds = 0
        if bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            index += 1
        } else if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(minDigits: 2, maxDigits: 2), hours <= 23 else { return nil }
            var minutes = 0
            if index < bytes.count && bytes[index] == UInt8(ascii: ":") { index += 1 }
            if index < bytes.count {
                guard let parsed = number(minDigits: 2, maxDigits: 2), parsed <= 59 else { return nil }
                minutes = parsed
            }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let epoch = Self.epochSeconds(fields) - offsetSeconds
        return local(epochSeconds: epoch)
    }

    /// The civil fields of an instant in this step's zone.
    func local(epochSeconds: Int) -> Fields {
        let offset = zone.offset(atEpochSeconds: epochSeconds)
        return Self.fields(epochSeconds: epochSeconds + offset)
    }

    static func valid(_ fields: Fields) -> Fields? {
        guard (1...12).contains(fields.month), fields.day >= 1, fields.day <= daysIn(month: fields.month, year: fields.year),
            (0...23).contains(fields.hour), (0...59).contains(fields.minute), (0...60).contains(fields.second)
        else { return nil }
        return fields
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Days from civil and back: Howard Hinnant's algorithms (proleptic Gregorian calendar).
    static func epochSeconds(_ fields: Fields) -> Int {
        let y = fields.month <= 2 ? fields.year - 1 : fields.year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = fields.month > 2 ? fields.month - 3 : fields.month + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + fields.day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146097 + dayOfEra - 719468
        return days * 86400 + fields.hour * 3600 + fields.minute * 60 + fields.second
    }

    static func fields(epochSeconds: Int) -> Fields {
        let days = Int((Double(epochSeconds) / 86400).rounded(.down))
        let secondsOfDay = epochSeconds - days * 86400
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let dayOfEra = z - era * 146097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return Fields(
            year: year, month: month, day: day, hour: secondsOfDay / 3600, minute: secondsOfDay % 3600 / 60,
            second: secondsOfDay % 60)
    }

    static func format(_ fields: Fields, pattern: String) -> String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var output = ""
        for character in pattern {
            switch character {
            case "Y": output += String(fields.year)
            case "m": output += two(fields.month)
            case "d": output += two(fields.day)
            case "H": output += two(fields.hour)
            case "i": output += two(fields.minute)
            case "s": output += two(fields.second)
            default: output.append(character)
            }
        }
        return output
    }
}
