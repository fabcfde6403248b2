import RelayHTTP
import RelayMapping
import Testing

@testable import RelayCore

@Suite struct ServeSettingsTests {
    @Test func defaultsAreTheInterfaceDefaults() throws {
        let settings = try ServeSettings.parse([], environment: [:])
        #expect(settings.listen == HostAndPort(host: "127.0.0.1", port: 8080))
        #expect(settings.maxBody == 1_048_576)
        #expect(settings.maxHeaderBytes == 65_536)
        #expect(settings.headerTimeout == .seconds(10))
        #expect(settings.idleTimeout == .seconds(60))
        #expect(settings.maxConnections == 4096)
        #expect(settings.logLevel == .info)
        #expect(settings.logFormat == nil)
    }

    @Test func flagsWinOverTheEnvironment() throws {
        let settings = try ServeSettings.parse(
            ["--listen=0.0.0.0:9000", "--idle-timeout", "2.5"],
            environment: ["HAPPYRELAY_LISTEN": "127.0.0.1:1", "HAPPYRELAY_MAX_CONNECTIONS": "10", "HAPPYRELAY_LOG_FORMAT": "json"])
        #expect(settings.listen == HostAndPort(host: "0.0.0.0", port: 9000))
        #expect(settings.idleTimeout == .milliseconds(2500))
        #expect(settings.maxConnections == 10)
        #expect(settings.logFormat == .json)
    }

    @Test(arguments: [
        (["--listen", "nowhere"], "--listen: \"nowhere\" is not HOST:PORT with a port in 0...65535", false),
        (["--max-body", "0"], "--max-body: \"0\" is not a whole number in 1...1073741824", false),
        (["--header-timeout", "soon"], "--header-timeout: \"soon\" is not a positive number of seconds", false),
        (["--log-format", "xml"], "--log-format: \"xml\" is not json or text", false),
        (["--bogus"], "unknown option --bogus", true),
        (["--max-conections", "3"], "unknown option --max-conections (did you mean --max-connections?)", true),
        (["--listen"], "--listen needs a value (HOST:PORT)", true),
        (["extra"], "unexpected argument extra", true),
    ])
    func malformedSettingsAreClearErrors(_ arguments: [String], _ message: String, _ isUsage: Bool) {
        #expect(throws: SettingsError(message, isUsageError: isUsage)) { _ = try ServeSettings.parse(arguments, environment: [:]) }
    }

    @Test func environmentErrorsNameTheVariable() {
        #expect(throws: SettingsError("HAPPYRELAY_MAX_BODY: \"1MB\" is not a whole number in 1...1073741824")) {
            _ = try ServeSettings.parse([], environment: ["HAPPYRELAY_MAX_BODY": "1MB"])
        }
    }
}

@Suite struct RequestBodyTests {
    @Test func mediaTypes() {
        #expect((try? RequestBody.decode(Array("{\"a\":1}".utf8), contentType: nil, acceptsForm: false).get()) != nil)
        #expect((try? RequestBody.decode(Array("{}".utf8), contentType: "application/json; charset=utf-8", acceptsForm: false).get()) != nil)
        #expect((try? RequestBody.decode(Array("{}".utf8), contentType: "application/vnd.shop+json", acceptsForm: false).get()) != nil)
        #expect(
            RequestBody.decode(Array("a=1".utf8), contentType: "application/x-www-form-urlencoded", acceptsForm: false)
                == .failure(.unsupportedMediaType("application/x-www-form-urlencoded")))
        #expect(
            (try? RequestBody.decode(Array("a=1&b=%ED%95%9C".utf8), contentType: "application/x-www-form-urlencoded", acceptsForm: true).get())
                == .object([("a", .string("1")), ("b", .string("한"))]))
        #expect(RequestBody.decode(Array("<x/>".utf8), contentType: "text/xml", acceptsForm: true) == .failure(.unsupportedMediaType("text/xml")))
        #expect(RequestBody.decode(Array("{".utf8), contentType: nil, acceptsForm: false) == .failure(.invalidJSON("unexpected end of input at line 1, column 2")))
    }
}
