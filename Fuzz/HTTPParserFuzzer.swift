// libFuzzer target for the HTTP/1.1 parsers. Beyond "no crash", it checks a property:
// feeding the input whole and feeding it in two pieces (split where the first byte says)
// produce the same events or the same error.

func events(_ chunks: [[UInt8]]) -> (events: [HTTPRequestParser.Event], error: HTTPParseError?) {
    var parser = HTTPRequestParser(limits: .init(maxHeaderBytes: 2048, maxBodyBytes: 4096, maxHeaderCount: 32))
    var all: [HTTPRequestParser.Event] = []
    for chunk in chunks {
        do {
            all += try parser.feed(chunk)
        } catch {
            return (coalesced(all), error)
        }
        if let error = parser.error { return (coalesced(all), error) }
    }
    return (coalesced(all), nil)
}

/// Body events may be split differently; join adjacent ones before comparing.
func coalesced(_ events: [HTTPRequestParser.Event]) -> [HTTPRequestParser.Event] {
    var result: [HTTPRequestParser.Event] = []
    for event in events {
        if case .body(let more) = event, case .body(let previous)? = result.last {
            result[result.count - 1] = .body(previous + more)
        } else {
            result.append(event)
        }
    }
    return result
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = input.first else { return 0 }
    let split = Int(first) % max(1, input.count)
    let whole = events([input])
    let pieces = events([Array(input[..<split]), Array(input[split...])])
    if whole.events != pieces.events || whole.error != pieces.error {
        fatalError("split at \(split) changed the result: \(whole) vs \(pieces)")
    }
    var response = HTTPResponseParser(isHeadRequest: first & 1 == 1)
    _ = try? input.withUnsafeBytes { try response.feed($0) }
    _ = try? response.finish()
    return 0
}
