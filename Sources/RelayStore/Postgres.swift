import CPostgres
import FoundationEssentials
import RelayMapping

/// A PostgreSQL failure: libpq's message (never the password: libpq does not echo it) and,
/// for a failed statement, its SQLSTATE.
package struct PostgresError: Error, Sendable, CustomStringConvertible {
    package let description: String
    /// The SQLSTATE of a failed statement (`23505` unique violation, …), nil for connection errors.
    package let sqlState: String?
    /// The connection is gone (server restart, failover, network): reconnect and try again.
    package let isConnectionLost: Bool

    package init(_ description: String, sqlState: String? = nil, isConnectionLost: Bool = false) {
        self.description = description
        self.sqlState = sqlState
        self.isConnectionLost = isConnectionLost
    }
}

/// A value bound to a statement's `$n`, sent as text (bytes as `bytea` in binary). Arrays
/// go in PostgreSQL's binary array format, so that one statement writes a whole batch
/// (`unnest($1::text[], …)`) with no quoting or hex: the statement casts them to `text[]`,
/// `int8[]` and `bytea[]`.
package enum PostgresValue: Sendable {
    case text(String)
    case integer(Int)
    case bytes([UInt8])
    case null
    case textArray([String?])
    case integerArray([Int?])
    case bytesArray([[UInt8]])

    /// The value as libpq sends it: bytes (nil for NULL) and whether they are binary.
    fileprivate var wire: (bytes: [UInt8]?, binary: Bool) {
        switch self {
        case .text(let text): (Array(text.utf8) + [0], false)
        case .integer(let value): (Array(String(value).utf8) + [0], false)
        case .bytes(let bytes): (bytes, true)
        case .null: (nil, false)
        case .textArray(let texts):
            (Self.binaryArray(elementType: 25, texts) { text, out in out.append(contentsOf: text.utf8) }, true)
        case .bytesArray(let values):
            (Self.binaryArray(elementType: 17, values) { bytes, out in out.append(contentsOf: bytes) }, true)
        case .integerArray(let values):
            (Self.binaryArray(elementType: 20, values) { value, out in withUnsafeBytes(of: Int64(value).bigEndian) { out.append(contentsOf: $0) } }, true)
        }
    }

    /// PostgreSQL's binary array format (`array_recv`): dimensions, flags, the element type's
    /// OID, then each element as a length (-1: NULL) and its bytes (`write` appends them),
    /// integers big-endian.
    static func binaryArray<Element>(elementType: UInt32, _ elements: [Element?], write: (Element, inout [UInt8]) -> Void) -> [UInt8] {
        var out: [UInt8] = []
        func append(_ value: Int32) { withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) } }
        append(elements.isEmpty ? 0 : 1)
        append(elements.contains { $0 == nil } ? 1 : 0)
        append(Int32(bitPattern: elementType))
        if !elements.isEmpty {
            append(Int32(elements.count))
            append(1)
        }
        for element in elements {
            guard let element else {
                append(-1)
                continue
            }
            // The length is known once the element is written.
            let lengthAt = out.count
            append(0)
            write(element, &out)
            withUnsafeBytes(of: Int32(out.count - lengthAt - 4).bigEndian) { out.replaceSubrange(lengthAt..<lengthAt + 4, with: $0) }
        }
        return out
    }
}

