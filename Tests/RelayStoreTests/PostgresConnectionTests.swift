import Foundation
import TestSupport
import Testing

@testable import RelayStore

/// libpq is opened when a PostgreSQL store is first used, not linked: a machine without it
/// gets one clear error, naming what to install, and only when it asks for PostgreSQL.
@Test func aMissingLibpqIsOneErrorNamingWhatToInstall() {
    let missing = #expect(throws: PostgresError.self) { _ = try LibPQ(library: "libpq-that-is-not-here.so.5") }
    #expect(missing?.description.hasPrefix("PostgreSQL needs libpq, which cannot be loaded (libpq-that-is-not-here.so.5") == true, "\(String(describing: missing))")
    #expect(missing?.description.hasSuffix("install it (apt-get install libpq5)") == true, "\(String(describing: missing))")
    // A library without libpq's functions is refused, naming the first one it lacks.
    let other = #expect(throws: PostgresError.self) { _ = try LibPQ(library: "libc.so.6") }
    #expect(other?.description == "libc.so.6 has no PQconnectdb")
}

@Suite(.enabled(if: PostgresCluster.binaries != nil, "PostgreSQL is installed by deploy/install-build-deps --tests"))
struct PostgresConnectionTests {
    @Test func queriesBindTextNumbersBytesAndNull() async throws {
        try await offPool { try Self.queriesBindTextNumbersBytesAndNull() }
    }

    static func queriesBindTextNumbersBytesAndNull() throws {
        let cluster = try PostgresCluster()
        let connection = try PostgresConnection(url: cluster.url)
        try connection.execute("CREATE TABLE t (name TEXT, n BIGINT, data BYTEA, missing TEXT)")
        let bytes: [UInt8] = [0, 1, 0xFF, 0x7F, 10, 0]
        try connection.query("INSERT INTO t VALUES ($1, $2, $3, $4)", [.text("홍길동 \"q\""), .integer(-42), .bytes(bytes), .null])
        let rows = try connection.query("SELECT name, n, data, missing FROM t WHERE n = $1", [.integer(-42)])
        #expect(rows.count == 1)
        #expect(rows.text(0, 0) == "홍길동 \"q\"" && rows.integer(0, 1) == -42 && rows.bytes(0, 2) == bytes && rows.isNull(0, 3))
        #expect(throws: PostgresError.self) { try connection.query("INSERT INTO nowhere VALUES (1)") }
        do {
            try connection.execute("CREATE TABLE t (x INT)")
            Issue.record("a duplicate table was created")
        } catch {
            #expect(error.sqlState == "42P07" && !error.isConnectionLost)
        }
    }

    @Test func arraysBindInTheBinaryFormatWithNullsQuotesAndZeroBytes() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let connection = try PostgresConnection(url: cluster.url)
            let texts: [String?] = ["홍길동 \"q\", {x}", nil, "", "back\\slash"]
            let numbers: [Int?] = [Int.min, nil, 0, Int.max]
            let bytes: [[UInt8]] = [[0, 1, 0xFF], [], [0x22, 0x5C, 0x2C], Array(repeating: 0, count: 3000)]
            let rows = try connection.query(
                "SELECT t, n, b FROM unnest($1::text[], $2::int8[], $3::bytea[]) WITH ORDINALITY AS u(t, n, b, i) ORDER BY i",
                [.textArray(texts), .integerArray(numbers), .bytesArray(bytes)])
            #expect(rows.count == 4)
            for row in 0..<4 {
                #expect(rows.text(row, 0) == texts[row] && rows.isNull(row, 1) == (numbers[row] == nil) && rows.bytes(row, 2) == bytes[row], "row \(row)")
                if let number = numbers[row] { #expect(rows.text(row, 1) == String(number)) }
            }
            #expect(try connection.query("SELECT cardinality($1::text[]), cardinality($2::int8[])", [.textArray([]), .integerArray([])]).text(0, 0) == "0")
        }
    }

    @Test func aWrongPasswordIsNotEchoedAndURLsAreRedacted() async throws {
        try await offPool { try Self.aWrongPasswordIsNotEchoedAndURLsAreRedacted() }
    }

    static func aWrongPasswordIsNotEchoedAndURLsAreRedacted() throws {
        let cluster = try PostgresCluster()
        let wrong = cluster.url.replacingOccurrences(of: PostgresCluster.password, with: "not-the-Pa55word")
        do {
            _ = try PostgresConnection(url: wrong)
            Issue.record("a wrong password connected")
        } catch {
            #expect(error.isConnectionLost)
            #expect(!error.description.contains("not-the-Pa55word") && error.description.contains("postgres://relay:***@127.0.0.1:"), "\(error)")
        }
        #expect(PostgresURL.redacted("postgresql://u:s3cret@db:5432/relay?sslmode=require&password=x2") == "postgresql://u:***@db:5432/relay?sslmode=require&password=***")
        #expect(PostgresURL.isValid("postgres://db/relay") && !PostgresURL.isValid("mysql://db/relay"))
    }

    @Test func aRestartedServerIsNoticedAndReconnectedTo() async throws {
        try await offPool { try Self.aRestartedServerIsNoticedAndReconnectedTo() }
    }

    static func aRestartedServerIsNoticedAndReconnectedTo() throws {
        let cluster = try PostgresCluster()
        let connection = try PostgresConnection(url: cluster.url)
        #expect(try connection.query("SELECT 1").integer(0, 0) == 1)
        try cluster.kill()
        do {
            try connection.query("SELECT 1")
            Issue.record("a query reached a stopped server")
        } catch {
            #expect(error.isConnectionLost, "\(error)")
        }
        try cluster.start()
        try connection.reconnect()
        #expect(try connection.query("SELECT 2").integer(0, 0) == 2)
    }

    /// The writer commits durably and plans with its indexes even on a server whose defaults
    /// say otherwise, and again after a reconnect.
    @Test func theWritersSessionSettingsHoldAgainstTheServersDefaultsAndAcrossAReconnect() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            try PostgresConnection(url: cluster.url).execute("ALTER DATABASE postgres SET synchronous_commit TO off")
            #expect(try PostgresConnection(url: cluster.url).query("SHOW synchronous_commit").text(0, 0) == "off")
            let writer = try PostgresConnection(url: cluster.url, settings: PostgresDeliveryStore.sessionSettings)
            func settings() throws -> [String?] {
                [try writer.query("SHOW synchronous_commit").text(0, 0), try writer.query("SHOW enable_seqscan").text(0, 0)]
            }
            #expect(try settings() == ["on", "off"])
            try cluster.kill()
            try cluster.start()
            _ = try? writer.query("SELECT 1")
            try writer.reconnect()
            #expect(try settings() == ["on", "off"])
        }
    }
}
