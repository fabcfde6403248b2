#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 timestamps in UTC with milliseconds (`2026-11-29T04:05:00.000Z`).
package enum RFC3339 {
    package static func timestamp(milliseconds: Int) -> String {
        let millisecond = ((milliseconds % 1000) + 1000) % 1000
        var seconds = time_t((milliseconds - millisecond) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Written by byte into one string: every webhook's document carries its time.
        let year = Int(parts.tm_year) + 1900
        return String(unsafeUninitializedCapacity: 32) { buffer in
            var end = 0
            func put(_ value: Int, digits: Int, then separator: UInt8?) {
                for place in stride(from: digits - 1, through: 0, by: -1) {
                    var rest = value
                    for _ in 0..<place { rest /= 10 }
                    buffer[end] = UInt8(ascii: "0") + UInt8(rest % 10)
                    end += 1
                }
                if let separator {
                    buffer[end] = separator
                    end += 1
                }
            }
            // Years outside 0...9999 (only a damaged record holds one) keep every digit and sign.
            if year < 0 {
                buffer[end] = UInt8(ascii: "-")
                end += 1
            }
            let magnitude = Int(year.magnitude)
            put(magnitude, digits: magnitude > 9999 ? String(magnitude).utf8.count : 4, then: UInt8(ascii: "-"))
            put(Int(parts.tm_mon) + 1, digits: 2, then: UInt8(ascii: "-"))
            put(Int(parts.tm_mday), digits: 2, then: UInt8(ascii: "T"))
            put(Int(parts.tm_hour), digits: 2, then: UInt8(ascii: ":"))
            put(Int(parts.tm_min), digits: 2, then: UInt8(ascii: ":"))
            put(Int(parts.tm_sec), digits: 2, then: UInt8(ascii: "."))
            put(millisecond, digits: 3, then: UInt8(ascii: "Z"))
            return end
        }
    }
}
