// libFuzzer target for the JSON parser. Beyond "no crash": whatever parses must serialize
// and parse back to the same value (numbers keep their text, strings their scalars).

// And a parse that keeps only some paths (JSONProjection) must accept exactly what the full
// parse accepts, and agree with it on the paths it keeps.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // Built per input: globals would be reported by LeakSanitizer at exit.
    let projectedPaths = ["$.a", "$.b[0].c", "$.d[?@.n == 'x'].v", "$.e.*"].map { try! JSONPath($0) }
    let projection = JSONProjection.make(projectedPaths.map(\.segments))!
    let parser = JSONParser(maxDepth: 64, maxBytes: 1 << 20)
    let pruned = try? parser.parse(input, keeping: projection)
    guard let value = try? parser.parse(input) else {
        if pruned != nil { fatalError("the projected parse accepted what the full parse refused") }
        return 0
    }
    guard let pruned else { fatalError("the projected parse refused what the full parse accepted") }
    for path in projectedPaths where path.select(in: pruned) != path.select(in: value) {
        fatalError("projection changed \(path)")
    }
    let text = JSONSerializer.string(value)
    guard let again = try? JSONParser(maxDepth: 64, maxBytes: 1 << 20).parse(text) else {
        fatalError("serialized value does not parse: \(text)")
    }
    if again != value { fatalError("round trip changed the value: \(text)") }
    return 0
}
