import Foundation
import RelayMapping
import TestSupport
import Testing

@testable import RelayStore

@Suite(.enabled(if: PostgresCluster.binaries != nil, "PostgreSQL is installed by deploy/install-build-deps --tests"))
struct PostgresLookupsTests {
    @Test func everyReplicaSeesABindingAndADedupeKeyAtOnceAndSurvivesARestart() async throws {
        try await offPool {
            let cluster = try PostgresCluster()
            let writer = try PostgresConnection(url: cluster.url)
            try PostgresSchema.migrate(writer)
            // Two replicas' lookups, opened through the same seam the tools use.
            guard let replicaA = try StoreLocation.postgres(url: cluster.url).openLookups(),
                let replicaB = try StoreLocation.postgres(url: cluster.url).openLookups()
            else { throw PostgresCluster.Failure("no lookups") }
            let now = Int(Date().timeIntervalSince1970 * 1000)
            #expect(replicaB.binding(kind: "order_number", value: "1043") == nil)
            try writer.query("INSERT INTO bindings VALUES ('order_number', '1043', 'u-1', 'r-9', $1, $2)", [.integer(now), .integer(now + 60_000)])
            #expect(replicaB.binding(kind: "order_number", value: "1043")?.roomID == "r-9")
            #expect(replicaA.binding(kind: "order_number", value: "1043")?.uuid == "u-1")
            let digest = DedupeDigest(route: "/sync", key: "evt-1")
            try writer.query("INSERT INTO dedupe_digests VALUES ($1, 'first-1', $2)", [.bytes(digest.bytes), .integer(now + 60_000)])
            #expect(replicaA.firstID(for: digest) == "first-1" && replicaB.firstID(for: DedupeDigest(route: "/sync", key: "evt-2")) == nil)
            // The server restarts: the next lookup reconnects.
            try cluster.kill()
            #expect(replicaB.binding(kind: "order_number", value: "1043") == nil)
            try cluster.start()
            #expect(replicaB.binding(kind: "order_number", value: "1043")?.roomID == "r-9")
            #expect(StoreLocation.postgres(url: cluster.url).description.contains("relay:***@127.0.0.1"))
        }
    }
}
