import FoundationEssentials

/// A time zone's offsets from UTC, read from the system's zone database (`/usr/share/zoneinfo`,
/// or `$TZDIR`, in the TZif format of RFC 8536): its transitions, then the POSIX rule its
/// file ends with for the years after them. A class, so that a `date` step holds one
/// reference.
package final class TimeZoneRules: Sendable, Equatable {
    /// The IANA name, e.g. `Asia/Seoul`.
    package let identifier: String
    private let transitions: [Int]
    /// The offset in force from each transition on.
    private let offsets: [Int]
    /// The offset before the first transition.
    private let initialOffset: Int
    /// The rule after the last transition; nil when the last offset holds for ever.
    private let rule: PosixRule?

    package static func == (lhs: TimeZoneRules, rhs: TimeZoneRules) -> Bool { lhs.identifier == rhs.identifier }

    /// The zone named `identifier`, or nil when the zone database has no such zone. UTC and
    /// Asia/Seoul (the default, `+09:00` since 1988) are known without the database.
    package init?(identifier: String, directory: String? = nil) {
        self.identifier = identifier
        let folder = directory ?? Self.databaseFolder
        // Names are paths in the database: nothing may climb out of it.
        let valid = !identifier.isEmpty && !identifier.hasPrefix("/") && !identifier.split(separator: "/").contains("..")
        if valid, let data = FileManager.default.contents(atPath: FilePath.join(folder, identifier)),
            let parsed = Self.parse(Array(data))
        {
            (transitions, offsets, initialOffset, rule) = parsed
            return
        }
        let fixed: [String: Int] = ["UTC": 0, "Etc/UTC": 0, "GMT": 0, "Etc/GMT": 0, "Asia/Seoul": 9 * 3600]
        guard let offset = fixed[identifier] else { return nil }
        (transitions, offsets, initialOffset, rule) = ([], [], offset, nil)
    }

    /// The zone database: `$TZDIR`, or Debian's `tzdata` folder.
    static var databaseFolder: String { ProcessInfo.processInfo.environment["TZDIR"] ?? "/usr/share/zoneinfo" }

    /// Why there is no zone named `identifier`: the database lacks it, or this machine has no
    /// database at all (where only the zones known without it work).
    package static func unknownZoneMessage(_ identifier: String, directory: String? = nil) -> String {
        let folder = directory ?? databaseFolder
        guard FilePath.isDirectory(folder) == true else {
            return "unknown time zone \"\(identifier)\": this machine has no zone database at \(folder) (install tzdata, or set TZDIR); without it only \"Asia/Seoul\" and \"UTC\" are known"
        }
        return "unknown time zone \"\(identifier)\" (use an IANA name such as \"Asia/Seoul\" or \"UTC\")"
    }

    /// Seconds to add to UTC to get the zone's local time at `epochSeconds`.
    package func offset(atEpochSeconds epochSeconds: Int) -> Int {
        guard let first = transitions.first, epochSeconds >= first else { return initialOffset }
        if let rule, epochSeconds >= transitions[transitions.count - 1] { return rule.offset(atEpochSeconds: epochSeconds) }
        // The last transition at or before the instant.
        var low = 0
        var high = transitions.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if transitions[middle] <= epochSeconds { low = middle } else { high = middle - 1 }
        }
        return offsets[low]
    }

    /// A TZif file's transitions, their offsets, the offset before them and the footer's rule.
    static func parse(_ bytes: [UInt8]) -> (transitions: [Int], offsets: [Int], initial: Int, rule: PosixRule?)? {
        struct Reader {
            let bytes: [UInt8]
            var index = 0
            mutating func integer(_ width: Int) -> Int? {
                guard index + width <= bytes.count else { return nil }
                var value: UInt64 = 0
                for byte in bytes[index..<(index + width)] { value = value << 8 | UInt64(byte) }
                index += width
                // Two's complement of the field's width.
                let shift = UInt64(64 - width * 8)
                return Int(Int64(bitPattern: value << shift) >> Int64(shift))
            }
        }
        /// A header's counts (RFC 8536, 3.1), and the length of the data block after it.
        struct Header {
            let version: UInt8
            let isUT, isStd, leaps, times, types, chars: Int
            func blockLength(timeWidth: Int) -> Int { times * (timeWidth + 1) + types * 6 + chars + leaps * (timeWidth + 4) + isStd + isUT }
        }
        var reader = Reader(bytes: bytes)
        func readHeader() -> Header? {
            guard reader.index + 44 <= bytes.count, bytes[reader.index..<(reader.index + 4)].elementsEqual("TZif".utf8) else { return nil }
            let version = bytes[reader.index + 4]
            reader.index += 20
            var counts: [Int] = []
            for _ in 0..<6 {
                guard let count = reader.integer(4), count >= 0 else { return nil }
                counts.append(count)
            }
            return Header(version: version, isUT: counts[0], isStd: counts[1], leaps: counts[2], times: counts[3], types: counts[4], chars: counts[5])
        }
        guard var header = readHeader() else { return nil }
        var timeWidth = 4
        if header.version >= UInt8(ascii: "2") {
            // Skip the 32-bit block: version 2 files repeat it with 64-bit times.
            reader.index += header.blockLength(timeWidth: 4)
            guard let second = readHeader() else { return nil }
            header = second
            timeWidth = 8
        }
        guard header.types > 0 else { return nil }
        let blockStart = reader.index
        var transitions: [Int] = []
        for _ in 0..<header.times {
            guard let time = reader.integer(timeWidth) else { return nil }
            transitions.append(time)
        }
        var typeIndexes: [Int] = []
        for _ in 0..<header.times {
            guard let type = reader.integer(1).map({ $0 & 0xFF }), type < header.types else { return nil }
            typeIndexes.append(type)
        }
        var typeOffsets: [Int] = []
        for _ in 0..<header.types {
            guard let offset = reader.integer(4) else { return nil }
            typeOffsets.append(offset)
            reader.index += 2
        }
        reader.index = blockStart + header.blockLength(timeWidth: timeWidth)
        var rule: PosixRule?
        if timeWidth == 8, reader.index < bytes.count, bytes[reader.index] == 0x0A,
            let end = bytes[(reader.index + 1)...].firstIndex(of: 0x0A), end > reader.index + 1
        {
            rule = PosixRule(String(decoding: bytes[(reader.index + 1)..<end], as: UTF8.self))
        }
        guard reader.index <= bytes.count else { return nil }
        return (transitions, typeIndexes.map { typeOffsets[$0] }, typeOffsets[0], rule)
    }
}

