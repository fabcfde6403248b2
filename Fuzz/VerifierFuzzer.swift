// libFuzzer targets for what the relay reads from outside before it trusts anything:
//
// - every webhook verification scheme (FUZZ_TARGET=<scheme>): headers, query and body from
//   the input, checked against fixed secrets; the verdict must come back (never a trap), and
//   "verified" must mean that the input carries the right MAC or secret;
// - HappyTalk's answers (FUZZ_TARGET=upstream): raw response bytes through the client's
//   response parser, the classification of the answer, its Retry-After and the retry
//   decision made from them, with the extreme stored values a damaged row could hold.
//
// Input layout for the schemes: header lines ("name: value", LF-separated), a NUL, the query
// string, a NUL, the body.

import Foundation

let target = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "upstream"
let secret = Array("fuzz-s3cret".utf8)
let now = 1_800_000_000

func verifier(for scheme: VerifySpec.Scheme) -> WebhookVerifier {
    var spec = VerifySpec(scheme: scheme)
    spec.header = scheme == .header ? "x-key" : "x-sig"
    spec.parameter = "key"
    spec.prefix = scheme == .hmac ? "v=" : ""
    spec.encoding = .base64url
    spec.algorithm = .sha512
    return try! WebhookVerifier(spec: spec, secrets: [secret, Array("other".utf8)])
}

let scheme = VerifySpec.Scheme(rawValue: target)
let schemeVerifier = scheme.map(verifier(for:))

func split(_ input: [UInt8]) -> (headers: [(name: String, value: String)], query: [(name: String, value: String)], body: [UInt8]) {
    let parts = input.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
    let headerText = String(decoding: parts[0], as: UTF8.self)
    var headers: [(name: String, value: String)] = []
    for line in headerText.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
    }
    let query = parts.count > 1 ? FormBody.pairs(Array(parts[1])) : []
    let body = parts.count > 2 ? Array(parts[2]) : []
    return (headers, query, body)
}

func fuzzScheme(_ verifier: WebhookVerifier, _ input: [UInt8]) {
    let (headers, query, body) = split(input)
    let verdict = verifier.verify(body: body, headers: headers, query: query, now: now)
    guard verdict == .verified else { return }
    // An oracle for the schemes whose secret travels as is: a verified request carries it.
    switch verifier.spec.scheme {
    case .bearer:
        let given = headers.first { $0.name == "authorization" }?.value.dropFirst(7) ?? ""
        precondition(given == "fuzz-s3cret" || given == "other", "bearer verified without the secret")
    case .header:
        let given = headers.first { $0.name == "x-key" }?.value ?? ""
        precondition(given == "fuzz-s3cret" || given == "other", "header verified without the secret")
    case .query:
        let given = query.last { $0.name == "key" }?.value ?? ""
        precondition(given == "fuzz-s3cret" || given == "other", "query verified without the secret")
    default:
        break
    }
}

let policy = RetryPolicy(firstDelay: .seconds(1), maxDelay: .seconds(600), giveUpAfter: .seconds(86_400))

func fuzzUpstream(_ input: [UInt8]) {
    var parser = HTTPResponseParser(maxHeaderBytes: 4096, maxBodyBytes: 65_536)
    var response: HTTPResponseParser.Response?
    do {
        response = try input.withUnsafeBytes { try parser.feed($0) }
        if response == nil { response = try parser.finish() }
    } catch {
        return
    }
    guard let response else { return }
    let result = UpstreamResult.classify(status: response.status, body: response.body)
    let retryAfter = response.headers["retry-after"].flatMap(HappyTalkUpstream.retryAfter)
    if let retryAfter { precondition(retryAfter <= HappyTalkUpstream.maxRetryAfter && retryAfter >= .zero) }
    let stored = input.count > 1 ? Int(Int8(bitPattern: input[0])) * Int(Int8(bitPattern: input[1])) : 0
    for (attempt, acceptedAt) in [(1, now * 1000), (Int.max, Int.min), (Int.min, Int.max), (stored, now * 1000 + stored * 1_000_000)] {
        let action = policy.decide(result, attempt: attempt, acceptedAt: acceptedAt, now: now * 1000, retryAfter: retryAfter) { 0.5 }
        if case .retry(let at) = action { precondition(at > now * 1000, "a retry in the past") }
    }
    _ = RetryPolicy.describe(result)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    if let schemeVerifier {
        fuzzScheme(schemeVerifier, input)
    } else {
        fuzzUpstream(input)
    }
    return 0
}
