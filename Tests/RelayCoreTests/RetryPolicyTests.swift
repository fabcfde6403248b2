import Foundation
import RelayHTTP
import RelayMapping
import Synchronization
import Testing

@testable import RelayCore

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(firstDelay: .seconds(1), maxDelay: .seconds(600), giveUpAfter: .seconds(86_400))
    let accepted = 1_000_000

    @Test func successIsAcknowledged() {
        #expect(policy.decide(.success, attempt: 1, acceptedAt: accepted, now: accepted) { 0.5 } == .acknowledge)
    }

    @Test func theEventsOwnFailuresAreDeadAtOnce() {
        for (code, message) in [(-501, "uuid"), (-503, "users"), (-503, "room"), (-7, "anything else")] {
            #expect(
                policy.decide(.failed(code: code, message: message, isCredentialProblem: false), attempt: 1, acceptedAt: accepted, now: accepted) { 0.5 }
                    == .deadLetter(reason: "HappyTalk refused the call: \(code) \(message)"))
        }
    }

    @Test func classificationFollowsTheSpec() {
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"success"}"#.utf8)) == .success)
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"fail","code":-501,"message":"token"}"#.utf8)) == .failed(code: -501, message: "token", isCredentialProblem: true))
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"fail","code":-502,"message":"unAuthorized"}"#.utf8)) == .failed(code: -502, message: "unAuthorized", isCredentialProblem: true))
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"result":"fail","code":-501,"message":"uuid"}"#.utf8)) == .failed(code: -501, message: "uuid", isCredentialProblem: false))
        #expect(UpstreamResult.classify(status: 503, body: []) == .unavailable(status: 503))
        #expect(UpstreamResult.classify(status: 429, body: []) == .unavailable(status: 429))
        #expect(UpstreamResult.classify(status: 200, body: Array("<html>".utf8)) == .transient("HappyTalk's answer (HTTP 200) is not its JSON"))
        #expect(UpstreamResult.classify(status: 200, body: Array(#"{"ok":true}"#.utf8)) == .transient("HappyTalk's answer (HTTP 200) is not its JSON"))
    }

    @Test func transientFailuresAndCredentialProblemsAreRetriedWithFullJitterBackoff() {
        let results: [UpstreamResult] = [.transient("reset"), .timedOut, .failed(code: -502, message: "unAuthorized", isCredentialProblem: true)]
        for result in results {
            for attempt in 1...20 {
                let ceiling = min(600_000, 1000 << (attempt - 1))
                let low = policy.decide(result, attempt: attempt, acceptedAt: accepted, now: accepted + 10) { 0 }
                let high = policy.decide(result, attempt: attempt, acceptedAt: accepted, now: accepted + 10) { 0.999999 }
                #expect(low == .retry(atMilliseconds: accepted + 11), "never in the past, never now")
                guard case .retry(let at) = high else {
                    Issue.record("no retry")
                    continue
                }
                #expect(at - (accepted + 10) <= ceiling && at - (accepted + 10) >= ceiling - 1)
            }
        }
    }

    @Test func retryAfterIsHonouredUpToTheCap() {
        #expect(policy.decide(.transient("429"), attempt: 1, acceptedAt: accepted, now: accepted, retryAfter: .seconds(30)) { 0 } == .retry(atMilliseconds: accepted + 30_000))
        #expect(policy.decide(.transient("429"), attempt: 1, acceptedAt: accepted, now: accepted, retryAfter: .seconds(9999)) { 0 } == .retry(atMilliseconds: accepted + 600_000))
    }

    @Test func givesUpAfterTheHorizonButNeverEarly() {
        let day = 86_400_000
        // Just before the horizon: retried, with the retry placed no later than the horizon.
        #expect(policy.decide(.timedOut, attempt: 30, acceptedAt: accepted, now: accepted + day - 5) { 0.999 } == .retry(atMilliseconds: accepted + day))
        #expect(policy.decide(.timedOut, attempt: 31, acceptedAt: accepted, now: accepted + day) { 0.5 } == .deadLetter(reason: "gave up after 31 attempts: HappyTalk did not answer in time"))
    }

    /// Values from a poisoned answer or a damaged row: clamped, never a trap.
    @Test func hugeValuesSaturateInsteadOfTrapping() {
        let cap = 600_000
        #expect(policy.decide(.unavailable(status: 503), attempt: 1, acceptedAt: accepted, now: accepted, retryAfter: .seconds(Int64.max)) { 0 } == .retry(atMilliseconds: accepted + cap))
        #expect(policy.decide(.timedOut, attempt: Int.max, acceptedAt: accepted, now: accepted) { 1 } == .retry(atMilliseconds: accepted + cap))
        #expect(policy.decide(.timedOut, attempt: Int.min, acceptedAt: accepted, now: accepted) { 1 } == .retry(atMilliseconds: accepted + 1000))
        // Accepted "at the end of time": the horizon saturates and the retry is still placed.
        #expect(policy.decide(.timedOut, attempt: 1, acceptedAt: Int.max, now: accepted) { 0 } == .retry(atMilliseconds: accepted + 1))
        #expect(policy.decide(.timedOut, attempt: 1, acceptedAt: Int.min, now: accepted) { 0 } == .deadLetter(reason: "gave up after 1 attempt: HappyTalk did not answer in time"))
        #expect(RetryPolicy.milliseconds(.seconds(Int64.max)) == Int.max)
        #expect(RetryPolicy.adding(Int.max, 1) == Int.max && RetryPolicy.adding(Int.min, -1) == Int.min)
    }

    @Test func retryAfterIsReadAsDelaySecondsAndClampedToADay() {
        #expect(HappyTalkUpstream.retryAfter("30") == .seconds(30))
        #expect(HappyTalkUpstream.retryAfter(" 7 ") == .seconds(7))
        #expect(HappyTalkUpstream.retryAfter("99999999999999999") == .seconds(86_400))
        #expect(HappyTalkUpstream.retryAfter("999999") == .seconds(86_400))
        for value in ["-1", "+5", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", ""] {
            #expect(HappyTalkUpstream.retryAfter(value) == nil, "\(value)")
        }
    }
}
