import RelayHTTP
import RelayMapping
import RelayStore

/// A refusal before mapping: the address, the signature, the body or its media type.
package struct Rejection: Sendable, Equatable {
    package var status: HTTPStatus
    package var error: String
    package var message: String

    package init(_ status: HTTPStatus, error: String, message: String) {
        self.status = status
        self.error = error
        self.message = message
    }
}

/// How a webhook ended: the one input of its answer, its log line and its metrics.
package enum WebhookResult: Sendable {
    /// Async: queued (stored before this answer).
    case accepted(id: String)
    /// Sync: HappyTalk answered success.
    case delivered
    /// Dry run: mapped and logged, nothing stored or sent.
    case dryRun(isSync: Bool, id: String)
    case ignored(reason: String)
    /// The route's dedupe key was seen before, by the webhook with this id.
    case duplicate(firstID: String)
    /// The same dedupe key is being handled by another request right now.
    case inProgress
    /// The matching rule only stored a binding (or would have, in a dry run).
    case bound(isDryRun: Bool)
    case rejected(Rejection)
    /// The rule matched but made an invalid call; on an async route the request is kept as a
    /// dead delivery with this id.
    case mappingFailed(MappingFailure, deadLetterID: String?)
    /// Sync: HappyTalk refused, failed or did not answer in time.
    case upstreamFailed(UpstreamResult, timeout: Duration)
    /// The store refused the webhook's writes.
    case storeRefused(StoreError)

    /// The `outcome` label of the webhook's log line and metrics.
    package var outcome: WebhookOutcome {
        switch self {
        case .accepted, .delivered, .dryRun: .accepted
        case .ignored: .ignored
        case .duplicate, .inProgress: .duplicate
        case .bound: .bound
        case .rejected: .rejected
        case .mappingFailed, .upstreamFailed, .storeRefused: .failed
        }
    }
}

/// The only place a webhook's result becomes an HTTP answer. Bodies keep the upstream's shape
/// (`result`), so one parser serves a chatbot and a shop; `verified: false` marks answers of a
/// route served unverified (a dry run without its secret).
package enum WebhookAnswers {
    package static func response(for result: WebhookResult, isVerified: Bool = true) -> HTTPResponse {
        var body = AnswerJSON()
        let status: HTTPStatus
        var headers = HTTPHeaders()
        switch result {
        case .accepted(let id):
            status = .accepted
            body = body.string("result", "accepted").string("id", id)
        case .delivered:
            status = .ok
            body = body.string("result", "success")
        case .dryRun(let isSync, let id):
            status = isSync ? .ok : .accepted
            body = body.string("result", isSync ? "success" : "accepted")
            if !isSync { body = body.string("id", id) }
            body = body.literal("dry_run", "true")
        case .ignored(let reason):
            status = .ok
            body = body.string("result", "ignored").string("reason", reason)
        case .duplicate(let firstID):
            return AnswerJSON().string("result", "duplicate").string("id", firstID).response(.ok)
        case .inProgress:
            headers.add(name: "retry-after", value: "1")
            return fail(.conflict, error: "in_progress", message: "the same event is being handled now; retry shortly", headers: headers)
        case .bound(let isDryRun):
            status = .ok
            body = body.string("result", "bound")
            if isDryRun { body = body.literal("dry_run", "true") }
        case .rejected(let rejection):
            return fail(rejection.status, error: rejection.error, message: rejection.message)
        case .mappingFailed(let failure, let deadLetterID?):
            // Answered 2xx: resending cannot fix a mapping, and platforms disable endpoints that
            // keep failing. The request is kept for a replay once the mapping is fixed.
            return AnswerJSON().string("result", "fail").string("error", "mapping_failed").string("message", failure.description)
                .string("id", deadLetterID).response(.accepted)
        case .mappingFailed(let failure, nil):
            return fail(.unprocessableContent, error: "mapping_failed", message: failure.description)
        case .upstreamFailed(let upstream, let timeout):
            return upstreamFailure(upstream, timeout: timeout)
        case .storeRefused(.bindingConflict(let kind)):
            return fail(.conflict, error: "binding_conflict", message: StoreError.bindingConflict(kind: kind).description)
        case .storeRefused(let error):
            headers.add(name: "retry-after", value: "5")
            return fail(.serviceUnavailable, error: "unavailable", message: "\(error.description); retry later", headers: headers)
        }
        if !isVerified { body = body.literal("verified", "false") }
        return body.response(status, headers: headers)
    }

    /// A sync route's answer when HappyTalk did not say success: its own refusal passed
    /// through, or a stable error code (what went wrong in detail is in the log).
    static func upstreamFailure(_ result: UpstreamResult, timeout: Duration) -> HTTPResponse {
        switch result {
        case .success:
            return AnswerJSON().string("result", "success").response(.ok)
        case .failed(let code, let message, _):
            return AnswerJSON().string("result", "fail").literal("code", String(code)).string("message", message).response(.badGateway)
        case .timedOut:
            return fail(.gatewayTimeout, error: "upstream_timeout", message: "HappyTalk did not answer within \(timeout)")
        case .unavailable(let status):
            return fail(.badGateway, error: "upstream_unavailable", message: "HappyTalk answered HTTP \(status)")
        case .transient:
            return fail(.badGateway, error: "upstream_unreachable", message: "HappyTalk could not be reached")
        }
    }

    static func fail(_ status: HTTPStatus, error: String, message: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        AnswerJSON().string("result", "fail").string("error", error).string("message", message).response(status, headers: headers)
    }
}

/// A flat JSON object built member by member — escaped strings, or literals (numbers,
/// booleans) as given — straight into the answer's body bytes.
struct AnswerJSON {
    private var bytes: [UInt8]

    init() {
        // Room for the usual answer, so that it is written without growing.
        bytes = []
        bytes.reserveCapacity(96)
        bytes.append(UInt8(ascii: "{"))
    }

    consuming func string(_ key: String, _ value: String) -> AnswerJSON {
        var json = consume self
        json.appendKey(key)
        JSONSerializer.writeString(value, to: &json.bytes)
        return json
    }

    consuming func literal(_ key: String, _ value: String) -> AnswerJSON {
        var json = consume self
        json.appendKey(key)
        json.bytes.append(contentsOf: value.utf8)
        return json
    }

    private mutating func appendKey(_ key: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        JSONSerializer.writeString(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    /// The object, closed, as a JSON answer.
    consuming func response(_ status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var json = consume self
        json.bytes.append(UInt8(ascii: "}"))
        return .json(status, body: json.bytes, headers: headers)
    }
}
