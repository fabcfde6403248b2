// libFuzzer target for the JSON parser. Beyond "no crash": whatever parses must serialize
// and parse back to the same value (numbers keep their text, strings their scalars).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONParser(maxDepth: 64, maxBytes: 1 << 20).parse(input) else { return 0 }
    let text = JSONSerializer.string(value)
    guard let again = try? JSONParser(maxDepth: 64, maxBytes: 1 << 20).parse(text) else {
        fatalError("serialized value does not parse: \(text)")
    }
    if again != value { fatalError("round trip changed the value: \(text)") }
    return 0
}