/// A POSIX `TZ` rule such as `KST-9` or `EST5EDT,M3.2.0,M11.1.0`: a standard offset, and
/// optionally a daylight-saving offset with the days and times it starts and ends.
struct PosixRule: Sendable {
    let standardOffset: Int
    let daylight: (offset: Int, start: Change, end: Change)?

    /// A day of the year and a local time of day.
    struct Change: Sendable {
        enum Day: Sendable {
            /// `Jn`: 1…365, February 29 never counted.
            case julian(Int)
            /// `n`: 0…365, February 29 counted.
            case zeroBased(Int)
            /// `Mm.w.d`: weekday d (0 = Sunday) of week w (5 = the last) of month m.
            case weekday(month: Int, week: Int, weekday: Int)
        }
        let day: Day
        let seconds: Int
    }

    init?(_ text: String) {
        var scalars = Substring(text)
        func name() -> Bool {
            if scalars.first == "<" {
                guard let close = scalars.firstIndex(of: ">") else { return false }
                scalars = scalars[scalars.index(after: close)...]
                return true
            }
            let letters = scalars.prefix(while: { $0.isLetter })
            guard letters.count >= 3 else { return false }
            scalars = scalars.dropFirst(letters.count)
            return true
        }
        /// The digits that follow, as a number; nil when none do.
        func number() -> Int? {
            let digits = scalars.prefix(while: { $0.isASCII && $0.isNumber })
            scalars = scalars.dropFirst(digits.count)
            return Int(digits)
        }
        // `[+-]hh[:mm[:ss]]`, in seconds.
        func time() -> Int? {
            var sign = 1
            if let first = scalars.first, first == "+" || first == "-" {
                sign = first == "-" ? -1 : 1
                scalars = scalars.dropFirst()
            }
            var total = 0
            for (index, unit) in [3600, 60, 1].enumerated() {
                if index > 0 {
                    guard scalars.first == ":" else { break }
                    scalars = scalars.dropFirst()
                }
                guard let value = number() else { return nil }
                total += value * unit
            }
            return sign * total
        }
        func change() -> Change? {
            var day: Change.Day
            switch scalars.first {
            case "J":
                scalars = scalars.dropFirst()
                guard let value = number(), (1...365).contains(value) else { return nil }
                day = .julian(value)
            case "M":
                scalars = scalars.dropFirst()
                guard let month = number(), (1...12).contains(month), scalars.first == "." else { return nil }
                scalars = scalars.dropFirst()
                guard let week = number(), (1...5).contains(week), scalars.first == "." else { return nil }
                scalars = scalars.dropFirst()
                guard let weekday = number(), (0...6).contains(weekday) else { return nil }
                day = .weekday(month: month, week: week, weekday: weekday)
            default:
                guard let value = number(), (0...365).contains(value) else { return nil }
                day = .zeroBased(value)
            }
            var seconds = 7200
            if scalars.first == "/" {
                scalars = scalars.dropFirst()
                guard let parsed = time() else { return nil }
                seconds = parsed
            }
            return Change(day: day, seconds: seconds)
        }
        guard name(), let standard = time() else { return nil }
        // POSIX offsets count west of Greenwich: `KST-9` is UTC+9.
        standardOffset = -standard
        guard !scalars.isEmpty else {
            daylight = nil
            return
        }
        guard name() else { return nil }
        var daylightOffset = standardOffset + 3600
        if let first = scalars.first, first != "," {
            guard let parsed = time() else { return nil }
            daylightOffset = -parsed
        }
        var start = Change(day: .weekday(month: 3, week: 2, weekday: 0), seconds: 7200)
        var end = Change(day: .weekday(month: 11, week: 1, weekday: 0), seconds: 7200)
        if scalars.first == "," {
            scalars = scalars.dropFirst()
            guard let parsedStart = change(), scalars.first == "," else { return nil }
            scalars = scalars.dropFirst()
            guard let parsedEnd = change() else { return nil }
            (start, end) = (parsedStart, parsedEnd)
        }
        guard scalars.isEmpty else { return nil }
        daylight = (daylightOffset, start, end)
    }

