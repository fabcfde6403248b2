import CPostgres

#if canImport(Glibc)
import Glibc
#endif

/// The libpq functions the PostgreSQL engine calls, opened when a PostgreSQL store is first
/// used: a relay on SQLite never maps libpq, nor what libpq loads (Kerberos, LDAP, GnuTLS:
/// 3.3 MB of a relay's memory), and runs without libpq installed. `CPostgres` gives the
/// types and constants of libpq's header; the functions come from `dlsym`.
struct LibPQ: @unchecked Sendable {
    let connectdb: @convention(c) (UnsafePointer<CChar>?) -> OpaquePointer?
    let status: @convention(c) (OpaquePointer?) -> ConnStatusType
    let errorMessage: @convention(c) (OpaquePointer?) -> UnsafeMutablePointer<CChar>?
    let finish: @convention(c) (OpaquePointer?) -> Void
    let setNoticeProcessor: @convention(c) (OpaquePointer?, PQnoticeProcessor?, UnsafeMutableRawPointer?) -> PQnoticeProcessor?
    let reset: @convention(c) (OpaquePointer?) -> Void
    let exec: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> OpaquePointer?
    let execPrepared:
        @convention(c) (
            OpaquePointer?, UnsafePointer<CChar>?, Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?,
            Int32
        ) -> OpaquePointer?
    let execParams:
        @convention(c) (
            OpaquePointer?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
            UnsafePointer<Int32>?, Int32
        ) -> OpaquePointer?
    let prepare: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?) -> OpaquePointer?
    let clear: @convention(c) (OpaquePointer?) -> Void
    let resultStatus: @convention(c) (OpaquePointer?) -> ExecStatusType
    let resultErrorMessage: @convention(c) (OpaquePointer?) -> UnsafeMutablePointer<CChar>?
    let resultErrorField: @convention(c) (OpaquePointer?, Int32) -> UnsafeMutablePointer<CChar>?
    let ntuples: @convention(c) (OpaquePointer?) -> Int32
    let nfields: @convention(c) (OpaquePointer?) -> Int32
    let getisnull: @convention(c) (OpaquePointer?, Int32, Int32) -> Int32
    let getlength: @convention(c) (OpaquePointer?, Int32, Int32) -> Int32
    let getvalue: @convention(c) (OpaquePointer?, Int32, Int32) -> UnsafeMutablePointer<CChar>?

    /// libpq, opened once for the process; the error says what to install when it is missing.
    static let shared: Result<LibPQ, PostgresError> = Result { () throws(PostgresError) in try LibPQ(library: "libpq.so.5") }

    /// Opens `library` (a shared object name, as `dlopen` takes it) and finds its functions.
    init(library: String) throws(PostgresError) {
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            throw PostgresError("PostgreSQL needs libpq, which cannot be loaded (\(reason)): install it (apt-get install libpq5)")
        }
        // Each function's type is the property's it is stored in.
        func function<T>(_ name: String) throws(PostgresError) -> T {
            guard let address = dlsym(handle, name) else { throw PostgresError("\(library) has no \(name)") }
            return unsafeBitCast(address, to: T.self)
        }
        connectdb = try function("PQconnectdb")
        status = try function("PQstatus")
        errorMessage = try function("PQerrorMessage")
        finish = try function("PQfinish")
        setNoticeProcessor = try function("PQsetNoticeProcessor")
        reset = try function("PQreset")
        exec = try function("PQexec")
        execPrepared = try function("PQexecPrepared")
        execParams = try function("PQexecParams")
        prepare = try function("PQprepare")
        clear = try function("PQclear")
        resultStatus = try function("PQresultStatus")
        resultErrorMessage = try function("PQresultErrorMessage")
        resultErrorField = try function("PQresultErrorField")
        ntuples = try function("PQntuples")
        nfields = try function("PQnfields")
        getisnull = try function("PQgetisnull")
        getlength = try function("PQgetlength")
        getvalue = try function("PQgetvalue")
    }
}
