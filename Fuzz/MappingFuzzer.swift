// libFuzzer target for path and mapping compilation: any bytes as a mapping file must give
// a route or diagnostics, never a crash; a compiled route is applied to a sample request,
// and the input is also tried as a lone JSONPath, as text for NFKC (which must give a text
// that NFKC leaves as it is) and as a replacement template.

let sample = RequestDocument.make(
    body: (try? JSONParser().parse(#"{"a":{"b":[1,"x",{"c":null}]},"n":820982911946154508,"s":"０１０-1234-5678","t":"2026-11-29T04:05:00Z"}"#)) ?? .null,
    headers: [("x-topic", "orders/create")], query: [("k", "v")], route: "/f", receivedAt: "2026-11-29T00:00:00Z", requestID: "fuzz")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    if case .success(let route) = MappingLoader.compile(file: "fuzz.json", bytes: input, baseDirectory: nil) {
        _ = route.apply(to: sample)
        _ = route.runExamples()
    }
    let text = String(decoding: input, as: UTF8.self)
    if let path = try? JSONPath(text) {
        _ = path.select(in: sample)
        _ = path.normalized
    }
    let normalized = NFKC.normalize(text)
    precondition(Array(NFKC.normalize(normalized).unicodeScalars) == Array(normalized.unicodeScalars), "NFKC is not idempotent")
    if let regex = try? CompiledRegex("(a)(?<name>b)?"), case .success(let template) = regex.template(text) {
        _ = regex.replacing(in: "xaby", with: template)
    }
    return 0
}
