// Mapping benchmark: parse and map Shopify-style orders with a 10-field rule on one core,
// and time the compilation of 100 mapping files.
// usage: happyrelay-mapping-bench generate FILE COUNT   (writes COUNT orders, one JSON per line)
//        happyrelay-mapping-bench map FILE [--passes N] (prints payloads/s)
//        happyrelay-mapping-bench compile DIR           (writes 100 mapping files to DIR, prints the load time)
import Foundation
import RelayMapping

/// The 10-field rule of BENCHMARKS.md: filters on note_attributes, a template, digits, a constant.
let mapping = """
    { "route": "/bench", "verify": { "scheme": "none" }, "rules": [ { "name": "order", "set": {
      "uuid": "$.body.note_attributes[?@.name == 'happytalk_uuid'].value",
      "room_id": "$.body.note_attributes[?@.name == 'happytalk_room_id'].value",
      "order_number": "$.body.order_number",
      "username": { "template": "{{ $.body.customer.last_name }}{{ $.body.customer.first_name }}" },
      "phone": { "path": "$.body.customer.phone", "pipe": ["digits"] },
      "parcel_number": { "path": "$.body.fulfillments[-1].tracking_number", "pipe": ["digits"] },
      "email": "$.body.email",
      "product_number": "$.body.line_items[0].product_id",
      "parameter1": "$.body.financial_status",
      "scenario_next": "Y" } } ] }
    """

func order(_ index: Int) -> String {
    let items = (0..<9).map { item in
        #"{"id":\#(466157049 + index * 10 + item),"product_id":\#(632910392 + item),"title":"IPod Nano - 8GB \#(item)","quantity":\#(1 + item % 3),"price":"199.00","sku":"IPOD2008\#(item)","vendor":"Apple","requires_shipping":true,"taxable":true,"grams":567}"#
    }.joined(separator: ",")
    return #"""
        {"id":\#(820982911946154508 + index),"order_number":\#(1000 + index),"name":"#\#(1000 + index)","email":"customer\#(index)@example.com","created_at":"2026-11-29T04:05:00+09:00","financial_status":"paid","currency":"KRW","total_price":"\#(15000 + index).00","note":"please call before delivery","customer":{"id":\#(115310627314723954 + index),"first_name":"길동","last_name":"홍","phone":"+82 10-\#(1000 + index % 9000)-5678","email":"customer\#(index)@example.com","accepts_marketing":false},"note_attributes":[{"name":"gift","value":"no"},{"name":"happytalk_uuid","value":"u-\#(index)"},{"name":"happytalk_room_id","value":"\#(70000 + index)"}],"shipping_address":{"first_name":"길동","last_name":"홍","address1":"서울특별시 강남구 테헤란로 123","city":"Seoul","zip":"06236","country":"South Korea","phone":"010-1234-5678"},"fulfillments":[{"id":\#(255858046 + index),"status":"success","tracking_company":"CJ대한통운","tracking_number":"6543-\#(2100 + index % 7000)-87"}],"line_items":[\#(items)]}
        """#
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: happyrelay-mapping-bench generate FILE COUNT | map FILE [--passes N] [--tree] [--parse-only] | compile DIR\n".utf8))
    exit(2)
}
switch arguments[1] {
case "generate":
    let count = Int(arguments[3]) ?? 20000
    var text = ""
    for index in 0..<count { text += order(index) + "\n" }
    try text.write(toFile: arguments[2], atomically: true, encoding: .utf8)
case "map":
    let data = Array(try Data(contentsOf: URL(fileURLWithPath: arguments[2])))
    var payloads: [[UInt8]] = []
    var lineStart = 0
    for (offset, byte) in data.enumerated() where byte == UInt8(ascii: "\n") {
        payloads.append(Array(data[lineStart..<offset]))
        lineStart = offset + 1
    }
    guard case .success(let route) = MappingLoader.compile(file: "bench.json", bytes: Array(mapping.utf8), baseDirectory: nil) else {
        fatalError("the benchmark mapping does not compile")
    }
    // --tree parses into a value tree, as before the tape; --parse-only times the parse alone.
    let tree = arguments.contains("--tree")
    var bytes = 0
    if arguments.contains("--parse-only") {
        let start = ContinuousClock.now
        for payload in payloads {
            if tree {
                if case .object(let members) = try JSONParser().parse(payload) { bytes += members.count }
            } else {
                bytes += try JSONParser().tape(payload).entries.count
            }
        }
        let elapsed = ContinuousClock.now - start
        print(String(format: "parse only (%@): %.0f payloads/s", tree ? "tree" : "tape", Double(payloads.count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)))
        exit(0)
    }
    // --passes N maps the whole file N times in one timing (a longer window, less noise).
    let passes = arguments.firstIndex(of: "--passes").map { arguments.indices.contains($0 + 1) ? Int(arguments[$0 + 1]) ?? 0 : 0 } ?? 1
    guard passes > 0 else {
        FileHandle.standardError.write(Data("--passes needs a count above 0\n".utf8))
        exit(2)
    }
    let start = ContinuousClock.now
    for _ in 0..<passes {
        for payload in payloads {
            let body: JSONValue = tree ? try JSONParser().parse(payload) : .tape(try JSONParser().tape(payload).root)
            let document = RequestDocument.make(
                body: body, headers: [("x-shopify-topic", "orders/create")], query: [], route: "/bench", receivedAt: "2026-11-29T00:00:00Z",
                requestID: "b")
            guard case .calls(let calls, _) = route.apply(to: document) else { fatalError("order did not map") }
            bytes += calls[0].body(token: "***").count
        }
    }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let averageSize = payloads.reduce(0) { $0 + $1.count } / max(1, payloads.count)
    print(String(format: "%.0f payloads/s (%d payloads of %d bytes on average, %d passes, %.3f s, %d output bytes)", Double(payloads.count * passes) / seconds, payloads.count, averageSize, passes, seconds, bytes))
case "compile":
    let directory = arguments[2]
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for index in 0..<100 {
        let text = mapping.replacingOccurrences(of: "\"/bench\"", with: "\"/bench/\(index)\"")
        try text.write(toFile: "\(directory)/m\(index).json", atomically: true, encoding: .utf8)
    }
    let start = ContinuousClock.now
    let (routes, diagnostics) = MappingLoader.load(directory: directory)
    let elapsed = ContinuousClock.now - start
    guard routes.count == 100, diagnostics.isEmpty else { fatalError("\(diagnostics)") }
    print("compiled 100 mapping files in \(elapsed.components.attoseconds / 1_000_000_000_000_000 + elapsed.components.seconds * 1000) ms")
default:
    exit(2)
}
