import Foundation
import TestSupport
import Testing

/// The operator console: its security over raw HTTP, and the whole of it in a real headless
/// Chromium driven by Selenium (Tests/EndToEndTests/Browser/console_test.py).
@Suite struct ConsoleTests {
    static let admin = "c0nsole-Adm1n-T0ken-Zz9"
    static let async = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "$.body.uuid", "room_id": "$.body.room" } } ] }"#

    static func signIn(_ relay: RelayHarness, headers: [(String, String)] = []) throws -> (cookie: String, csrf: String, setCookie: String) {
        let reply = try relay.post("/admin/session", body: #"{"token":"\#(admin)"}"#, headers: [("Content-Type", "application/json")] + headers)
        #expect(reply.status == 200)
        let setCookie = try #require(reply.header("set-cookie"))
        let cookie = String(setCookie.split(separator: ";")[0])
        let csrf = String(reply.text.components(separatedBy: #""csrf":""#)[1].prefix { $0 != "\"" })
        return (cookie, csrf, setCookie)
    }

    @Test func noDataWithoutASessionAndChangesNeedTheCSRFToken() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async], environment: ["HAPPYRELAY_ADMIN_TOKEN": Self.admin])
            // The page and its assets hold no data; everything else needs a session or the token.
            let page = try relay.get("/admin/")
            #expect(page.status == 200 && page.header("content-type") == "text/html; charset=utf-8")
            #expect(page.header("content-security-policy")?.contains("script-src 'self'") == true && page.header("x-content-type-options") == "nosniff")
            for path in ["/admin/", "/admin/console.js", "/admin/console.css"] {
                let asset = try relay.get(path)
                #expect(asset.status == 200 && asset.body.count < 100_000, "\(path): \(asset.body.count) bytes")
            }
            for path in ["/admin/overview", "/admin/deliveries", "/admin/mappings", "/admin/bindings", "/admin/session"] {
                #expect(try relay.get(path).status == 404, "\(path)")
            }
            #expect(try relay.post("/admin/session", body: "", headers: [("Cookie", "happyrelay_session=forged")], method: "DELETE").status == 404)

            let (cookie, csrf, setCookie) = try Self.signIn(relay)
            #expect(setCookie.contains("; Path=/admin/; HttpOnly; SameSite=Strict; Max-Age=28800") && !setCookie.contains("Secure"), "\(setCookie)")
            #expect(try Self.signIn(relay, headers: [("X-Forwarded-Proto", "https")]).setCookie.hasSuffix("; Secure"))
            let overview = try relay.post("/admin/overview", body: "", headers: [("Cookie", cookie)], method: "GET")
            #expect(overview.status == 200 && overview.text.hasPrefix(#"{"generation":1,"dry_run":false,"queue":{"pending":0,"dead":0"#), "\(overview.text)")
            // The chart's data: a webhook shows, counted from the routes' totals when the relay
            // started (in the interval under way unless the 10 s timer sampled since).
            #expect(try relay.post("/async", body: RelayHarness.body).status == 202)
            #expect(relay.waitForCalls(1).count == 1)
            let traffic = try relay.post("/admin/overview", body: "", headers: [("Cookie", cookie)], method: "GET").text
            #expect(traffic.contains(#""webhooks":[{"route":"/async","outcome":"accepted","count":1}"#), "\(traffic)")
            let series = traffic.components(separatedBy: #""history":{"interval_seconds":10,"slots":30,"routes":{"/async":["#).dropFirst().first
            #expect(series?.hasSuffix("]}}}") == true && series?.dropLast(4).split(separator: ",").compactMap { Int($0) }.reduce(0, +) == 1, "\(traffic)")
            let session = try relay.post("/admin/session", body: "", headers: [("Cookie", cookie)], method: "GET")
            #expect(session.text == #"{"result":"signed_in","csrf":"\#(csrf)"}"#)

            // A change with the cookie alone (what a forged cross-site form sends) is refused.
            #expect(try relay.post("/admin/reload", body: "", headers: [("Cookie", cookie)]).status == 403)
            #expect(try relay.post("/admin/reload", body: "", headers: [("Cookie", cookie), ("X-CSRF-Token", String(csrf.reversed()))]).status == 403)
            let reloaded = try relay.post("/admin/reload", body: "", headers: [("Cookie", cookie), ("X-CSRF-Token", csrf)])
            #expect(reloaded.text == #"{"result":"reloaded","generation":2}"#)

            // The mapping tester sends nothing.
            let tried = try relay.post(
                "/admin/map", body: #"{"route":"/async","headers":"X-Shop: a","body":"{\"uuid\":\"u-7\",\"room\":\"r-7\"}"}"#,
                headers: [("Cookie", cookie), ("X-CSRF-Token", csrf), ("Content-Type", "application/json")])
            #expect(tried.text.hasPrefix(#"{"outcome":"call","lines":["rule "#) && tried.text.contains(#""  uuid = \"u-7\" ← $.body.uuid""#), "\(tried.text)")
            #expect(tried.text.contains(#"{\"token\":\"***\",\"uuid\":\"u-7\",\"room_id\":\"r-7\"}"#))
            #expect(relay.recordedCalls.count == 1)

            let signedOut = try relay.post("/admin/session", body: "", headers: [("Cookie", cookie), ("X-CSRF-Token", csrf)], method: "DELETE")
            #expect(signedOut.status == 200 && signedOut.header("set-cookie")?.contains("Max-Age=0") == true)
            #expect(try relay.post("/admin/overview", body: "", headers: [("Cookie", cookie)], method: "GET").status == 404)
            for text in relay.responses + [relay.relay.log] { #expect(!text.contains(Self.admin)) }
        }
    }

    @Test func wrongTokensAreLimitedAndLogged() async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.async], environment: ["HAPPYRELAY_ADMIN_TOKEN": Self.admin])
            for _ in 0..<5 {
                #expect(try relay.post("/admin/session", body: #"{"token":"guess"}"#).status == 401)
            }
            // The sixth try is refused whatever the token, until the window ends.
            let limited = try relay.post("/admin/session", body: #"{"token":"\#(Self.admin)"}"#)
            #expect(limited.status == 429 && (Int(limited.header("retry-after") ?? "") ?? 0) > 200)
            let log = relay.relay.waitForLog { $0.contains("too many wrong tokens") }
            #expect(log.contains(#""msg":"console sign-in refused","client":"127.0.0.1","reason":"wrong token","failures":5"#), "\(log)")
            #expect(!log.contains("guess") && !log.contains(Self.admin))
        }
    }

    static let browserReady =
        FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
        && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/selenium")

    @Test(.enabled(if: browserReady, "chromium, chromium-driver and python3-selenium are installed by deploy/install-build-deps --tests"))
    func theConsoleInHeadlessChromium() async throws {
        try await offPool {
            let relay = try RelayHarness(
                mappings: ["async.json": Self.async], environment: ["HAPPYRELAY_ADMIN_TOKEN": Self.admin], mockArguments: ["--room", "r-ok"])
            let screenshots = MappingCommandTests.root.appendingPathComponent(".build/console-screenshots")
            let script = MappingCommandTests.root.appendingPathComponent("Tests/EndToEndTests/Browser/console_test.py")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [script.path, "http://127.0.0.1:\(relay.relayPort)", Self.admin, screenshots.path]
            let output = Pipe()
            let input = Pipe()
            process.standardOutput = output
            process.standardError = output
            process.standardInput = input
            try process.run()
            var transcript = ""
            var buffer = Data()
            let reader = output.fileHandleForReading
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...newline)
                    transcript += line + "\n"
                    if line == "NEED room r-new" {
                        try relay.restartMock(arguments: ["--room", "r-ok", "--room", "r-new"])
                        input.fileHandleForWriting.write(Data("GO\n".utf8))
                    } else if line == "NEED the call for r-new recorded" {
                        let calls = relay.waitForCalls(1)
                        #expect(calls == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-new"}"#])
                        input.fileHandleForWriting.write(Data("GO\n".utf8))
                    }
                }
            }
            process.waitUntilExit()
            #expect(process.terminationStatus == 0 && transcript.contains("\nPASS\n"), "\(transcript)")
            #expect(!relay.relay.log.contains(Self.admin))
            // The README's picture of the console, regenerated on request.
            if ProcessInfo.processInfo.environment["HAPPYRELAY_UPDATE_SCREENSHOT"] == "1" {
                let target = MappingCommandTests.root.appendingPathComponent("docs/console-overview.png")
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(at: screenshots.appendingPathComponent("2-overview.png"), to: target)
            }
        }
    }
}
