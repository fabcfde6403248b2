import Dispatch
import Synchronization
import Testing

@testable import RelayCore
@testable import RelayCrypto

func hexOf(_ bytes: [UInt8]) -> String { ByteEncoding.hex(bytes) }
func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }
func unhex(_ text: String) -> [UInt8] { ByteEncoding.decodeHex(text)! }

/// FIPS 180-4 example vectors (NIST CSRC "Examples with intermediate values").
@Suite struct SHATests {
    static let twoBlock = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    static let sha512TwoBlock =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"

    @Test func sha256() {
        #expect(hexOf(SHA256.hash(utf8("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hexOf(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hexOf(SHA256.hash(utf8(Self.twoBlock))) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hexOf(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000))) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func sha512() {
        #expect(
            hexOf(SHA512.hash(utf8("abc")))
                == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        #expect(
            hexOf(SHA512.hash(utf8(Self.sha512TwoBlock)))
                == "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909")
    }

    @Test func sha1() {
        #expect(hexOf(SHA1.hash(utf8("abc"))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hexOf(SHA1.hash(utf8(Self.twoBlock))) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

}

/// RFC 4231 (HMAC-SHA256/512) and RFC 2202 (HMAC-SHA1) test cases.
@Suite struct HMACTests {
    struct Case: Sendable {
        let key: [UInt8]
        let data: [UInt8]
        let sha256: String
        let sha512: String
    }

    static let cases: [Case] = [
        Case(key: [UInt8](repeating: 0x0b, count: 20), data: utf8("Hi There"),
             sha256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
             sha512: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
        Case(key: utf8("Jefe"), data: utf8("what do ya want for nothing?"),
             sha256: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
             sha512: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        Case(key: [UInt8](repeating: 0xaa, count: 20), data: [UInt8](repeating: 0xdd, count: 50),
             sha256: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
             sha512: "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"),
        Case(key: unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), data: [UInt8](repeating: 0xcd, count: 50),
             sha256: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
             sha512: "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"),
        Case(key: [UInt8](repeating: 0xaa, count: 131), data: utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
             sha256: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
             sha512: "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"),
        Case(key: [UInt8](repeating: 0xaa, count: 131),
             data: utf8("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
             sha256: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
             sha512: "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"),
    ]

    @Test(arguments: cases)
    func rfc4231(_ testCase: Case) {
        #expect(hexOf(HMAC.authenticationCode(SHA256.self, key: testCase.key, message: testCase.data)) == testCase.sha256)
        #expect(hexOf(HMAC.authenticationCode(SHA512.self, key: testCase.key, message: testCase.data)) == testCase.sha512)
    }

    @Test func rfc2202SHA1() {
        #expect(hexOf(HMAC.authenticationCode(SHA1.self, key: [UInt8](repeating: 0x0b, count: 20), message: utf8("Hi There")))
            == "b617318655057264e28bc0b6fb378c8ef146be00")
        #expect(hexOf(HMAC.authenticationCode(SHA1.self, key: utf8("Jefe"), message: utf8("what do ya want for nothing?")))
            == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        #expect(hexOf(HMAC.authenticationCode(SHA1.self, key: [UInt8](repeating: 0xaa, count: 80), message: utf8("Test Using Larger Than Block-Size Key - Hash Key First")))
            == "aa4ae5e15272d00e95705637ce8a3b55ed402112")
    }

    /// GitHub's documented example ("Validating webhook deliveries").
    @Test func githubDocumentedSignature() {
        #expect(hexOf(HMAC.authenticationCode(SHA256.self, key: utf8("It's a Secret to Everybody"), message: utf8("Hello, World!")))
            == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    }

    /// The Standard Webhooks specification's example signature.
    @Test func standardWebhooksDocumentedSignature() {
        let key = ByteEncoding.decodeBase64("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!
        let signed = utf8("msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}")
        #expect(ByteEncoding.base64(HMAC.authenticationCode(SHA256.self, key: key, message: signed)) == "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    /// A prepared key gives every message the MAC a fresh key gives it: nothing of one message
    /// is left in the context the next one is hashed with.
    @Test func aPreparedKeySignsMessageAfterMessage() throws {
        let key = try #require(HMACKey(SHA256.self, key: [UInt8](repeating: 0xaa, count: 131)))
        for _ in 0..<2 {
            for testCase in Self.cases where testCase.key == [UInt8](repeating: 0xaa, count: 131) {
                #expect(hexOf(key.authenticationCode(testCase.data)) == testCase.sha256)
            }
        }
        #expect(hexOf(try #require(HMACKey(SHA256.self, key: [])).authenticationCode(utf8("")))
            == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    /// The loops of a relay verify with the same keys at once: each thread hashes in a context
    /// of its own.
    @Test func aPreparedKeyIsSharedByThreads() throws {
        let key = try #require(HMACKey(SHA256.self, key: utf8("shared")))
        let messages = (0..<64).map { index in [UInt8](repeating: UInt8(index), count: 3072 + index) }
        let expected = messages.map { HMAC.authenticationCode(SHA256.self, key: utf8("shared"), message: $0) }
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for round in 0..<200 {
                let index = (thread * 7 + round) % messages.count
                if key.authenticationCode(messages[index]) != expected[index] { mismatches.withLock { $0 += 1 } }
            }
        }
        #expect(mismatches.withLock { $0 } == 0)
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
    }
}

/// RFC 4648 §10 test vectors.
@Suite struct EncodingTests {
    @Test func base64Vectors() {
        let vectors = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            #expect(ByteEncoding.base64(utf8(plain)) == encoded)
            #expect(ByteEncoding.decodeBase64(encoded) == utf8(plain))
        }
        #expect(ByteEncoding.base64([0xfb, 0xff], urlSafe: true) == "-_8")
        #expect(ByteEncoding.decodeBase64("-_8") == [0xfb, 0xff])
        #expect(ByteEncoding.decodeBase64("+/8=") == [0xfb, 0xff])
        #expect(ByteEncoding.decodeBase64("Zm9v!") == nil)
        #expect(ByteEncoding.decodeBase64("Z") == nil)
        #expect(ByteEncoding.decodeBase64("Zg=a") == nil)
    }

    @Test func hexVectors() {
        #expect(ByteEncoding.hex(utf8("foobar")) == "666f6f626172")
        #expect(ByteEncoding.decodeHex("666F6f626172") == utf8("foobar"))
        #expect(ByteEncoding.decodeHex("abc") == nil)
        #expect(ByteEncoding.decodeHex("zz") == nil)
    }
}
