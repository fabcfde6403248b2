// libFuzzer target for a server connection's protocol (ServerConnectionStateMachine), driven
// the way HTTPServerConnection drives it. The input is a script of events: bytes arriving in
// pieces (read only while the machine wants to read), answers from the handler, output
// flushed, time passing, the peer closing its side, a drain. Beyond "no crash", it checks:
// - requests are dispatched one at a time, in order, each the same (head and body) as what a
//   parser given every byte the machine read, in one piece, makes of it;
// - an answer is sent only for the request being handled; an error answer (a framing error,
//   a timeout) never while a request is being handled, and always as the last;
// - nothing is sent after the last answer, the write side is shut only once it is written,
//   and nothing happens after the close;
// - once the script ends, answering, flushing, the peer closing and time passing close the
//   connection: none stays open for ever.

let second: UInt64 = 1_000_000_000
let limits = HTTPRequestParser.Limits(maxHeaderBytes: 1024, maxBodyBytes: 2048, maxHeaderCount: 16)

struct Driver {
    var machine = ServerConnectionStateMachine(
        limits: limits, timeouts: .init(header: 1 * second, request: 2 * second, idle: 3 * second, linger: second / 2), now: 0)
    var now: UInt64 = 0
    /// Bytes sent by the peer that the machine did not want to read yet.
    var held: [UInt8] = []
    /// Every byte the machine read while open, in order.
    var read: [UInt8] = []
    var dispatched: [HTTPRequest] = []
    var handling = false
    var hasPendingOutput = false
    var lastAnswerSent = false
    var shutWrite = false
    var closed = false
    var draining = false

    mutating func perform(_ actions: [ServerConnectionStateMachine.Action], answering: Bool) {
        for (index, action) in actions.enumerated() {
            guard !closed else { fatalError("\(action) after close") }
            switch action {
            case .dispatch(let request):
                guard !handling else { fatalError("a second request dispatched while one is handled") }
                guard !lastAnswerSent else { fatalError("a request dispatched after the last answer") }
                handling = true
                dispatched.append(request)
            case .send(_, _, _, let closing):
                guard !lastAnswerSent else { fatalError("an answer sent after the last one") }
                if answering && index == 0 {
                    handling = false
                } else {
                    guard !handling else { fatalError("an error answer sent while a request is handled") }
                    guard closing else { fatalError("an error answer that does not close") }
                }
                hasPendingOutput = true
                if closing { lastAnswerSent = true }
            case .sendContinue:
                guard !lastAnswerSent, !handling else { fatalError("100 Continue out of turn") }
                hasPendingOutput = true
            case .shutdownWrite:
                guard lastAnswerSent, !hasPendingOutput, !shutWrite else { fatalError("write side shut before the last answer was written") }
                shutWrite = true
            case .close:
                closed = true
            }
        }
    }

    mutating func receive(_ bytes: [UInt8]) {
        held += bytes
        guard machine.wantsToRead, !held.isEmpty else { return }
        let isOpen = machine.phase == .open
        let chunk = held
        held = []
        if isOpen { read += chunk }
        let actions = chunk.withUnsafeBytes { machine.received($0, now: now) }
        perform(actions, answering: false)
    }

    mutating func answer(status: Int, closing: Bool) {
        var response = HTTPResponse.json(HTTPStatus(code: status, reason: "R"), "{}")
        if closing { response.headers.add(name: "connection", value: "close") }
        let wasHandling = handling
        let actions = machine.responseReady(response, isDraining: draining, hasPendingOutput: hasPendingOutput)
        if !wasHandling && !actions.isEmpty { fatalError("an answer with no request being handled was taken: \(actions)") }
        if wasHandling {
            guard case .send? = actions.first else { fatalError("the answer to the request being handled was not sent: \(actions)") }
        }
        perform(actions, answering: true)
    }

    mutating func flushed() {
        guard hasPendingOutput else { return }
        hasPendingOutput = false
        perform(machine.outputFlushed(now: now), answering: false)
    }
}

/// The complete requests a parser makes of `bytes` given in one piece.
func reference(_ bytes: [UInt8]) -> [(HTTPRequestHead, [UInt8])] {
    var parser = HTTPRequestParser(limits: limits)
    var events: [HTTPRequestParser.Event] = []
    _ = try? bytes.withUnsafeBytes { try parser.feed($0, into: &events) }
    var requests: [(HTTPRequestHead, [UInt8])] = []
    var current: (HTTPRequestHead, [UInt8])?
    for event in events {
        switch event {
        case .head(let head): current = (head, [])
        case .body(let more): current?.1 += more
        case .end:
            if let current { requests.append(current) }
            current = nil
        }
    }
    return requests
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    var driver = Driver()
    var position = 0
    func next() -> UInt8? {
        guard position < input.count else { return nil }
        defer { position += 1 }
        return input[position]
    }
    while !driver.closed, let op = next() {
        let argument = next() ?? 0
        switch op % 8 {
        case 0, 1, 2:
            let end = min(input.count, position + Int(argument))
            driver.receive(Array(input[position..<end]))
            position = end
        case 3:
            driver.answer(status: 200 + Int(argument % 4) * 100, closing: argument & 0x80 != 0)
        case 4:
            driver.flushed()
        case 5:
            driver.now += UInt64(argument) * (second / 50)
            driver.perform(driver.machine.tick(now: driver.now, hasPendingOutput: driver.hasPendingOutput), answering: false)
        case 6:
            driver.perform(driver.machine.peerClosed(hasPendingOutput: driver.hasPendingOutput), answering: false)
        default:
            if argument & 1 == 1 { driver.draining = true }
            driver.perform(driver.machine.drain(force: argument & 2 != 0, hasPendingOutput: driver.hasPendingOutput), answering: false)
        }
    }

    let expected = reference(driver.read)
    guard driver.dispatched.count <= expected.count else {
        fatalError("\(driver.dispatched.count) requests dispatched, the bytes read hold \(expected.count)")
    }
    for (request, (head, body)) in zip(driver.dispatched, expected) where request.head != head || request.body != body {
        fatalError("request dispatched as \(request.head) with \(request.body.count) bytes, read as \(head) with \(body.count)")
    }

    // However the script ended, the connection must close.
    var peerClosed = false
    for _ in 0..<32 where !driver.closed {
        if driver.handling { driver.answer(status: 200, closing: false) }
        if !driver.closed { driver.flushed() }
        if !driver.closed && !peerClosed {
            peerClosed = true
            driver.perform(driver.machine.peerClosed(hasPendingOutput: driver.hasPendingOutput), answering: false)
        }
        if !driver.closed {
            driver.now += 5 * second
            driver.perform(driver.machine.tick(now: driver.now, hasPendingOutput: driver.hasPendingOutput), answering: false)
        }
    }
    if !driver.closed { fatalError("the connection never closes") }
    return 0
}
