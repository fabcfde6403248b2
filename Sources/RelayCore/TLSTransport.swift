import COpenSSL
import CTLS
import RelayHTTP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why TLS could not be set up or a handshake failed.
package struct TLSError: Error, CustomStringConvertible {
    package let description: String
}

/// TLS client sessions from OpenSSL's libssl: TLS 1.2 or later, certificates verified
/// against the system trust store (plus an optional CA file), host name checked, SNI sent.
/// There is no switch to skip verification. A new connection to a host resumes the last
/// session it gave (no certificate chain sent and verified again, no full key exchange).
package final class TLSClientFactory: TransportFactory, @unchecked Sendable {
    // An SSL_CTX is safe to share between threads once configured.
    let context: OpaquePointer
    private let sessions = TLSSessionCache()

    /// A factory trusting the system store, and `caFile` too when given.
    package init(caFile: String? = nil) throws(TLSError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TLSError(description: "cannot create a TLS context") }
        self.context = context
        guard ctls_require_tls12(context) == 1 else { throw TLSError(description: "cannot require TLS 1.2") }
        ctls_set_nonblocking_modes(context)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        guard SSL_CTX_set_default_verify_paths(context) == 1 else { throw TLSError(description: "cannot load the system trust store") }
        if let caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                ERR_clear_error()
                throw TLSError(description: "cannot load CA certificates from \(caFile)")
            }
        }
        ctls_hand_client_sessions_over(context)
        // Called inside SSL_read or SSL_do_handshake on the transport's loop, when the server
        // gives a session (TLS 1.3: a ticket after the handshake). 1: the callback keeps it.
        SSL_CTX_sess_set_new_cb(context) { ssl, session in
            guard let ssl, let session, let owner = SSL_get_ex_data(ssl, 0) else { return 0 }
            return Unmanaged<TLSTransport>.fromOpaque(owner).takeUnretainedValue().keep(session) ? 1 : 0
        }
    }

    deinit { SSL_CTX_free(context) }

    /// New connections that resumed a session instead of a full handshake, since start.
    package var resumedSessions: Int { sessions.resumed }

    package func makeTransport(fd: Int32, host: String) throws -> any Transport {
        guard let ssl = SSL_new(context) else { throw TLSError(description: "cannot create a TLS session") }
        SSL_set_fd(ssl, fd)
        var isAddress = false
        var scratch = in6_addr()
        if inet_pton(AF_INET, host, &scratch) == 1 || inet_pton(AF_INET6, host, &scratch) == 1 { isAddress = true }
        if isAddress {
            // RFC 6066 §3: no SNI for literal addresses; the certificate must name the IP.
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            _ = ctls_set_server_name(ssl, host)
            guard SSL_set1_host(ssl, host) == 1 else {
                SSL_free(ssl)
                throw TLSError(description: "cannot set the host name to verify")
            }
        }
        SSL_set_connect_state(ssl)
        let transport = TLSTransport(ssl: ssl, fd: fd, host: host, sessions: sessions)
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(transport).toOpaque())
        return transport
    }
}

/// The latest resumable session each host gave, for the next connection to it. Each is used
/// once (RFC 8446 §C.4: a client does not reuse a ticket); every connection brings a fresh one.
final class TLSSessionCache: Sendable {
    /// An SSL_SESSION reference that may cross threads (OpenSSL counts its references under a lock).
    struct Session: @unchecked Sendable {
        let pointer: OpaquePointer
    }
    private let sessions = Mutex<[String: Session]>([:])
    private let resumptions = Atomic<Int>(0)

    /// Handshakes that resumed a session from this cache.
    var resumed: Int { resumptions.load(ordering: .relaxed) }

    /// Counts a handshake that resumed a session.
    func noteResumption() { resumptions.wrappingAdd(1, ordering: .relaxed) }

    deinit { sessions.withLock { for session in $0.values { SSL_SESSION_free(session.pointer) } } }

    /// Keeps `session` (whose reference passes to the cache) for `host`, in place of the one before.
    func store(_ session: OpaquePointer, for host: String) {
        let replaced = sessions.withLock { $0.updateValue(Session(pointer: session), forKey: host) }
        if let replaced { SSL_SESSION_free(replaced.pointer) }
    }

    /// The session for `host`, taken out of the cache (its reference passes to the caller).
    func take(for host: String) -> Session? {
        sessions.withLock { $0.removeValue(forKey: host) }
    }
}

/// One TLS session over a non-blocking socket.
final class TLSTransport: Transport {
    let fd: Int32
    private let ssl: OpaquePointer
    private let host: String
    /// Where a client keeps the sessions its server gives (nil for a server's sessions).
    private let sessions: TLSSessionCache?
    private var isClosed = false

    init(ssl: OpaquePointer, fd: Int32, host: String, sessions: TLSSessionCache? = nil) {
        self.ssl = ssl
        self.fd = fd
        self.host = host
        self.sessions = sessions
    }

    /// Keeps a session the server gave, for the next connection to the host; false when there
    /// is nowhere to keep it (a server's transport) or it cannot be resumed.
    func keep(_ session: OpaquePointer) -> Bool {
        guard let sessions, SSL_SESSION_is_resumable(session) == 1 else { return false }
        sessions.store(session, for: host)
        return true
    }

