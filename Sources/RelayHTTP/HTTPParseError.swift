/// Why a message could not be parsed; each case knows the status it is answered with.
/// After any of these the connection's framing is lost, so it is closed after the answer.
package enum HTTPParseError: Error, Equatable, Sendable {
    /// The request line and header fields exceed the configured limit (431).
    case headersTooLarge
    /// The declared or received body exceeds the configured limit (413).
    case payloadTooLarge
    /// A transfer coding other than `chunked` (501).
    case unsupportedTransferCoding(String)
    /// Anything else malformed (400); the text says what, without echoing the input.
    case malformed(String)

    /// The status a server answers this error with.
    package var status: HTTPStatus {
        switch self {
        case .headersTooLarge: .headersTooLarge
        case .payloadTooLarge: .payloadTooLarge
        case .unsupportedTransferCoding: .notImplemented
        case .malformed: .badRequest
        }
    }

    /// A short, human-readable reason suitable for an error body.
    package var message: String {
        switch self {
        case .headersTooLarge: "request line and headers are too large"
        case .payloadTooLarge: "request body is too large"
        case .unsupportedTransferCoding(let coding): "transfer coding \"\(coding)\" is not supported"
        case .malformed(let reason): reason
        }
    }
}
