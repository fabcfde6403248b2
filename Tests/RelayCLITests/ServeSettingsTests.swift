import RelayStore
import RelayHTTP
import RelayMapping
import Synchronization
import Testing

@testable import RelayCore
@testable import RelayCLI

@Suite struct ServeSettingsTests {
    /// A new connection to HappyTalk that passed over an address is logged as a warning with
    /// the addresses, so that an operator learns of an address that refuses or drops packets.
    @Test func anAddressOfHappyTalkPassedOverIsLogged() throws {
        let lines = Mutex<[String]>([])
        let logger = Logger(level: .info, format: .json, sink: .init { line in lines.withLock { $0.append(line) } })
        let configuration = ServeCommand.upstreamClientConfiguration(try ServeSettings.parse([], environment: [:]), logger: logger)
        let report = try #require(configuration.onAddressPassedOver)
        report(
            HTTPClient.AddressPassedOver(
                endpoint: "api.happytalk.test:443", passedOver: ["[2001:db8::1]:443: no answer in 251 ms"], answered: "192.0.2.7:443"))
        let line = try #require(lines.withLock { $0.first })
        #expect(line.contains(#""level":"warning""#))
        #expect(line.contains(#""upstream":"api.happytalk.test:443""#))
        #expect(line.contains(#""passed_over":"[2001:db8::1]:443: no answer in 251 ms""#))
        #expect(line.contains(#""answered":"192.0.2.7:443""#))
    }

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
        #expect(settings.retryMaxDelay == .seconds(600))
        #expect(settings.upstream.description == "https://customer.happytalk.io")
        #expect(settings.upstream.endpoint == HTTPEndpoint(isTLS: true, host: "customer.happytalk.io", port: 443))
    }

    /// The upstream URL is parsed once, when the settings are read: what the client reaches and
    /// the path the API goes under come from that one parse, and the text is kept as given.
    @Test func upstreamIsParsedWithTheSettings() throws {
        let settings = try ServeSettings.parse(["--upstream", "http://127.0.0.1:8081/base/"], environment: [:])
        #expect(settings.upstream.endpoint == HTTPEndpoint(isTLS: false, host: "127.0.0.1", port: 8081))
        #expect(settings.upstream.basePath == "/base")
        #expect(settings.upstream.description == "http://127.0.0.1:8081/base/")
        #expect(settings.describe(environment: [:]).contains("http://127.0.0.1:8081/base/"))
        let client = try HTTPClient()
        defer { client.shutdown() }
        #expect(HappyTalkUpstream(url: settings.upstream, client: client).target == "/base/user/api/set_user_info/format/json")
        #expect(HappyTalkUpstream(url: UpstreamURL.production, client: client).target == "/user/api/set_user_info/format/json")
    }

    @Test func flagsWinOverTheEnvironment() throws {
        let settings = try ServeSettings.parse(
            ["--listen=0.0.0.0:9000", "--idle-timeout", "2.5", "--retry-max-delay", "30"],
            environment: ["HAPPYRELAY_LISTEN": "127.0.0.1:1", "HAPPYRELAY_MAX_CONNECTIONS": "10", "HAPPYRELAY_LOG_FORMAT": "json"])
        #expect(settings.listen == HostAndPort(host: "0.0.0.0", port: 9000))
        #expect(settings.idleTimeout == .milliseconds(2500))
        #expect(settings.retryMaxDelay == .seconds(30))
        #expect(settings.maxConnections == 10)
        #expect(settings.logFormat == .json)
    }

    @Test(arguments: [
        (["--listen", "nowhere"], "--listen: \"nowhere\" is not HOST:PORT with a port in 0...65535", false),
        (["--max-body", "0"], "--max-body: \"0\" is not a whole number in 1...1073741824", false),
        (["--header-timeout", "soon"], "--header-timeout: \"soon\" is not a positive duration (seconds, or a number with s, m, h or d: 30d)", false),
        (["--log-format", "xml"], "--log-format: \"xml\" is not json or text", false),
        (["--bogus"], "unknown option --bogus", true),
        (["--max-conections", "3"], "unknown option --max-conections (did you mean --max-connections?)", true),
        (["--listen"], "--listen needs a value (HOST:PORT)", true),
        (["extra"], "unexpected argument extra", true),
    ])
    func malformedSettingsAreClearErrors(_ arguments: [String], _ message: String, _ isUsage: Bool) {
        #expect(throws: SettingsError(message, isUsageError: isUsage)) { _ = try ServeSettings.parse(arguments, environment: [:]) }
    }

    /// One malformed value per setting, given through its environment variable: each is one
    /// clear message naming the variable.
    static let malformed = [
        ("HAPPYRELAY_LISTEN", "127.0.0.1:70000", "is not HOST:PORT with a port in 0...65535"),
        ("HAPPYTALK_BASE_URL", "ftp://happytalk", "is not an http:// or https:// URL"),
        ("HAPPYRELAY_UPSTREAM_CONCURRENCY", "0", "is not a whole number in 1...4096"),
        ("HAPPYRELAY_UPSTREAM_RATE", "-5", "is not a whole number in 1...1000000"),
        ("HAPPYRELAY_QUEUE_LIMIT", "lots", "is not a whole number in 1...100000000"),
        ("HAPPYRELAY_QUEUE_MAX_BYTES", "1024", "is not a whole number in 65536...1125899906842624"),
        ("HAPPYRELAY_RETENTION", "-1", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        ("HAPPYRELAY_DEAD_RETENTION", "30 days", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        ("HAPPYRELAY_TRUSTED_PROXIES", "10.0.0.0/33", "is not an IP address or CIDR block (10.0.0.0/8, ::1)"),
        ("HAPPYRELAY_RETRY_MAX_DELAY", "10 min", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        ("HAPPYRELAY_DRY_RUN", "maybe", "is not 1, true, yes, on, 0, false, no or off"),
        ("HAPPYRELAY_LOG_FORMAT", "yaml", "is not json or text"),
        ("HAPPYRELAY_LOG_LEVEL", "loud", "is not trace, debug, info, warning or error"),
        ("HAPPYRELAY_MAX_BODY", "1MB", "is not a whole number in 1...1073741824"),
        ("HAPPYRELAY_MAX_HEADER_BYTES", "100", "is not a whole number in 256...16777216"),
        ("HAPPYRELAY_HEADER_TIMEOUT", "0", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        ("HAPPYRELAY_REQUEST_TIMEOUT", "-3", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        ("HAPPYRELAY_IDLE_TIMEOUT", "forever", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        ("HAPPYRELAY_MAX_CONNECTIONS", "0", "is not a whole number in 1...1000000"),
        ("HAPPYRELAY_DRAIN_TIMEOUT", "NaN", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
        ("HAPPYRELAY_CLAIM_TIMEOUT", "soon", "is not a positive duration (seconds, or a number with s, m, h or d: 30d)"),
    ]

    @Test(arguments: malformed)
    func everyMalformedSettingIsOneMessageNamingItsVariable(_ variable: String, _ value: String, _ problem: String) {
        #expect(throws: SettingsError("\(variable): \"\(value)\" \(problem)")) {
            _ = try ServeSettings.parse([], environment: [variable: value])
        }
    }

    /// A database URL that is not one is refused without echoing it (it may hold a password);
    /// a good one is shown with the password as `***`; a claim must outlive a send.
    @Test func theDatabaseURLIsCheckedAndNeverShownWithItsPassword() throws {
        #expect(throws: SettingsError("HAPPYRELAY_DATABASE_URL: not a postgres:// or postgresql:// connection URI (postgres://user:password@host:5432/database)")) {
            _ = try ServeSettings.parse([], environment: ["HAPPYRELAY_DATABASE_URL": "mysql://root:s3cr3t-pw@db/relay"])
        }
        let url = "postgresql://relay:s3cr3t-pw@db.internal:5432/relay?sslmode=verify-full&password=s3cr3t-pw"
        let settings = try ServeSettings.parse(["--claim-timeout", "45s"], environment: ["HAPPYRELAY_DATABASE_URL": url])
        #expect(settings.store.description == "postgresql://relay:***@db.internal:5432/relay?sslmode=verify-full&password=***")
        #expect(settings.claimTimeout == .seconds(45))
        let printed = settings.describe(environment: ["HAPPYRELAY_DATABASE_URL": url])
        #expect(printed.contains("HAPPYRELAY_DATABASE_URL=postgresql://relay:***@db.internal:5432/relay?sslmode=verify-full&password=***"))
        #expect(printed.contains("HAPPYRELAY_DATA_DIR=data") && printed.contains("not used, --database-url is set"))
        #expect(!printed.contains("s3cr3t-pw"))
        #expect(try ServeSettings.parse([], environment: [:]).store.description == "data/happyrelay.sqlite")
        #expect(throws: SettingsError("--claim-timeout: must be more than 10 seconds, the longest a send may take")) {
            _ = try ServeSettings.parse(["--claim-timeout", "10"], environment: [:])
        }
    }

    @Test func everyValuedOptionIsCoveredByAMalformedCase() {
        // Options whose value is free text are checked where they are used: folders and files at start-up.
        // The database URL has a test of its own: its value (a password) is never echoed.
        let checkedAtStartUp: Set = ["--mappings", "--data-dir", "--upstream-ca-file", "--tls-cert", "--tls-key", "--database-url"]
        let parsed = ServeSettings.options.filter { $0.environment != nil && !checkedAtStartUp.contains($0.flag) }
        #expect(Set(parsed.compactMap(\.environment)) == Set(Self.malformed.map(\.0)))
    }

    @Test func mappingsFolderMustExist() {
        var settings = ServeSettings()
        settings.mappings = "/nonexistent/mappings"
        settings.origins["--mappings"] = "HAPPYRELAY_MAPPINGS"
        #expect(throws: SettingsError("HAPPYRELAY_MAPPINGS: the folder /nonexistent/mappings does not exist")) { try settings.checkMappingsFolder() }
        settings.mappings = "/etc/hostname"
        #expect(throws: SettingsError("HAPPYRELAY_MAPPINGS: /etc/hostname is not a readable folder")) { try settings.checkMappingsFolder() }
    }

    @Test func describeShowsOriginsAndRedactsTokens() throws {
        let environment = [
            "HAPPYRELAY_MAX_BODY": "2048", "HAPPYTALK_TOKEN": "tok-very-secret", "HAPPYTALK_TOKEN_SHOP2_FILE": "/run/secrets/shop2",
            "HAPPYRELAY_ADMIN_TOKEN": "adm-very-secret", "HAPPYRELAY_DRY_RUN": "no",
        ]
        let settings = try ServeSettings.parse(["--print-config", "--listen", "0.0.0.0:9000", "--retention", "90.5"], environment: environment)
        #expect(settings.printConfig)
        let text = settings.describe(environment: environment)
        #expect(!text.contains("tok-very-secret") && !text.contains("adm-very-secret"))
        let lines = text.split(separator: "\n").map { $0.replacing(#/ +#/#, with: " #") }
        #expect(lines.contains("HAPPYRELAY_LISTEN=0.0.0.0:9000 # from --listen"))
        #expect(lines.contains("HAPPYRELAY_MAX_BODY=2048 # from the environment"))
        #expect(lines.contains("HAPPYRELAY_RETENTION=90.5 # from --retention"))
        #expect(lines.contains("HAPPYRELAY_DRY_RUN=0 # from the environment"))
        #expect(lines.contains("HAPPYRELAY_UPSTREAM_RATE= # default: no limit"))
        #expect(lines.contains("# HAPPYTALK_TOKEN is set (redacted)"))
        #expect(lines.contains("HAPPYTALK_TOKEN_SHOP2_FILE=/run/secrets/shop2"))
        #expect(lines.contains("# HAPPYRELAY_ADMIN_TOKEN is set (redacted)"))
        // Every setting with a variable is listed, so the output works as an EnvironmentFile.
        for option in ServeSettings.options {
            guard let variable = option.environment else { continue }
            #expect(lines.contains { $0.hasPrefix(variable + "=") }, "\(variable) missing")
        }
        // …and reading it back gives the same settings.
        var echoed: [String: String] = [:]
        for line in lines where !line.hasPrefix("#") {
            let assignment = line.split(separator: " #")[0]
            let parts = assignment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            echoed[String(parts[0])] = String(parts[1])
        }
        let reread = try ServeSettings.parse([], environment: echoed)
        #expect(reread.listen == settings.listen && reread.maxBody == 2048 && reread.retention == settings.retention && !reread.isDryRun)
    }

    @Test func environmentErrorsNameTheVariable() {
        #expect(throws: SettingsError("HAPPYRELAY_MAX_BODY: \"1MB\" is not a whole number in 1...1073741824")) {
            _ = try ServeSettings.parse([], environment: ["HAPPYRELAY_MAX_BODY": "1MB"])
        }
    }
}

@Suite struct RequestBodyTests {
    @Test func mediaTypes() {
        #expect((try? RequestBody.decode(Array("{\"a\":1}".utf8), contentType: nil, acceptsForm: false).get()) == .object([("a", .number("1"))]))
        #expect((try? RequestBody.decode(Array("[]".utf8), contentType: "application/json; charset=utf-8", acceptsForm: false).get()) == .array([]))
        #expect((try? RequestBody.decode(Array("{}".utf8), contentType: "application/vnd.shop+json", acceptsForm: false).get()) == .object([]))
        #expect(
            RequestBody.decode(Array("a=1".utf8), contentType: "application/x-www-form-urlencoded", acceptsForm: false)
                == .failure(.unsupportedMediaType("application/x-www-form-urlencoded")))
        #expect(
            (try? RequestBody.decode(Array("a=1&b=%ED%95%9C".utf8), contentType: "application/x-www-form-urlencoded", acceptsForm: true).get())
                == .object([("a", .string("1")), ("b", .string("한"))]))
        #expect(RequestBody.decode(Array("<x/>".utf8), contentType: "text/xml", acceptsForm: true) == .failure(.unsupportedMediaType("text/xml")))
        #expect(RequestBody.decode(Array("{".utf8), contentType: nil, acceptsForm: false) == .failure(.invalidJSON("unexpected end of input at line 1, column 2")))
    }

    /// The media type is what comes before any `;`, trimmed and compared without case.
    @Test func mediaTypesAreTrimmedAndCaseless() {
        for type in ["Application/JSON", " application/json ;charset=utf-8", "APPLICATION/JSON;", "\tapplication/json", "Text/Json"] {
            #expect((try? RequestBody.decode(Array("[]".utf8), contentType: type, acceptsForm: false).get()) == .array([]), "\(type)")
        }
        #expect(RequestBody.mediaType(of: " Text/XML ; charset=utf-8") == "text/xml")
        #expect(RequestBody.mediaType(of: ";charset=utf-8") == "")
        #expect(RequestBody.decode(Array("[]".utf8), contentType: "", acceptsForm: false) == .failure(.unsupportedMediaType("")))
        #expect(RequestBody.decode(Array("[]".utf8), contentType: "application/jsonx", acceptsForm: false) == .failure(.unsupportedMediaType("application/jsonx")))
    }
}

/// Which store a command opens when the options name both engines: one rule for `serve`,
/// `deliveries`, `bindings` and `map`.
@Suite struct StoreChoiceTests {
    static let url = "postgres://relay:secret@db:5432/relay"
    static let refused = SettingsError("--data-dir and --database-url exclude each other", isUsageError: true)

    static func location(_ arguments: [String], _ environment: [String: String]) throws -> StoreLocation {
        try DeliveryCommands.location(ParsedOptions(arguments, options: DeliveryCommands.retryOptions, environment: environment))
    }

    @Test func theDatabaseWinsAndTwoFlagsAreRefused() throws {
        // An image sets HAPPYRELAY_DATA_DIR for every command: the database URL still wins.
        #expect(try Self.location([], ["HAPPYRELAY_DATA_DIR": "/var/lib/happyrelay", "HAPPYRELAY_DATABASE_URL": Self.url]) == .postgres(url: Self.url))
        #expect(try Self.location(["--database-url", Self.url], ["HAPPYRELAY_DATA_DIR": "/var/lib/happyrelay"]) == .postgres(url: Self.url))
        // The store the relays serve, whatever folder a unit file names.
        #expect(try Self.location(["--data-dir", "old"], ["HAPPYRELAY_DATABASE_URL": Self.url]) == .postgres(url: Self.url))
        #expect(try Self.location(["--data-dir", "old"], [:]) == .sqlite(directory: "old"))
        #expect(try Self.location([], [:]) == .sqlite(directory: "data"))
        #expect(throws: Self.refused) { try Self.location(["--data-dir", "old", "--database-url", Self.url], [:]) }
    }

    @Test func serveAndMapChooseAlike() throws {
        let environment = ["HAPPYRELAY_DATA_DIR": "/var/lib/happyrelay", "HAPPYRELAY_DATABASE_URL": Self.url]
        #expect(try ServeSettings.parse([], environment: environment).store == .postgres(url: Self.url))
        #expect(try ServeSettings.parse(["--data-dir", "old"], environment: ["HAPPYRELAY_DATABASE_URL": Self.url]).store == .postgres(url: Self.url))
        #expect(try ServeSettings.parse(["--data-dir", "old"], environment: [:]).store == .sqlite(directory: "old"))
        #expect(throws: Self.refused) { try ServeSettings.parse(["--data-dir", "old", "--database-url", Self.url], environment: [:]) }
        // `map` opens a store only when one is named, never both.
        let map = { (arguments: [String]) throws in try ParsedOptions(arguments, options: MappingCommands.mapOptions).storeLocation(defaultDirectory: nil) }
        #expect(try map([]) == nil)
        #expect(try map(["--data-dir", "old"]) == .sqlite(directory: "old"))
        #expect(throws: Self.refused) { try map(["--data-dir", "old", "--database-url", Self.url]) }
    }
}

@Suite struct TimeOptionTests {
    private func since(_ text: String) throws -> Int? {
        try ParsedOptions(["--since", text], options: DeliveryCommands.listOptions).time("--since", now: 1_796_115_600_000)
    }

    @Test func timesAreRFC3339WithOrWithoutFractionsOrDurationsAgo() throws {
        #expect(try since("2026-12-01T09:00:00Z") == 1_796_115_600_000)
        #expect(try since("2026-12-01T18:00:00.250+09:00") == 1_796_115_600_250)
        // Pasted with spaces around, as ISO8601DateFormatter took it.
        #expect(try since(" 2026-12-01T09:00:00Z\n") == 1_796_115_600_000)
        #expect(try since("2h") == 1_796_115_600_000 - 7_200_000)
        #expect(throws: SettingsError.self) { try since("2026-12-01") }
        #expect(throws: SettingsError.self) { try since("yesterday") }
    }
}
