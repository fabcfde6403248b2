// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "happyrelay",
    products: [
        .executable(name: "happyrelay", targets: ["happyrelay"])
    ],
    targets: [
        .target(name: "CSystem"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // libpq's header only: the library is opened when a PostgreSQL store is first used.
        .systemLibrary(name: "CPostgres", providers: [.apt(["libpq-dev"])]),
        .target(name: "CTLS", dependencies: ["COpenSSL"]),
        .target(name: "RelayHTTP", dependencies: ["CSystem"]),
        .target(name: "RelayMapping"),
        .target(name: "RelayCrypto", dependencies: ["CTLS"]),
        .target(name: "RelayStore", dependencies: ["RelayMapping", "RelayCrypto", "CSystem", "CSQLite", "CPostgres"]),
        .target(name: "RelayCore", dependencies: ["RelayHTTP", "RelayMapping", "RelayCrypto", "RelayStore", "COpenSSL", "CTLS"]),
        .target(name: "RelayCLI", dependencies: ["RelayCore", "RelayHTTP", "RelayMapping", "RelayStore", "RelayCrypto"]),
        .executableTarget(name: "happyrelay", dependencies: ["RelayCLI"]),
        .executableTarget(
            name: "happyrelay-http-bench", dependencies: ["RelayHTTP"], path: "Benchmarks/HTTPBenchServer"),
        .executableTarget(
            name: "happyrelay-mapping-bench", dependencies: ["RelayMapping"], path: "Benchmarks/MappingBench"),
        .executableTarget(
            name: "happyrelay-crypto-bench", dependencies: ["RelayCrypto"], path: "Benchmarks/CryptoBench"),
        .executableTarget(
            name: "happyrelay-store-bench", dependencies: ["RelayStore"], path: "Benchmarks/StoreBench"),
        .testTarget(name: "RelayHTTPTests", dependencies: ["RelayHTTP"]),
        .testTarget(name: "RelayMappingTests", dependencies: ["RelayMapping", "TestSupport"], exclude: ["Fixtures", "Generators"]),
        .testTarget(name: "RelayCoreTests", dependencies: ["RelayCore", "RelayStore", "RelayCrypto", "RelayCLI", "TestSupport"]),
        // What several test targets share: throwaway PostgreSQL clusters, blocking work off the pool.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "RelayStoreTests", dependencies: ["RelayStore", "TestSupport"]),
        .testTarget(name: "RelayCLITests", dependencies: ["RelayCLI", "RelayCore"], exclude: ["Fixtures"]),
        .testTarget(name: "EndToEndTests", dependencies: ["RelayHTTP", "RelayMapping", "RelayCore", "RelayStore", "RelayCrypto", "RelayCLI", "COpenSSL", "TestSupport", "happyrelay"], exclude: ["Fixtures", "Browser"]),
    ],
    swiftLanguageModes: [.v6]
)
