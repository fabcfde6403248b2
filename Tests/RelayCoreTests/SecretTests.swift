import Foundation
import Testing

@testable import RelayCore
@testable import RelayMapping

@Suite struct SecretTests {
    func resolve(file contents: [UInt8]) -> Result<SecretValue, SettingsError> {
        Secrets.resolve(.file("/run/secrets/shop"), environment: [:], readFile: { _ in contents })
    }

    @Test func aFileLosesOneTrailingLineBreakAndNothingElse() throws {
        #expect(try resolve(file: Array("s3cret\n".utf8)).get().bytes == Array("s3cret".utf8))
        #expect(try resolve(file: Array("s3cret\r\n".utf8)).get().bytes == Array("s3cret".utf8))
        #expect(try resolve(file: Array(" s3cret \n\n".utf8)).get().bytes == Array(" s3cret \n".utf8))
        #expect(throws: SettingsError.self) { try resolve(file: Array("\n".utf8)).get() }
    }

    @Test func rawKeyBytesInAFileAreUsedAsTheyAre() throws {
        let raw: [UInt8] = [0x00, 0xFF, 0x80, 0x0A, 0xC3]
        #expect(try resolve(file: raw).get() == SecretValue(bytes: raw, isDecoded: false))
    }

    @Test func hexAndBase64GiveBinaryKeys() throws {
        let hex = Secrets.resolve(.environment("S"), environment: ["S": "hex:00ff10"])
        #expect(try hex.get() == SecretValue(bytes: [0x00, 0xFF, 0x10], isDecoded: true))
        let base64 = try resolve(file: Array("base64:AP8Q\n".utf8)).get()
        #expect(base64 == SecretValue(bytes: [0x00, 0xFF, 0x10], isDecoded: true))
        let bad = Secrets.resolve(.environment("S"), environment: ["S": "hex:zz"])
        #expect(throws: SettingsError("environment variable S starts with hex: but the rest is not valid hex")) { try bad.get() }
    }

    @Test func anEnvironmentVariableIsTakenExactly() throws {
        #expect(try Secrets.resolve(.environment("S"), environment: ["S": " a b "]).get().bytes == Array(" a b ".utf8))
        #expect(throws: SettingsError("environment variable S (or S_FILE) is not set")) { try Secrets.resolve(.environment("S"), environment: [:]).get() }
    }

    @Test func aSecretVariableCanNameAFileInstead() throws {
        // NAME_FILE, as Docker secrets and systemd credentials are handed over; NAME wins when both are set.
        let files = ["/run/secrets/s": Array("s3cret\n".utf8)]
        let fromFile = Secrets.resolve(.environment("S"), environment: ["S_FILE": "/run/secrets/s"], readFile: { files[$0] })
        #expect(try fromFile.get() == SecretValue(bytes: Array("s3cret".utf8), isDecoded: false))
        let both = Secrets.resolve(.environment("S"), environment: ["S": "direct", "S_FILE": "/run/secrets/s"], readFile: { files[$0] })
        #expect(try both.get().bytes == Array("direct".utf8))
        let missing = Secrets.resolve(.environment("S"), environment: ["S_FILE": "/run/secrets/none"], readFile: { files[$0] })
        #expect(throws: SettingsError("secret file /run/secrets/none cannot be read")) { try missing.get() }
    }

    @Test func standardWebhooksKeysDecodeOnceOnly() {
        let whsec = SecretValue(bytes: Array("whsec_AP8Q".utf8), isDecoded: false)
        #expect(WebhookVerifier.key(from: whsec, scheme: .standardWebhooks) == [0x00, 0xFF, 0x10])
        let decoded = SecretValue(bytes: [0x00, 0xFF, 0x10], isDecoded: true)
        #expect(WebhookVerifier.key(from: decoded, scheme: .standardWebhooks) == [0x00, 0xFF, 0x10])
        #expect(WebhookVerifier.key(from: whsec, scheme: .shopify) == Array("whsec_AP8Q".utf8))
    }
}
