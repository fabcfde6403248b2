import Foundation
import RelayCore
import RelayMapping
import Testing

@testable import RelayCLI

/// `check` and `map` as functions: arguments in, lines and an exit code out.
@Suite struct MappingCommandsTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let mappings = repository.appendingPathComponent("mappings").path

    /// A scratch folder removed when the value is released.
    final class Scratch {
        let path: String
        init() {
            path = NSTemporaryDirectory() + "happyrelay-cli-\(UUID().uuidString)"
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func write(_ name: String, _ text: String) -> String {
            let file = (path as NSString).appendingPathComponent(name)
            _ = FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
            return file
        }
    }

    static let route = #"{ "route": "/t", "verify": { "scheme": "bearer", "secret": { "env": "T_SECRET" } }, "rules": [ { "set": { "uuid": "$.body.u", "room_id": "$.body.r", "parameter1": "$.body.typo" } } ], "examples": [ { "request": { "body": { "u": "a", "r": "b" } }, "expect": { "call": { "uuid": "a", "room_id": "b" } } } ] }"#

    @Test func checkTakesFilesAndFoldersAndSkipsPayloads() throws {
        let scratch = Scratch()
        let file = scratch.write("t.json", Self.route)
        _ = scratch.write("saved-order.json", #"{ "headers": { "X-Shopify-Topic": "orders/create" }, "body": { "id": 1 } }"#)
        _ = scratch.write("order.json", ##"{ "id": 820982911946154508, "name": "#9999" }"##)
        let byFile = try MappingCommands.check([file], environment: ["T_SECRET": "x"])
        #expect(byFile.exitCode == 0)
        #expect(byFile.lines.first == "\(file): ok: /t, 1 rule, 1 example passed")
        let byFolder = try MappingCommands.check([scratch.path], environment: ["T_SECRET": "x"])
        #expect(byFolder.exitCode == 0)
        #expect(byFolder.lines.contains("\(scratch.path)/saved-order.json: skipped: this looks like a request payload ({headers, body}), not a mapping (no \"route\"): keep payloads in a sub-folder such as examples/"))
        #expect(byFolder.lines.contains("\(scratch.path)/order.json: skipped: not a mapping file (no \"route\")"))
        // Named on its own, a payload is an error: the user meant it to be a mapping.
        let named = try MappingCommands.check([scratch.path + "/order.json"], environment: [:])
        #expect(named.exitCode == 1)
    }

    @Test func checkWarnsAboutUnsetSecretsAndPathsNoExampleReaches() throws {
        let scratch = Scratch()
        let file = scratch.write("t.json", Self.route)
        let result = try MappingCommands.check([file], environment: [:])
        #expect(result.exitCode == 0)
        #expect(result.lines.contains("\(file): /verify/secret: warning: T_SECRET (or T_SECRET_FILE) is not set here: serve with a token refuses to start without it (a dry run serves the route unverified)"))
        #expect(result.lines.contains("\(file): /rules: warning: no example reaches $.body.typo (rule \"rules[0]\"): a typo, or add an example that has it"))
        #expect(!result.lines.contains { $0.contains("$.body.u ") || $0.contains("$.body.r ") })
    }

    @Test func mapReadsExampleFilesExplainsAndResolvesGivenBindings() throws {
        let example = Self.mappings + "/examples/shopify-fulfillment-created.json"
        let bound = try MappingCommands.map(
            ["--route", "/hooks/shopify/orders", "--mappings", Self.mappings, "--bind", "order_number=#1043:u-7/r-70", "--explain", example],
            environment: [:], standardInput: { [] })
        #expect(bound.exitCode == 0)
        #expect(bound.lines == [
            #"rule "shipped (fulfillment), bound by the chatbot""#,
            "  binding order_number=1043 → uuid u-7, room_id r-70",
            #"  uuid = "u-7" ← $.binding.uuid"#,
            #"  room_id = "r-70" ← $.binding.room_id"#,
            #"  order_number = "1043" ← $.body.name, $.body.order_number"#,
            #"  parcel_number = "689412345678" ← $.body.tracking_number"#,
            #"  parameter3 = "CJ대한통운" ← $.body.tracking_company, $.body.tracking_company"#,
            #"  scenario_next = "Y" ← constant "Y""#,
            #"{"token":"***","uuid":"u-7","room_id":"r-70","order_number":"1043","parcel_number":"689412345678","parameter3":"CJ대한통운","scenario_next":"Y"}"#,
        ])
        let unbound = try MappingCommands.map(["--route", "/hooks/shopify/orders", "--mappings", Self.mappings, example], environment: [:], standardInput: { [] })
        #expect(unbound.exitCode == 3)
        #expect(unbound.lines == ["ignored: no chat user for this order"])
        #expect(throws: SettingsError.self) {
            try MappingCommands.map(["--route", "/hooks/shopify/orders", "--mappings", Self.mappings, "--bind", "1043:u-7", example], environment: [:], standardInput: { [] })
        }
    }

    @Test func explainNamesFieldsLeftOut() throws {
        let scratch = Scratch()
        let payload = scratch.write("p.json", #"{ "u": "a", "r": "b" }"#)
        _ = scratch.write("t.json", Self.route)
        let explained = try MappingCommands.map(["--route", "/t", "--mappings", scratch.path, "--explain", payload], environment: [:], standardInput: { [] })
        #expect(explained.lines == [
            #"rule "rules[0]""#, #"  uuid = "a" ← $.body.u"#, #"  room_id = "b" ← $.body.r"#, "  parameter1 left out: $.body.typo is empty",
            #"{"token":"***","uuid":"a","room_id":"b"}"#,
        ])
    }
}
