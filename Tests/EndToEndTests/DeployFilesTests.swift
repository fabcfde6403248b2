import Foundation
import RelayHTTP
import RelayMapping
import TestSupport
import Testing

@testable import RelayCore
@testable import RelayCLI

/// The files in deploy/ agree with the relay: every variable they set is a setting or a
/// secret a shipped mapping reads, every secret the default mappings need is provided, and
/// the unit file passes systemd's own checks where systemd-analyze is installed.
@Suite struct DeployFilesTests {
    static let deploy = MappingCommandTests.root.appendingPathComponent("deploy")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: deploy.appendingPathComponent(name), encoding: .utf8)
    }

    /// Every `verify` secret variable of the mappings in `folder`.
    static func secretVariables(_ folder: String) -> Set<String> {
        let (routes, _) = MappingLoader.load(directory: MappingCommandTests.root.appendingPathComponent(folder).path)
        return Set(routes.flatMap(\.verify.secrets).compactMap { reference in
            if case .environment(let name) = reference { return name }
            return nil
        })
    }

    static let settingVariables = Set(ServeSettings.options.compactMap(\.environment) + ["HAPPYTALK_TOKEN", "HAPPYTALK_TOKEN_FILE", "HAPPYRELAY_ADMIN_TOKEN"])

    /// `NAME=value` lines, commented (`#NAME=`) or not.
    static func assignments(_ text: String) -> (set: [String], commented: [String]) {
        var set: [String] = []
        var commented: [String] = []
        for line in text.split(separator: "\n") {
            let isCommented = line.hasPrefix("#")
            let bare = isCommented ? line.dropFirst() : line[...]
            guard let equals = bare.firstIndex(of: "="), equals > bare.startIndex,
                bare[..<equals].allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" })
            else { continue }
            if isCommented { commented.append(String(bare[..<equals])) } else { set.append(String(bare[..<equals])) }
        }
        return (set, commented)
    }

    @Test func environmentFileExampleNamesOnlyRealSettingsAndEverySecret() throws {
        let (set, commented) = Self.assignments(try Self.text("happyrelay.env.example"))
        let defaults = Self.secretVariables("mappings")
        let optional = Self.secretVariables("mappings/optional")
        #expect(!defaults.isEmpty && !optional.isEmpty)
        for name in set + commented {
            #expect(Self.settingVariables.contains(name) || defaults.contains(name) || optional.contains(name), "\(name) is neither a setting nor a secret")
        }
        #expect(defaults.isSubset(of: Set(set)), "secrets of the default mappings: \(defaults.subtracting(set))")
        #expect(optional.isSubset(of: Set(commented)))
        #expect(!set.contains("HAPPYTALK_TOKEN"), "the token belongs in a credential file")
    }

    @Test func composeTrialProvidesEverySecretTheDefaultMappingsNeed() throws {
        let compose = try Self.text("compose.yaml")
        let relay = compose.components(separatedBy: "  relay:\n")[1]
        let environment = relay.components(separatedBy: "    environment:\n")[1].split(separator: "\n").prefix { $0.hasPrefix("      ") }
        let names = Set(environment.compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) })
        #expect(Self.secretVariables("mappings").isSubset(of: names))
        for name in names { #expect(Self.settingVariables.contains(name) || Self.secretVariables("mappings").contains(name), "\(name)") }
        #expect(names.contains("HAPPYTALK_TOKEN") && names.contains("HAPPYTALK_BASE_URL"))
        #expect(compose.contains(#""mock-upstream", "--listen", "0.0.0.0:9000", "--token", "trial-token""#))
    }

    @Test func dockerfileSetsRealSettingsAndRunsAsNonRoot() throws {
        let dockerfile = try Self.text("Dockerfile")
        let names = dockerfile.matches(of: /(HAPPYRELAY_[A-Z_]+)=/).map { String($0.output.1) }
        #expect(!names.isEmpty)
        for name in names { #expect(Self.settingVariables.contains(name), "\(name)") }
        #expect(dockerfile.contains("USER 10001:10001") && dockerfile.contains("HEALTHCHECK") && dockerfile.contains("VOLUME"))
        #expect(dockerfile.contains("FROM debian:bookworm-slim"))
        // The health check reads the listen setting itself, so it follows HAPPYRELAY_LISTEN.
        #expect(dockerfile.contains(#"CMD ["/usr/local/bin/happyrelay", "healthcheck"]"#) && !dockerfile.contains("127.0.0.1:8080"))
    }

    @Test func unitReportsReadinessAndReloadsOnSighup() throws {
        let unit = try Self.text("happyrelay.service")
        #expect(unit.contains("\nType=notify\n") && unit.contains("\nNotifyAccess=main\n"))
        #expect(unit.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"))
    }

    /// The build stage copies every folder the manifest's targets live in: without one,
    /// `swift build` cannot load the package (a custom `path:` that does not exist is an error).
    @Test func dockerfileCopiesEveryFolderTheManifestNeeds() throws {
        let manifest = try String(contentsOf: MappingCommandTests.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var folders: Set = ["Sources", "Tests"]
        for match in manifest.matches(of: #/path: "([^"/]+)/#) { folders.insert(String(match.output.1)) }
        let copied = Set(try Self.text("Dockerfile").matches(of: #/(?m)^COPY (\S+) /#).map { String($0.output.1) })
        #expect(folders.isSubset(of: copied), "not copied: \(folders.subtracting(copied))")
        #expect(copied.contains("Package.swift") && copied.contains("mappings"))
        let ignored = try Self.text("Dockerfile.dockerignore").split(separator: "\n").map(String.init)
        for folder in folders { #expect(!ignored.contains(folder), "\(folder) is copied but ignored") }
    }

    static let systemdAnalyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: systemdAnalyze != nil, "systemd-analyze is not installed"))
    func unitFilePassesSystemdVerify() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("happyrelay-unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // verify checks that ExecStart exists: point it at the binary under test.
        let unit = try Self.text("happyrelay.service").replacingOccurrences(of: "/usr/local/bin/happyrelay", with: RelayProcess.executable.path)
        let path = folder.appendingPathComponent("happyrelay.service")
        try unit.write(to: path, atomically: false, encoding: .utf8)
        for arguments in [["verify", path.path], ["security", "--offline=true", "--threshold=20", path.path]] {
            let (status, text) = try ChildProcess.run(Self.systemdAnalyze!, arguments)
            #expect(status == 0, "systemd-analyze \(arguments[0]): \(text)")
            if arguments[0] == "verify" { #expect(text.isEmpty, "\(text)") }
        }
    }

    /// A YAML file's documents as JSON values, read by python3's yaml module.
    static func yaml(_ name: String) throws -> [Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))", deploy.appendingPathComponent(name).path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let documents = try JSONSerialization.jsonObject(with: data) as? [Any] else {
            throw RelayProcess.Failure(description: "\(name) is not YAML")
        }
        return documents
    }

    static let hasYAML = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
        && (try? { () throws -> Bool in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", "import yaml"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        }()) == true

    /// The Kubernetes manifests: two or more replicas on one database, ready on `/readyz`, every
    /// variable a real setting or a secret of the shipped mappings, the token and the database
    /// URL from a Secret, non-root, time to drain before SIGKILL.
    @Test(.enabled(if: hasYAML, "python3-yaml is installed by deploy/install-build-deps --tests"))
    func kubernetesManifestsRunReplicasOnOneDatabase() throws {
        let documents = try Self.yaml("kubernetes/happyrelay.yaml").compactMap { $0 as? [String: Any] }
        #expect(Set(documents.compactMap { $0["kind"] as? String }) == ["Deployment", "Service", "PodDisruptionBudget"])
        let deployment = try #require(documents.first { $0["kind"] as? String == "Deployment" })
        let spec = try #require(deployment["spec"] as? [String: Any])
        #expect((spec["replicas"] as? Int ?? 0) >= 2)
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect((pod["terminationGracePeriodSeconds"] as? Int ?? 0) > Int(ServeSettings().drainTimeout.components.seconds))
        #expect((pod["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true)
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        func probePath(_ name: String) -> String? { ((container[name] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String }
        #expect(probePath("readinessProbe") == "/readyz" && probePath("livenessProbe") == "/healthz")
        let environment = try #require(container["env"] as? [[String: Any]])
        let names = Set(environment.compactMap { $0["name"] as? String })
        for name in names { #expect(Self.settingVariables.contains(name) || Self.secretVariables("mappings").contains(name), "\(name)") }
        #expect(Self.secretVariables("mappings").isSubset(of: names))
        let fromSecrets = Set(environment.filter { ($0["valueFrom"] as? [String: Any])?["secretKeyRef"] != nil }.compactMap { $0["name"] as? String })
        #expect(fromSecrets.isSuperset(of: ["HAPPYRELAY_DATABASE_URL", "HAPPYTALK_TOKEN", "HAPPYRELAY_ADMIN_TOKEN"]))
        #expect(fromSecrets.isSuperset(of: Self.secretVariables("mappings")))
        let listen = environment.first { $0["name"] as? String == "HAPPYRELAY_LISTEN" }?["value"] as? String
        #expect(listen.flatMap { HostAndPort(parsing: $0) }?.port == (container["ports"] as? [[String: Any]])?.first?["containerPort"] as? Int)
    }

    /// The scale-out trial: two relays on the PostgreSQL service, nginx in front naming both.
    @Test(.enabled(if: hasYAML, "python3-yaml is installed by deploy/install-build-deps --tests"))
    func scaleOutComposeRunsTwoRelaysOnOneDatabaseBehindNginx() throws {
        let compose = try #require(try Self.yaml("scale-out/compose.yaml").first as? [String: Any])
        let services = try #require(compose["services"] as? [String: [String: Any]])
        #expect(Set(services.keys) == ["postgres", "mock", "relay-a", "relay-b", "nginx"])
        let postgres = try #require(services["postgres"]?["environment"] as? [String: String])
        for name in ["relay-a", "relay-b"] {
            let environment = try #require(services[name]?["environment"] as? [String: String])
            for variable in environment.keys {
                #expect(Self.settingVariables.contains(variable) || Self.secretVariables("mappings").contains(variable), "\(variable)")
            }
            #expect(Self.secretVariables("mappings").isSubset(of: Set(environment.keys)))
            let url = try #require(environment["HAPPYRELAY_DATABASE_URL"])
            #expect(url == "postgres://\(postgres["POSTGRES_USER"]!):\(postgres["POSTGRES_PASSWORD"]!)@postgres:5432/\(postgres["POSTGRES_DB"]!)")
        }
        let nginx = try Self.text("scale-out/nginx.conf")
        #expect(nginx.contains("server relay-a:8080") && nginx.contains("server relay-b:8080"))
        #expect((services["nginx"]?["volumes"] as? [String])?.contains("./nginx.conf:/etc/nginx/conf.d/default.conf:ro") == true)
    }
}
