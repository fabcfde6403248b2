import Foundation
import RelayStore
import Testing

@testable import RelayCLI

@Suite struct DeliveryAdminTests {
    /// `deliveries delete --dead-older-than` and the admin API's `dead_older_than` (both through
    /// `DeliveryAdmin.deleteDead`) count the age to the millisecond: a delivery dead for 1.2 s
    /// is not older than 1.5 s.
    @Test func deadOlderThanCountsMilliseconds() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let diedAt = 1_796_115_600_000
        do {
            let store = try SQLiteDeliveryStore(directory: directory)
            let dead = NewDelivery(
                id: "0190b0c0ffee00000000dead", route: "/r", room: RoomKey(credential: "", roomID: "r"), call: Array("{}".utf8),
                request: "{}", body: [], deadReason: "mapping failed")
            #expect(try store.commit([WebhookWrite(deliveries: [dead])], outcomes: [], now: diedAt) == [.success(.stored)])
        }
        let admin = DeliveryAdmin(store: try #require(try SQLiteAdmin(directory: directory)))
        #expect(try admin.deleteDead(olderThan: .milliseconds(1_500), now: diedAt + 1_200) == 0)
        #expect(try admin.deleteDead(olderThan: .milliseconds(1_100), now: diedAt + 1_200) == 1)
    }
}
