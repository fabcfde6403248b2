import FoundationEssentials
import RelayHTTP
import RelayMapping
import RelayStore

/// What HappyTalk made of a call, classified as docs/happytalk.md says
/// ("What follows for the relay").
package enum UpstreamResult: Sendable, Equatable {
    case success
    /// HappyTalk answered `fail`. `isCredentialProblem` for -501 token and -502 unAuthorized
    /// (the relay's own token is wrong: alarm, and retry); `isPermanent` for the event's own
    /// data (-501 uuid, -503 users/room, and any other code).
    case failed(code: Int, message: String, isCredentialProblem: Bool)
    /// HTTP 5xx or 429: HappyTalk is there but not serving now.
    case unavailable(status: Int)
    /// An answer that is not HappyTalk's JSON, or a transport failure (the reason may hold
    /// connection details: for logs, not for senders).
    case transient(String)
    /// No answer within the timeout.
    case timedOut

    /// Whether retrying can help.
    package var isRetryable: Bool {
        switch self {
        case .success: false
        case .failed(_, _, let isCredentialProblem): isCredentialProblem
        case .unavailable, .transient, .timedOut: true
        }
    }

    /// What HappyTalk said, to keep with the attempt (nil when it said nothing: no answer).
    package var answer: UpstreamAnswer? {
        switch self {
        case .success: UpstreamAnswer(status: 200)
        case .failed(let code, let message, _): UpstreamAnswer(status: 200, code: code, message: message)
        case .unavailable(let status): UpstreamAnswer(status: status)
        case .transient, .timedOut: nil
        }
    }

    /// Classifies an HTTP answer from the endpoint.
    package static func classify(status: Int, body: [UInt8]) -> UpstreamResult {
        if status == 429 || status >= 500 { return .unavailable(status: status) }
        guard let value = try? JSONParser(maxDepth: 16, maxBytes: 1 << 20).parse(body), let result = value["result"]?.stringValue else {
            return .transient("HappyTalk's answer (HTTP \(status)) is not its JSON")
        }
        switch result {
        case "success":
            return .success
        case "fail":
            let code: Int
            switch value["code"] {
            case .number(let digits)?: code = Int(digits) ?? 0
            case .string(let text)?: code = Int(text) ?? 0
            default: code = 0
            }
            let message = value["message"]?.text ?? ""
            let isCredentialProblem = (code == -501 && message == "token") || (code == -502)
            return .failed(code: code, message: message, isCredentialProblem: isCredentialProblem)
        default:
            return .transient("HappyTalk answered an unknown result \"\(result)\"")
        }
    }
}

/// HappyTalk's base URL as given (`--upstream`), and what the client reaches it by, parsed once.
package struct UpstreamURL: Sendable, CustomStringConvertible {
    /// The URL as given, for `--print-config`.
    package let description: String
    package let endpoint: HTTPEndpoint
    /// The URL's path, without a trailing slash; the API path goes under it.
    package let basePath: String

    /// Nil unless `text` is an http:// or https:// URL with a host.
    package init?(_ text: String) {
        guard let (endpoint, basePath) = HTTPEndpoint.parse(url: text) else { return nil }
        description = text
        self.endpoint = endpoint
        self.basePath = basePath
    }

    /// HappyTalk's production service.
    package static let production = UpstreamURL("https://customer.happytalk.io")!
}

/// The `set_user_info` endpoint, reached through our pooled client. The token is put into
/// the body here, at send time, and nowhere else.
package final class HappyTalkUpstream: Sendable {
    /// The API path under the base URL.
    package static let path = "/user/api/set_user_info/format/json"

    package let endpoint: HTTPEndpoint
    /// The request target: the base URL's path, then the API path.
    package let target: String
    private let client: HTTPClient
    private let headers: HTTPHeaders

    /// An upstream at `url` (`UpstreamURL.production` in production).
    package init(url: UpstreamURL, client: HTTPClient) {
        endpoint = url.endpoint
        target = url.basePath + Self.path
        self.client = client
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json; charset=utf-8")
        headers.add(name: "accept", value: "application/json")
        headers.add(name: "user-agent", value: "happyrelay")
        self.headers = headers
    }

    /// Sends a body (token included) on `loop`, which must be the calling thread's; `completion`
    /// runs there with HappyTalk's verdict and, with a 429 or 503, its `Retry-After`
    /// (RFC 9110 §10.2.3, delay in seconds).
    package func send(
        body: [UInt8], on loop: EventLoop, timeout: Duration, completion: @escaping (UpstreamResult, Duration?) -> Void
    ) {
        let request = HTTPClientRequest(method: .post, endpoint: endpoint, target: target, headers: headers, body: body)
        client.execute(request, on: loop, deadline: monotonicNanoseconds() + timeout.nanoseconds) { result in
            switch result {
            case .success(let response):
                var retryAfter: Duration?
                if response.status == 429 || response.status == 503, let value = response.headers["retry-after"] {
                    retryAfter = Self.retryAfter(value)
                }
                completion(UpstreamResult.classify(status: response.status, body: response.body), retryAfter)
            case .failure(.timedOut):
                completion(.timedOut, nil)
            case .failure(let error):
                completion(.transient(error.description), nil)
            }
        }
    }

    /// Sends one call with `token` from any thread, waiting at most `timeout`.
    package func send(_ call: MappedCall, token: String, timeout: Duration) async -> UpstreamResult {
        let loop = client.group.next()
        let body = call.body(token: token)
        return await withCheckedContinuation { continuation in
            loop.execute { [self] in
                send(body: body, on: loop, timeout: timeout) { result, _ in continuation.resume(returning: result) }
            }
        }
    }

    /// The body of a stored call (its JSON object without `token`) with the token put first,
    /// as `MappedCall.body(token:)` writes it; `prefix` is `TokenPrefix` of the token.
    package static func body(storedCall call: [UInt8], prefix: [UInt8]) -> [UInt8] {
        var body = prefix
        body.reserveCapacity(prefix.count + call.count)
        if call.count > 2 {
            body.append(UInt8(ascii: ","))
            body.append(contentsOf: call[1...])
        } else {
            body.append(UInt8(ascii: "}"))
        }
        return body
    }

    /// `{"token":"…"` for a token: the start of every body sent with it.
    package static func tokenPrefix(_ token: String) -> [UInt8] {
        var prefix: [UInt8] = Array(#"{"token":"#.utf8)
        JSONSerializer.writeString(token, to: &prefix)
        return prefix
    }

    /// The longest `Retry-After` taken from an answer; the retry policy's own cap applies too.
    static let maxRetryAfter: Duration = .seconds(86_400)

    /// A `Retry-After` of delay-seconds (RFC 9110 §10.2.3: 1*DIGIT), clamped to a day; nil
    /// for anything else (an HTTP-date is left to the policy's own backoff).
    static func retryAfter(_ value: String) -> Duration? {
        let digits = value.trimmingWhitespace()
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        // Many digits cannot be a delay anyone means: clamp before converting, never overflow.
        guard digits.utf8.count <= 6, let seconds = Int(digits) else { return maxRetryAfter }
        return min(.seconds(seconds), maxRetryAfter)
    }
}
