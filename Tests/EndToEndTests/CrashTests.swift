import Foundation
import Synchronization
import Testing

@testable import RelayCore

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
                        answered.wrappingAdd(1, ordering: .relaxed)
                    }
                }.start()
            }
            while answered.load(ordering: .relaxed) < killAfter { usleep(1000) }
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
            let database = try SQLiteDatabase(path: relay.directory.appendingPathComponent("data/\(DeliveryQueue.fileName)").path)
            let check = try database.prepare("PRAGMA integrity_check")
            #expect(try check.step())
            #expect(check.text(0) == "ok")
        }
    }
}