    func offset(atEpochSeconds epochSeconds: Int) -> Int {
        guard let daylight else { return standardOffset }
        let year = DateStep.fields(epochSeconds: epochSeconds + standardOffset).year
        // A change's time is local: the start in standard time, the end in daylight time.
        let start = Self.epochSeconds(of: daylight.start, year: year) - standardOffset
        let end = Self.epochSeconds(of: daylight.end, year: year) - daylight.offset
        let inDaylight = start < end ? (start <= epochSeconds && epochSeconds < end) : !(end <= epochSeconds && epochSeconds < start)
        return inDaylight ? daylight.offset : standardOffset
    }

    /// The change's instant in `year`, as if local time were UTC.
    static func epochSeconds(of change: Change, year: Int) -> Int {
        let january1 = DateStep.epochSeconds(DateStep.Fields(year: year, month: 1, day: 1)) / 86400
        var day: Int
        switch change.day {
        case .julian(let number):
            day = january1 + number - 1 + (DateStep.isLeap(year) && number >= 60 ? 1 : 0)
        case .zeroBased(let number):
            day = january1 + number
        case .weekday(let month, let week, let weekday):
            let first = DateStep.epochSeconds(DateStep.Fields(year: year, month: month, day: 1)) / 86400
            // 1970-01-01 was a Thursday (4).
            let firstWeekday = ((first + 4) % 7 + 7) % 7
            var dayOfMonth = 1 + (weekday - firstWeekday + 7) % 7 + (week - 1) * 7
            if dayOfMonth > DateStep.daysIn(month: month, year: year) { dayOfMonth -= 7 }
            day = first + dayOfMonth - 1
        }
        return day * 86400 + change.seconds
    }
}
