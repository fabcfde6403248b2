import FoundationEssentials
import RelayCore
import RelayMapping
import RelayStore

/// What operators do with deliveries — list them, replay dead ones — shared by the CLI and
/// the admin API, on the store's typed admin operations.
package struct DeliveryAdmin {
    package let store: any DeliveryAdministration

    package init(store: any DeliveryAdministration) {
        self.store = store
    }

    /// Deletes the dead deliveries that died more than `age` before `now`, to the millisecond
    /// (`1.5s` is not `1s`), `bulkChangeStep` at a time, each step a transaction of its own (a
    /// serving relay's writer is never held up for long); returns how many.
    package func deleteDead(olderThan age: Duration, now: UnixMilliseconds) throws -> Int {
        let cutoff = now - age.wholeMilliseconds
        var deleted = 0
        while true {
            let step = try store.deleteDead(before: cutoff, limit: bulkChangeStep)
            deleted += step
            if step < bulkChangeStep { return deleted }
        }
    }

    /// What a replay did: one line per delivery, and whether any stayed dead.
    package struct ReplayReport: Sendable, Equatable {
        package var lines: [String]
        package var isComplete: Bool
    }

    /// Puts dead deliveries (one, or all) back in the queue, re-mapped with `routes`; rules that
    /// resolve read `bindings` as the relay does. `asStored`: the call each died with is sent
    /// again as it was, without re-mapping (for deliveries HappyTalk refused, not their mapping).
    ///
    /// All of them go `bulkChangeStep` at a time, oldest first, each step read, re-mapped and
    /// applied in a transaction of its own: a serving relay's writer is never held up for
    /// long, and a replay of a large backlog holds one step in memory. A step that fails after
    /// others were applied ends the replay with what was done and why it stopped.
    package func replay(
        id: String?, routes: [MappingRoute], bindings: any BindingLookup, asStored: Bool = false, now: UnixMilliseconds
    ) throws -> ReplayReport {
        let ids = try id.map { [$0] } ?? store.deadIDs()
        var lines: [String] = []
        var isComplete = true
        for start in stride(from: 0, to: ids.count, by: bulkChangeStep) {
            let step = ids[start..<min(start + bulkChangeStep, ids.count)]
            do {
                let requests = try store.deadRequests(ids: Array(step))
                if let id, requests.isEmpty { return ReplayReport(lines: ["\(id): no dead delivery with this id"], isComplete: false) }
                let outcomes = replayOutcomes(requests, routes: routes, bindings: bindings, asStored: asStored, now: now)
                try store.replay(outcomes.compactMap { outcome in outcome.change.map { (outcome.request, $0) } }, now: now)
                lines += outcomes.map(\.line)
                isComplete = isComplete && outcomes.allSatisfy(\.isReplayed)
            } catch where start > 0 {
                lines.append("stopped after \(start) of \(ids.count) dead deliveries: \(error); the rest are still dead")
                return ReplayReport(lines: lines, isComplete: false)
            }
        }
        if lines.isEmpty { lines.append("no dead deliveries") }
        return ReplayReport(lines: lines, isComplete: isComplete)
    }

    /// What replaying each of `requests` changes (nil: nothing), with its line for the report.
    private func replayOutcomes(
        _ requests: [StoredRequest], routes: [MappingRoute], bindings: any BindingLookup, asStored: Bool, now: UnixMilliseconds
    ) -> [(request: StoredRequest, change: ReplayChange?, line: String, isReplayed: Bool)] {
        requests.map { request in
            if asStored {
                // A mapping failure stored no call: there is nothing to send as it was.
                guard request.call.count > 2 else {
                    return (request, nil, "\(request.id): still dead: its mapping failed, so no call was stored; replay it without --as-stored", false)
                }
                return (request, .requeue([(roomID: request.roomID, call: request.call)]), "\(request.id): replayed as stored", true)
            }
            guard let route = routes.first(where: { $0.path == request.route }) else {
                return (request, .keepDead("replay: no mapping file declares \(request.route)"),
                    "\(request.id): still dead: no mapping file declares \(request.route)", false)
            }
            switch Self.remap(request, route: route, bindings: bindings, now: now) {
            case .success(let calls):
                return (request, .requeue(calls.map { (roomID: $0["room_id"] ?? "", call: $0.storedForm()) }), "\(request.id): replayed", true)
            case .failure(let problem):
                return (request, .keepDead("replay: \(problem.description)"), "\(request.id): still dead: \(problem.description)", false)
            }
        }
    }

    /// What a retry did, in words; false when nothing was scheduled.
    package static func describe(_ result: DeliveryRetryResult, id: String) -> (line: String, ok: Bool) {
        switch result {
        case .scheduled(0): ("\(id): due now", true)
        case .scheduled(let behind):
            ("\(id): due now, after \(behind) earlier \(behind == 1 ? "delivery" : "deliveries") of its room (also due now)", true)
        case .notPending(.dead): ("\(id): dead; replay it instead (deliveries replay)", false)
        case .notPending(let state): ("\(id): \(state.rawValue), not pending", false)
        case .notFound: ("\(id): no delivery with this id", false)
        }
    }

    /// A delivery as one JSON object: the stored request (secrets were never stored), the
    /// call without the token (null when the mapping failed), every attempt with HappyTalk's answer.
    package static func json(_ detail: DeliveryDetail) -> String {
        func text(_ value: String) -> JSONValue { .string(value) }
        func time(_ milliseconds: Int) -> JSONValue { .string(RFC3339.timestamp(milliseconds: milliseconds)) }
        var members: [(key: String, value: JSONValue)] = [
            ("id", text(detail.id)), ("state", text(detail.state.rawValue)), ("route", text(detail.route)),
            ("credential", text(detail.credential)), ("room_id", text(detail.roomID)), ("accepted_at", time(detail.acceptedAt)),
            ("attempts", .number(String(detail.attemptCount))), ("last_reason", text(detail.lastReason)),
        ]
        members.append(detail.state == .pending ? ("next_attempt_at", time(detail.nextAttemptAt)) : ("finished_at", time(detail.nextAttemptAt)))
        members.append(("request", request(of: detail)))
        let call = detail.call.count > 2 ? (try? JSONParser().parse(detail.call)) ?? .null : .null
        members.append(("call", call))
        members.append((
            "history",
            .array(
                detail.attempts.map { attempt in
                    var fields: [(key: String, value: JSONValue)] = [
                        ("attempt", .number(String(attempt.attempt))), ("at", time(attempt.at)), ("outcome", text(attempt.outcome)),
                        ("reason", text(attempt.reason)),
                    ]
                    if let status = attempt.answer.status { fields.append(("http_status", .number(String(status)))) }
                    if let code = attempt.answer.code { fields.append(("code", .number(String(code)))) }
                    if let message = attempt.answer.message { fields.append(("message", text(message))) }
                    return .object(fields)
                })
        ))
        return JSONSerializer.string(.object(members))
    }

    /// The stored request as shown: headers and query, and the body as text (or base64 when it
    /// is not UTF-8). Records of earlier versions keep the body inside the request.
    static func request(of detail: DeliveryDetail) -> JSONValue {
        let stored = (try? JSONParser().parse(Array(detail.request.utf8))) ?? .object([])
        var members: [(key: String, value: JSONValue)] = []
        if case .object(let fields) = stored { members = fields.filter { $0.key != "body" } }
        if let body = detail.body ?? stored["body"]?.stringValue.map({ Array($0.utf8) }) {
            if let text = String(validating: body, as: UTF8.self) {
                members.append(("body", .string(text)))
            } else {
                members.append(("body_base64", .string(Data(body).base64EncodedString())))
            }
        }
        return .object(members)
    }

    /// A delivery as lines for a terminal.
    package static func lines(_ detail: DeliveryDetail) -> [String] {
        var lines = [
            "id:          \(detail.id)",
            "state:       \(detail.state.rawValue)" + (detail.lastReason.isEmpty ? "" : " (\(detail.lastReason))"),
            "route:       \(detail.route)",
            "room:        \(detail.roomID.isEmpty ? "-" : detail.roomID)" + (detail.credential.isEmpty ? "" : " (credential \(detail.credential))"),
            "accepted:    \(RFC3339.timestamp(milliseconds: detail.acceptedAt))",
            detail.state == .pending
                ? "next try:    \(RFC3339.timestamp(milliseconds: detail.nextAttemptAt))"
                : "finished:    \(RFC3339.timestamp(milliseconds: detail.nextAttemptAt))",
        ]
        lines.append("request:     " + JSONSerializer.string(request(of: detail)))
        lines.append("call:        " + (detail.call.count > 2 ? String(decoding: detail.call, as: UTF8.self) + " (token added when sent)" : "none (the mapping failed)"))
        lines.append("attempts:    \(detail.attemptCount)")
        for attempt in detail.attempts {
            var answer = ""
            if let code = attempt.answer.code { answer = " HappyTalk \(code) \(attempt.answer.message ?? "")" }
            else if let status = attempt.answer.status { answer = " HTTP \(status)" }
            lines.append("  #\(attempt.attempt) \(RFC3339.timestamp(milliseconds: attempt.at)) \(attempt.outcome): \(attempt.reason)\(answer)")
        }
        return lines
    }

    struct ReplayProblem: Error, CustomStringConvertible {
        let description: String
    }

    /// Re-runs a route's mapping on a stored request.
    static func remap(_ stored: StoredRequest, route: MappingRoute, bindings: any BindingLookup, now: UnixMilliseconds)
        -> Result<[MappedCall], ReplayProblem>
    {
        guard let record = try? JSONParser().parse(stored.request) else {
            return .failure(ReplayProblem(description: "the stored request is unreadable"))
        }
        // Records of earlier versions keep the body inside the request, as a string.
        guard let body = stored.body ?? record["body"]?.stringValue.map({ Array($0.utf8) }) else {
            return .failure(ReplayProblem(description: "the stored request is unreadable"))
        }
        func pairs(_ key: String) -> [(name: String, value: String)] {
            guard case .object(let members)? = record[key] else { return [] }
            return members.map { ($0.key, $0.value.text) }
        }
        let headers = pairs("headers")
        let contentType = headers.first { $0.name == "content-type" }?.value
        let parsed: JSONValue
        switch RequestBody.decode(body, contentType: contentType, acceptsForm: route.acceptsForm) {
        case .success(let value): parsed = value
        case .failure(let problem): return .failure(ReplayProblem(description: problem.message))
        }
        let document = RequestDocument.make(
            body: parsed, headers: headers, query: pairs("query"), route: route.path, receivedAt: RFC3339.timestamp(milliseconds: now),
            requestID: stored.id)
        switch route.apply(to: document, bindings: bindings) {
        case .calls(let calls, _): return .success(calls)
        case .ignored(let reason): return .failure(ReplayProblem(description: "ignored (\(reason))"))
        case .failed(let failure): return .failure(ReplayProblem(description: "mapping failed: \(failure)"))
        case .bound: return .failure(ReplayProblem(description: "the rule only binds"))
        }
    }
}
