// libFuzzer target for the JSON parser. Beyond "no crash": whatever parses must serialize
// and parse back to the same value (numbers keep their text, strings their scalars).
//
// And the tape (the parse the relay uses for bodies) must accept exactly what the tree parse
// accepts, with the same error, and read the same values: the whole document, and a few paths
// (every node, and the first found alone).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // Built per input: globals would be reported by LeakSanitizer at exit.
    let paths = ["$.a", "$.b[0].c", "$.d[?@.n == 'x'].v", "$.e.*", "$[-1]", "$.*.*", "$.*[?@.name_longer_than_8 != 'y'].value", "$[*][?@.n]"]
        .map { try! JSONPath($0) }
    let parser = JSONParser(maxDepth: 64, maxBytes: 1 << 20)
    let tape: Result<JSONTape, JSONParseError> = Result { () throws(JSONParseError) in try parser.tape(input) }
    let value: JSONValue
    do {
        value = try parser.parse(input)
    } catch {
        guard case .failure(let tapeError) = tape else { fatalError("the tape accepted what the tree parse refused") }
        if tapeError != error { fatalError("the tape refused with \(tapeError), the tree with \(error)") }
        return 0
    }
    guard case .success(let parsed) = tape else { fatalError("the tape refused what the tree parse accepted") }
    let root = JSONValue.tape(parsed.root)
    if parsed.root.value != value || JSONSerializer.string(root) != JSONSerializer.string(value) { fatalError("the tape reads another value") }
    for path in paths {
        let fromTape = path.select(in: root)
        let fromTree = path.select(in: value)
        if fromTape != fromTree || fromTape.map(\.text) != fromTree.map(\.text) || fromTape.map(\.isEmpty) != fromTree.map(\.isEmpty) {
            fatalError("the tape reads \(path) differently")
        }
        // The first node, found without listing the others, is the list's first.
        if path.first(in: root) != fromTape.first || path.first(in: value) != fromTree.first {
            fatalError("the first node of \(path) is not the first selected")
        }
    }
    let text = JSONSerializer.string(value)
    guard let again = try? JSONParser(maxDepth: 64, maxBytes: 1 << 20).parse(text) else {
        fatalError("serialized value does not parse: \(text)")
    }
    if again != value { fatalError("round trip changed the value: \(text)") }
    return 0
}
