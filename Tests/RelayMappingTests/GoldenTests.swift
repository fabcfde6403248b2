import Foundation
import Testing

@testable import RelayMapping

/// The folder holding this file, and the repository root above it.
let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let repositoryRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()

/// Golden fixtures: each folder under Fixtures/golden holds mapping.json, request.json
/// (`headers`, `query`, and `body` as JSON or `form` as url-encoded text) and expected.txt,
/// the exact lines `happyrelay map` prints.
@Suite struct GoldenTests {
    static let cases: [String] = {
        let folder = testsDirectory.appendingPathComponent("Fixtures/golden").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }()

    @Test func thereAreGoldenCases() { #expect(Self.cases.count >= 6) }

    @Test(arguments: cases)
    func goldenCase(_ name: String) throws {
        let folder = testsDirectory.appendingPathComponent("Fixtures/golden/\(name)")
        let route = try #require(try? MappingLoader.compileFile(folder.appendingPathComponent("mapping.json").path).get())
        let request = try JSONParser().parse(Array(Data(contentsOf: folder.appendingPathComponent("request.json"))))
        let headers: [(name: String, value: String)] =
            if case .object(let list)? = request["headers"] { list.map { ($0.key, $0.value.text) } } else { [] }
        let body: JSONValue =
            if let form = request["form"]?.stringValue { FormBody.object(Array(form.utf8)) } else { request["body"] ?? .object([]) }
        let outcome = route.apply(to: RequestDocument.make(body: body, headers: headers, query: [], route: route.path, receivedAt: "t", requestID: "g"))
        let lines: [String] =
            switch outcome {
            case .calls(let calls, _): calls.map { String(decoding: $0.body(token: "***"), as: UTF8.self) }
            case .ignored(let reason): ["ignored: \(reason)"]
            case .failed(let failure): ["invalid: \(failure)"]
            case .bound(let writes): writes.map { "bound \($0.kind)=\($0.value)" }
            }
        let expected = try String(contentsOf: folder.appendingPathComponent("expected.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(lines == expected)
    }
}

/// Every shipped mapping compiles and its examples pass: those loaded by default
/// (`mappings/`) and the optional presets (`mappings/optional/`).
@Suite struct ShippedMappingsTests {
    @Test(arguments: ["mappings", "mappings/optional"])
    func everyShippedMappingCompilesAndItsExamplesPass(_ folder: String) {
        let (routes, diagnostics) = MappingLoader.load(directory: repositoryRoot.appendingPathComponent(folder).path)
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.description).joined(separator: "\n"))")
        #expect(routes.count >= 2)
        for route in routes {
            #expect(!route.examples.isEmpty, "\(route.file) has no examples")
            let problems = route.runExamples()
            #expect(problems.isEmpty, "\(problems.map(\.description).joined(separator: "\n"))")
        }
    }

    @Test func presetsCoverEveryPlatformTheInterfaceNames() {
        let (defaults, _) = MappingLoader.load(directory: repositoryRoot.appendingPathComponent("mappings").path)
        let (optional, _) = MappingLoader.load(directory: repositoryRoot.appendingPathComponent("mappings/optional").path)
        let files = (defaults + optional).map { ($0.file as NSString).lastPathComponent }
        for source in ["shopify-", "woocommerce-", "cafe24-", "chatbot-", "standard-webhooks-"] {
            #expect(files.contains { $0.hasPrefix(source) }, "no \(source)*.json preset")
        }
        #expect(defaults.contains { $0.delivery == .async } && defaults.contains { $0.delivery == .sync })
        let schemes = Set((defaults + optional).map(\.verify.scheme))
        #expect(schemes.isSuperset(of: [.shopify, .woocommerce, .query, .bearer, .standardWebhooks]))
    }

    /// The editor schema names every step and rule key the compiler knows.
    @Test func theSchemaKnowsEveryStepAndRuleKey() throws {
        let schema = try JSONParser().parse(Array(Data(contentsOf: repositoryRoot.appendingPathComponent("mappings/schema.json"))))
        guard case .array(let forms)? = schema["$defs"]?["step"]?["oneOf"], forms.count >= 2,
            case .array(let simple)? = forms[0]["enum"], case .object(let withArgument)? = forms[1]["properties"],
            case .object(let ruleKeys)? = schema["$defs"]?["rule"]?["properties"]
        else {
            Issue.record("the schema's step or rule definitions moved")
            return
        }
        #expect(Set(simple.compactMap(\.stringValue) + withArgument.map(\.key)) == Set(PipeStep.names))
        #expect(Set(ruleKeys.map(\.key)) == ["name", "when", "set", "bind", "resolve", "ignore_without"])
    }
}