/// The rows a query returned, as text (`bytea` columns decoded from their hex form).
package struct PostgresRows: Sendable {
    package let rows: [[String?]]

    package var count: Int { rows.count }

    package func text(_ row: Int, _ column: Int) -> String? { rows[row][column] }

    package func integer(_ row: Int, _ column: Int) -> Int { rows[row][column].flatMap { Int($0) } ?? 0 }

    package func isNull(_ row: Int, _ column: Int) -> Bool { rows[row][column] == nil }

    /// A `bytea` column (`\x…` hex), as bytes.
    package func bytes(_ row: Int, _ column: Int) -> [UInt8] {
        guard let text = rows[row][column], text.hasPrefix("\\x") else { return Array((rows[row][column] ?? "").utf8) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((text.utf8.count - 2) / 2)
        var high: UInt8?
        for character in text.utf8.dropFirst(2) {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return bytes
    }
}

/// One blocking libpq connection, used by one thread at a time (the store's own threads,
/// never an event loop).
package final class PostgresConnection {
    private let pq: LibPQ
    private var handle: OpaquePointer?
    private let url: String
    /// Statements prepared on this connection, by their text (gone with the connection).
    private var prepared: [String: String] = [:]
    /// The relay's statements are a fixed set; anything beyond this many is run unprepared.
    private static let maxPrepared = 128

    /// Statements run on every new session (after a reconnect too): `SET …`.
    private let sessionSettings: [String]
    /// Statements run so far, each a round trip to the server (preparing one is not counted).
    package private(set) var statementsRun = 0

    /// Connects with a libpq connection URI (`postgres://user:password@host:port/db?sslmode=…`);
    /// `settings` are run on the new session, and again after each reconnect.
    package init(url: String, settings: [String] = []) throws(PostgresError) {
        pq = try LibPQ.shared.get()
        self.url = url
        sessionSettings = settings
        handle = pq.connectdb(PostgresURL.withDefaults(url))
        guard let handle, pq.status(handle) == CONNECTION_OK else {
            let message = handle.map { Self.message(pq.errorMessage($0)) } ?? "out of memory"
            pq.finish(handle)
            self.handle = nil
            throw PostgresError("cannot connect to \(PostgresURL.redacted(url)): \(message)", isConnectionLost: true)
        }
        // libpq prints the server's notices (a ROLLBACK with no transaction, say) to standard
        // error by default, outside the relay's log format: they say nothing an operator needs.
        _ = pq.setNoticeProcessor(handle, { _, _ in }, nil)
        for setting in settings { try execute(setting) }
    }

    deinit { pq.finish(handle) }

    /// Whether the connection still works as far as libpq knows.
    package var isOpen: Bool { handle.map { pq.status($0) == CONNECTION_OK } ?? false }

    /// Connects again after the server went away.
    package func reconnect() throws(PostgresError) {
        guard let handle else { throw PostgresError("no connection", isConnectionLost: true) }
        prepared.removeAll()
        pq.reset(handle)
        guard pq.status(handle) == CONNECTION_OK else {
            throw PostgresError("cannot reconnect to \(PostgresURL.redacted(url)): \(Self.message(pq.errorMessage(handle)))", isConnectionLost: true)
        }
        for setting in sessionSettings { try execute(setting) }
    }

    /// Runs statements without parameters (several, separated by `;`).
    package func execute(_ sql: String) throws(PostgresError) {
        guard let handle else { throw PostgresError("no connection", isConnectionLost: true) }
        statementsRun += 1
        let result = pq.exec(handle, sql)
        defer { pq.clear(result) }
        try check(result)
    }

    /// Runs one statement with `$1…$n` bound to `parameters`; returns its rows.
    @discardableResult
    package func query(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) -> PostgresRows {
        guard let handle else { throw PostgresError("no connection", isConnectionLost: true) }
        var buffers: [[UInt8]?] = []
        var formats: [Int32] = []
        buffers.reserveCapacity(parameters.count)
        formats.reserveCapacity(parameters.count)
        for parameter in parameters {
            let (bytes, binary) = parameter.wire
            buffers.append(bytes)
            formats.append(binary ? 1 : 0)
        }
        let lengths = buffers.map { Int32($0?.count ?? 0) }
        let statement = try prepare(sql, parameterCount: parameters.count, on: handle)
        statementsRun += 1
        let result: OpaquePointer? = withPointers(buffers) { pointers in
            if let statement { return pq.execPrepared(handle, statement, Int32(parameters.count), pointers, lengths, formats, 0) }
            return pq.execParams(handle, sql, Int32(parameters.count), nil, pointers, lengths, formats, 0)
        }
        defer { pq.clear(result) }
        try check(result)
        var rows: [[String?]] = []
        let rowCount = pq.ntuples(result)
        let columnCount = pq.nfields(result)
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                if pq.getisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(pq.getlength(result, row, column))
                    let pointer = pq.getvalue(result, row, column)!
                    values.append(pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
                        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                    })
                }
            }
            rows.append(values)
        }
        return PostgresRows(rows: rows)
    }

    /// The name of `sql` prepared on this connection (parsed and planned once, not on every
    /// call), preparing it on first use; nil past `maxPrepared` distinct statements.
    private func prepare(_ sql: String, parameterCount: Int, on handle: OpaquePointer) throws(PostgresError) -> String? {
        if let name = prepared[sql] { return name }
        guard prepared.count < Self.maxPrepared else { return nil }
        let name = "happyrelay_\(prepared.count)"
        let result = pq.prepare(handle, name, sql, Int32(parameterCount), nil)
        defer { pq.clear(result) }
        try check(result)
        prepared[sql] = name
        return name
    }

    private func check(_ result: OpaquePointer?) throws(PostgresError) {
        let status = result.map { pq.resultStatus($0) } ?? PGRES_FATAL_ERROR
        guard status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK else { return }
        let message = result.map { Self.message(pq.resultErrorMessage($0)) } ?? handle.map { Self.message(pq.errorMessage($0)) } ?? "no connection"
        let state = result.flatMap { pq.resultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        // Class 08 (connection exception) and 57P01–57P03 (the server shutting down or starting)
        // mean another connection, later, may work.
        let lost = (handle.map { pq.status($0) != CONNECTION_OK } ?? true) || state.map { $0.hasPrefix("08") || $0.hasPrefix("57P0") } ?? false
        throw PostgresError(message.isEmpty ? "the statement failed" : message, sqlState: state, isConnectionLost: lost)
    }

    private func withPointers<T>(_ buffers: [[UInt8]?], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
        // Copies that live as long as the call: libpq reads them synchronously.
        let copies: [UnsafeMutablePointer<CChar>?] = buffers.map { buffer in
            guard let buffer else { return nil }
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(buffer.count, 1))
            buffer.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(copy).copyMemory(from: base, byteCount: buffer.count) }
            }
            return copy
        }
        defer { for copy in copies { copy?.deallocate() } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }

    static func message(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        // libpq's messages run over several lines ("…\n\tIs the server running…"): one line
        // each, for logs and the CLI.
        return String(cString: pointer).split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// PostgreSQL connection URIs as the relay shows them: the password replaced.
package enum PostgresURL {
    /// Whether `text` is a `postgres://` or `postgresql://` URI.
    package static func isValid(_ text: String) -> Bool {
        (text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")) && URLComponents(string: text) != nil
    }

    /// The URI with a connect timeout (5 s) unless it sets one: a database host that is gone
    /// must not hold the store thread for the system's TCP timeout.
    static func withDefaults(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return text }
        var items = components.queryItems ?? []
        guard !items.contains(where: { $0.name == "connect_timeout" }) else { return text }
        items.append(URLQueryItem(name: "connect_timeout", value: "5"))
        components.queryItems = items
        return components.string ?? text
    }

    /// The URI with its password (in the user part or a `password=` parameter) as `***`.
    package static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return "(a connection URI that cannot be shown)" }
        if components.password != nil { components.password = "***" }
        if let items = components.queryItems {
            components.queryItems = items.map { $0.name == "password" ? URLQueryItem(name: "password", value: "***") : $0 }
        }
        return components.string ?? "(a connection URI that cannot be shown)"
    }
}
