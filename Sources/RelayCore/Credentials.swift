import FoundationEssentials
import RelayCrypto
import RelayMapping

#if canImport(Glibc)
import Glibc
#endif

/// HappyTalk tokens from the environment (docs/interface.md): `HAPPYTALK_TOKEN` or
/// `HAPPYTALK_TOKEN_FILE` for the default credential, `HAPPYTALK_TOKEN_<NAME>` or
/// `HAPPYTALK_TOKEN_<NAME>_FILE` for named ones. Its description lists names, never tokens.
package struct Credentials: Sendable, CustomStringConvertible {
    private let tokens: [String: String]
    /// `{"token":"…"` per credential, made once: the start of every body sent with it.
    private let prefixes: [String: [UInt8]]

    /// The key of the default credential.
    static let defaultName = ""

    package init(tokens: [String: String]) {
        self.tokens = tokens
        prefixes = tokens.mapValues(HappyTalkUpstream.tokenPrefix)
    }

    /// Reads every credential; an unreadable or empty token file is an error.
    package static func load(environment: [String: String], readFile: (String) -> String? = Secrets.readText) throws(SettingsError)
        -> Credentials
    {
        var tokens: [String: String] = [:]
        let prefix = "HAPPYTALK_TOKEN"
        for (variable, value) in environment.sorted(by: { $0.key < $1.key }) where variable.hasPrefix(prefix) {
            var rest = String(variable.dropFirst(prefix.count))
            var isFile = false
            if rest.hasSuffix("_FILE") {
                isFile = true
                rest = String(rest.dropLast(5))
            }
            guard rest.isEmpty || rest.hasPrefix("_") else { continue }
            let name = rest.isEmpty ? defaultName : String(rest.dropFirst()).uppercased()
            let token: String
            if isFile {
                guard let text = readFile(value) else { throw SettingsError("\(variable): cannot read \(value)") }
                token = text.trimmingWhitespace()
            } else {
                token = value.trimmingWhitespace()
            }
            guard !token.isEmpty else { throw SettingsError("\(variable) is empty") }
            if tokens[name] != nil {
                throw SettingsError("\(prefix)\(name.isEmpty ? "" : "_" + name) is given both directly and as a _FILE")
            }
            tokens[name] = token
        }
        return Credentials(tokens: tokens)
    }

    /// No token at all: the relay runs in dry-run mode.
    package var isEmpty: Bool { tokens.isEmpty }

    /// The token a route's `credential` selects (nil: the default).
    package func token(named name: String?) -> String? { tokens[name?.uppercased() ?? Self.defaultName] }

    /// The body prefix of a stored delivery's credential name ("" for the default).
    package func tokenPrefix(storedName name: String) -> [UInt8]? { prefixes[name.uppercased()] }

    /// The environment variable that holds a credential, for messages.
    package static func variable(for name: String?) -> String {
        name.map { "HAPPYTALK_TOKEN_\($0.uppercased())" } ?? "HAPPYTALK_TOKEN"
    }

    package var description: String {
        let names = tokens.keys.sorted().map { $0.isEmpty ? "default" : $0 }
        return "credentials(\(names.joined(separator: ", ")))"
    }
}

/// A webhook secret as read: its bytes, and whether they were given encoded (`hex:`,
/// `base64:`) and so are the key itself.
package struct SecretValue: Sendable, Equatable {
    package var bytes: [UInt8]
    package var isDecoded: Bool

    package init(bytes: [UInt8], isDecoded: Bool) {
        self.bytes = bytes
        self.isDecoded = isDecoded
    }
}

/// Webhook secrets, resolved from their references at start-up.
package enum Secrets {
    /// The bytes of a file, or nil.
    package static let readFile: @Sendable (String) -> [UInt8]? = { path in
        FileManager.default.contents(atPath: path).map { Array($0) }
    }

    /// The text of a file (token files), or nil.
    package static let readText: @Sendable (String) -> String? = { path in
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The secret, or why it is not available (never the value). An environment variable is
    /// taken exactly; a file loses one trailing line break (`\n` or `\r\n`) and nothing else.
    /// `hex:…` and `base64:…` give a binary key in text.
    package static func resolve(
        _ reference: SecretReference, environment: [String: String], readFile: (String) -> [UInt8]? = readFile
    ) -> Result<SecretValue, SettingsError> {
        var bytes: [UInt8]
        let source: String
        switch reference {
        case .environment(let name):
            if let value = environment[name] {
                bytes = Array(value.utf8)
                source = "environment variable \(name)"
            } else if let path = environment[name + "_FILE"] {
                // `NAME_FILE`, as Docker and systemd hand secrets over: the file holds the value.
                return resolve(.file(path), environment: environment, readFile: readFile)
            } else {
                return .failure(SettingsError("environment variable \(name) (or \(name)_FILE) is not set"))
            }
        case .file(let path):
            guard let contents = readFile(path) else { return .failure(SettingsError("secret file \(path) cannot be read")) }
            bytes = contents
            if bytes.last == UInt8(ascii: "\n") {
                bytes.removeLast()
                if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            }
            source = "secret file \(path)"
        }
        guard !bytes.isEmpty else { return .failure(SettingsError("\(source) is empty")) }
        for (prefix, decode) in [("hex:", ByteEncoding.decodeHex), ("base64:", ByteEncoding.decodeBase64)] as [(String, (String) -> [UInt8]?)] {
            guard bytes.starts(with: prefix.utf8) else { continue }
            let text = String(decoding: bytes.dropFirst(prefix.utf8.count), as: UTF8.self)
            guard let key = decode(text), !key.isEmpty else {
                return .failure(SettingsError("\(source) starts with \(prefix) but the rest is not valid \(prefix.dropLast())"))
            }
            return .success(SecretValue(bytes: key, isDecoded: true))
        }
        return .success(SecretValue(bytes: bytes, isDecoded: false))
    }

    /// Files holding tokens or webhook secrets that users other than the owner may read, with
    /// their mode (`0644`): the token files of the environment and the secret files that routes
    /// name.
    package static func filesReadableByOthers(routes: [MappingRoute], environment: [String: String]) -> [(path: String, mode: String)] {
        var paths = environment.filter { $0.key.hasPrefix("HAPPYTALK_TOKEN") && $0.key.hasSuffix("_FILE") }.map(\.value)
        for route in routes {
            for reference in route.verify.secrets {
                switch reference {
                case .file(let path): paths.append(path)
                case .environment(let name) where environment[name] == nil: if let path = environment[name + "_FILE"] { paths.append(path) }
                case .environment: break
                }
            }
        }
        return Set(paths).sorted().compactMap { path in
            var status = stat()
            guard stat(path, &status) == 0, status.st_mode & 0o077 != 0 else { return nil }
            return (path, "0" + String(status.st_mode & 0o777, radix: 8))
        }
    }
}
