import Foundation
import TestSupport
import Testing

/// The fuzz targets in `Fuzz/` are built by scripts of their own (libFuzzer and
/// AddressSanitizer, one module of the sources each target takes), outside the package:
/// nothing else notices when a source they take moves or gains an import. Each script
/// type-checks its targets here (`FUZZ_TYPECHECK=1`, seconds; a fuzzing run builds the same
/// module with the sanitizers).
@Suite struct FuzzTargetTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(arguments: ["run-http-parser-fuzzer", "run-verifier-fuzzers", "run-mapping-fuzzers"])
    func fuzzTargetsStillBuild(_ script: String) async throws {
        let environment = ProcessInfo.processInfo.environment.merging(["FUZZ_TYPECHECK": "1"]) { $1 }
        let (status, output) = try await offPool {
            try ChildProcess.run(Self.root.appendingPathComponent("Fuzz/\(script)").path, [], environment: environment)
        }
        #expect(status == 0, "Fuzz/\(script) no longer builds: \(output)")
    }
}
