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
        .target(name: "CTLS", dependencies: ["COpenSSL"]),
        .target(name: "RelayHTTP", dependencies: ["CSystem"]),
        .target(name: "RelayMapping"),
        .target(name: "RelayCore", dependencies: ["RelayHTTP", "RelayMapping", "COpenSSL", "CTLS", "CSQLite"]),
        .executableTarget(name: "happyrelay", dependencies: ["RelayCore", "RelayHTTP", "RelayMapping"]),
        .executableTarget(
            name: "happyrelay-http-bench", dependencies: ["RelayHTTP"], path: "Benchmarks/HTTPBenchServer"),
        .executableTarget(
            name: "happyrelay-mapping-bench", dependencies: ["RelayMapping"], path: "Benchmarks/MappingBench"),
        .testTarget(name: "RelayHTTPTests", dependencies: ["RelayHTTP"]),
        .testTarget(name: "RelayMappingTests", dependencies: ["RelayMapping"], exclude: ["Fixtures"]),
        .testTarget(name: "RelayCoreTests", dependencies: ["RelayCore"]),
        .testTarget(name: "EndToEndTests", dependencies: ["RelayHTTP", "RelayMapping", "RelayCore", "COpenSSL", "happyrelay"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
