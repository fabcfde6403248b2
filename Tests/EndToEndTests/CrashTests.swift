import Foundation
import Synchronization
import TestSupport
import Testing

@testable import RelayCore
@testable import RelayStore

#if canImport(Glibc)
import Glibc
#endif

/// kill -9 under load: every webhook answered 202 reaches HappyTalk (duplicates allowed and
/// counted, none lost), and the database passes `PRAGMA integrity_check`.
@Suite(.serialized) struct CrashTests {
    static let mapping = #"{ "route": "/async", "verify": { "scheme": "none" }, "rules": [ { "set": { "uuid": "u-1", "room_id": "$.body.room", "parcel_number": "$.body.n" } } ] }"#

    @Test(arguments: [7, 61, 149])
    func killDashNineLosesNothingAccepted(killAfter: Int) async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.mapping])
            let accepted = Mutex<Set<Int>>([])
            let answered = Atomic<Int>(0)
            let killPoint = DispatchSemaphore(value: 0)
            let total = 240
            let port = relay.relayPort
            // Four senders; the relay is killed once `killAfter` answers have come back.
            let group = DispatchGroup()
            for sender in 0..<4 {
                group.enter()
                Thread {
                    defer { group.leave() }
                    for index in stride(from: sender, to: total, by: 4) {
                        guard let connection = try? RawConnection(port: port, timeout: 5) else { continue }
                        let body = #"{"room":"r-\#(index % 10)","n":"\#(index)"}"#
                        try? connection.send("POST /async HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                        if let response = try? connection.readResponse(), response.status == 202 {
                            accepted.withLock { _ = $0.insert(index) }
                        }
                        if answered.wrappingAdd(1, ordering: .relaxed).newValue == killAfter { killPoint.signal() }
                    }
                }.start()
            }
            killPoint.wait()
            try relay.restartRelay(signal: SIGKILL)
            group.wait()
            let acceptedSet = accepted.withLock { $0 }
            #expect(!acceptedSet.isEmpty)
            let deadline = Date().addingTimeInterval(60)
            var delivered = Set<Int>()
            var calls: [String] = []
            while Date() < deadline {
                calls = relay.recordedCalls
                delivered = Set(calls.compactMap { line in
                    line.range(of: #""parcel_number":""#).flatMap { Int(line[$0.upperBound...].prefix { $0 != "\"" }) }
                })
                if acceptedSet.isSubset(of: delivered) { break }
                usleep(50_000)
            }
            let lost = acceptedSet.subtracting(delivered)
            #expect(lost.isEmpty, "accepted but never delivered: \(lost.sorted())")
            let duplicates = calls.count - Set(calls).count
            print("kill after \(killAfter): \(acceptedSet.count) accepted, \(calls.count) delivered, \(duplicates) duplicates")
            _ = try relay.relay.stop()
            let database = try SQLiteDatabase(path: relay.directory.appendingPathComponent("data/\(SQLiteSchema.fileName)").path)
            let check = try database.prepare("PRAGMA integrity_check")
            #expect(try check.step())
            #expect(check.text(0) == "ok")
        }
    }

    /// A crash right before the commit: the webhook was not answered 202 (an answer given
    /// before the commit would be seen: the relay waits a moment before it stops) and is not
    /// delivered after a restart. Right after the commit: still no answer, but it is delivered.
    @Test(arguments: ["before-commit", "after-commit"])
    func aCrashAtTheCommitNeverAcknowledgesWhatIsNotStored(_ point: String) async throws {
        try await offPool {
            let relay = try RelayHarness(mappings: ["async.json": Self.mapping], environment: ["HAPPYRELAY_TEST_CRASH": point])
            let connection = try RawConnection(port: relay.relayPort, timeout: 10)
            let body = #"{"room":"r-1","n":"7"}"#
            try connection.send("POST /async HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            #expect(throws: RawConnection.Failure.self, "answered before the commit") { _ = try connection.readResponse() }
            #expect(try relay.relay.waitForExit() == 137)
            #expect(relay.relay.log.contains(#""point":"\#(point)""#))
            try relay.restartRelay(environment: ["HAPPYRELAY_TEST_CRASH": nil])
            if point == "after-commit" {
                #expect(relay.waitForCalls(1) == [#"{"token":"\#(RelayHarness.token)","uuid":"u-1","room_id":"r-1","parcel_number":"7"}"#])
            } else {
                // Whatever the relay had not committed is not in the queue after the restart.
                let pending = try RelayProcess.run(["deliveries", "list", "--data-dir", relay.dataDirectory])
                #expect(pending.output.isEmpty, "\(pending.output)")
                #expect(relay.recordedCalls.isEmpty)
            }
        }
    }
}
