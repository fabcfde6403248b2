#if canImport(Glibc)
import Glibc
#endif

/// What a non-blocking transport operation did.
package enum TransportResult: Equatable, Sendable {
    case count(Int)
    /// Retry when the descriptor is readable.
    case wantRead
    /// Retry when the descriptor is writable (TLS may need to write to read).
    case wantWrite
    case eof
}

/// A byte stream over a connected non-blocking socket. The plain socket is one; a TLS
/// session (which may need to write in order to read, and has a handshake) is another.
package protocol Transport: AnyObject {
    /// The socket the stream runs on; the event loop watches it.
    var fd: Int32 { get }
    /// Advances the handshake; `.count(0)` when it is complete.
    func handshake() throws -> TransportResult
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TransportResult
    func write(_ bytes: UnsafeRawBufferPointer) throws -> TransportResult
    /// Closes the stream and its socket.
    func close()
    /// Whether bytes were read from the socket but not yet returned by `read` (TLS records
    /// decrypted ahead): the socket will not signal them.
    var hasBufferedInput: Bool { get }
}

/// Makes the transport of an accepted socket (TLS for a server with a certificate).
package protocol ServerTransportFactory: Sendable {
    func makeServerTransport(fd: Int32) throws -> any Transport
}

/// Makes the transport for a freshly connected socket (plain, or TLS for `https`).
package protocol TransportFactory: Sendable {
    func makeTransport(fd: Int32, host: String) throws -> any Transport
}

/// Plain TCP.
package final class PlainTransport: Transport {
    package let fd: Int32
    private var isClosed = false

    package init(fd: Int32) { self.fd = fd }

    package func handshake() throws -> TransportResult { .count(0) }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TransportResult {
        switch try Syscall.read(fd, buffer) {
        case .count(let count): .count(count)
        case .wouldBlock: .wantRead
        case .eof: .eof
        }
    }

    package func write(_ bytes: UnsafeRawBufferPointer) throws -> TransportResult {
        switch try Syscall.write(fd, bytes) {
        case .count(let count): .count(count)
        case .wouldBlock: .wantWrite
        case .eof: .eof
        }
    }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        Syscall.close(fd)
    }

    package var hasBufferedInput: Bool { false }
}

/// The factory for plain TCP.
package struct PlainTransportFactory: TransportFactory {
    package init() {}
    package func makeTransport(fd: Int32, host: String) throws -> any Transport { PlainTransport(fd: fd) }
}
