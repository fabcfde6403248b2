import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Serializes responses into wire bytes. Adds `Content-Length`, `Date` and, when the
/// connection is to close, `Connection: close`.
package enum HTTPResponseWriter {
    /// Appends the serialized response to `output`. `isHead` omits the body but keeps its length.
    package static func write(
        _ response: HTTPResponse, to output: inout [UInt8], isHead: Bool = false, closing: Bool,
        version: HTTPVersion = .http1_1, date: String
    ) {
        output.append(contentsOf: version.text.utf8)
        output.append(ASCII.space)
        appendDecimal(response.status.code, to: &output)
        output.append(ASCII.space)
        output.append(contentsOf: response.status.reason.utf8)
        output.append(contentsOf: "\r\ndate: ".utf8)
        output.append(contentsOf: date.utf8)
        // The connection header is the writer's to decide (a handler asks for close by setting it).
        for (name, value) in response.headers where name != "connection" {
            output.append(contentsOf: "\r\n".utf8)
            output.append(contentsOf: name.utf8)
            output.append(contentsOf: ": ".utf8)
            output.append(contentsOf: value.utf8)
        }
        if response.status.code >= 200 && response.status.code != 204 && response.status.code != 304 {
            output.append(contentsOf: "\r\ncontent-length: ".utf8)
            appendDecimal(response.body.count, to: &output)
        }
        if closing {
            output.append(contentsOf: "\r\nconnection: close".utf8)
        } else if version == .http1_0 {
            output.append(contentsOf: "\r\nconnection: keep-alive".utf8)
        }
        output.append(contentsOf: "\r\n\r\n".utf8)
        if !isHead { output.append(contentsOf: response.body) }
    }

    static func appendDecimal(_ value: Int, to output: inout [UInt8]) {
        if value < 10 {
            output.append(UInt8(48 + value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[count] = UInt8(48 + rest % 10)
                rest /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { output.append(buffer[index]) }
        }
    }
}

/// The IMF-fixdate for the `Date` header (RFC 9110 §5.6.7). The loop refreshes it on each
/// tick (every 100 ms), so responses never read the clock themselves.
struct HTTPDateCache {
    private var second = -1
    private(set) var text = ""

    init() { refresh() }

    mutating func refresh() {
        let now = Int(csystem_unix_milliseconds() / 1000)
        if now != second {
            second = now
            text = Self.format(epochSeconds: now)
        }
    }

    static func format(epochSeconds: Int) -> String {
        var seconds = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