    deinit { close() }

    /// Offers the last session the host gave, taken out of the cache (each is used once).
    private func offerSession() {
        guard let sessions, let session = sessions.take(for: host) else { return }
        // SSL_set_session takes a reference of its own; a session the server no longer
        // accepts costs a full handshake, nothing more.
        SSL_set_session(ssl, session.pointer)
        SSL_SESSION_free(session.pointer)
    }

    func handshake() throws -> TransportResult {
        // A client offers the session to resume as the handshake begins, on a connected
        // socket: the transport is made before its address answers, and one that refuses
        // (`localhost`'s `::1` where the server listens on 127.0.0.1 only) must not use the
        // session up, or no connection to a host whose first address fails would resume.
        if SSL_in_before(ssl) == 1 { offerSession() }
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            if let sessions, SSL_session_reused(ssl) == 1 { sessions.noteResumption() }
            return .count(0)
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        default:
            let verify = SSL_get_verify_result(ssl)
            let reason: String
            if host.isEmpty {
                reason = "TLS handshake failed: " + Self.lastError()
            } else if verify != X509_V_OK {
                reason = "certificate of \(host) is not trusted: " + String(cString: X509_verify_cert_error_string(verify))
            } else {
                reason = "TLS handshake with \(host) failed: " + Self.lastError()
            }
            ERR_clear_error()
            throw TLSError(description: reason)
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TransportResult {
        let count = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        if count > 0 { return .count(Int(count)) }
        return try outcome(of: count, operation: "read")
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws -> TransportResult {
        guard !bytes.isEmpty else { return .count(0) }
        let count = SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
        if count > 0 { return .count(Int(count)) }
        return try outcome(of: count, operation: "write")
    }

    private func outcome(of result: Int32, operation: String) throws -> TransportResult {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .eof
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            // The peer closed without close_notify: treat it as the end of the stream.
            return .eof
        default:
            let reason = Self.lastError()
            ERR_clear_error()
            throw TLSError(description: "TLS \(operation) failed: \(reason)")
        }
    }

    // Decrypted bytes not yet returned, or raw bytes read ahead and not yet decrypted: the
    // socket signals neither.
    var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        // No session is handed to a transport that is closing (perhaps in its deinit).
        SSL_set_ex_data(ssl, 0, nil)
        _ = SSL_shutdown(ssl)
        SSL_free(ssl)
        Glibc.close(fd)
    }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "connection closed" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// TLS server sessions for inbound connections (`--tls-cert`, `--tls-key`): TLS 1.2 or later,
/// the certificate chain and key loaded again on `reload` (SIGHUP). Sessions already open keep
/// the context they began with.
package final class TLSServerFactory: ServerTransportFactory, @unchecked Sendable {
    // SSL_CTX is safe to share between threads once configured; the pointer is swapped under the lock.
    private let context: Mutex<ContextPointer>

    /// An SSL_CTX pointer that may cross threads (OpenSSL locks the context itself).
    struct ContextPointer: @unchecked Sendable {
        let pointer: OpaquePointer
    }
    private let certificateFile: String
    private let keyFile: String

    /// Loads the chain and key, failing with a message that names the file at fault.
    package init(certificateFile: String, keyFile: String) throws(TLSError) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        context = Mutex(ContextPointer(pointer: try Self.makeContext(certificateFile: certificateFile, keyFile: keyFile)))
    }

    deinit { context.withLock { SSL_CTX_free($0.pointer) } }

    /// Loads the files again; on failure the current certificate stays in service.
    package func reload() throws(TLSError) {
        let fresh = ContextPointer(pointer: try Self.makeContext(certificateFile: certificateFile, keyFile: keyFile))
        // Sessions hold a reference of their own to the context they were made with.
        let old = context.withLock { current in
            defer { current = fresh }
            return current
        }
        SSL_CTX_free(old.pointer)
    }

    static func makeContext(certificateFile: String, keyFile: String) throws(TLSError) -> OpaquePointer {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw TLSError(description: "cannot create a TLS context") }
        func fail(_ message: String) -> TLSError {
            let reason = TLSTransport.lastError()
            ERR_clear_error()
            SSL_CTX_free(context)
            return TLSError(description: "\(message): \(reason)")
        }
        guard ctls_require_tls12(context) == 1 else { throw fail("cannot require TLS 1.2") }
        ctls_set_nonblocking_modes(context)
        guard SSL_CTX_use_certificate_chain_file(context, certificateFile) == 1 else {
            throw fail("--tls-cert: cannot load a PEM certificate chain from \(certificateFile)")
        }
        guard SSL_CTX_use_PrivateKey_file(context, keyFile, SSL_FILETYPE_PEM) == 1 else {
            throw fail("--tls-key: cannot load a PEM private key from \(keyFile)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else { throw fail("--tls-key: \(keyFile) is not the key of \(certificateFile)") }
        return context
    }

    package func makeServerTransport(fd: Int32) throws -> any Transport {
        guard let ssl = context.withLock({ SSL_new($0.pointer) }) else { throw TLSError(description: "cannot create a TLS session") }
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
        return TLSTransport(ssl: ssl, fd: fd, host: "")
    }
}
