import Foundation
import TestSupport
import Testing

@testable import RelayMapping

/// The relay's own NFKC, time zones and regular expressions, which replaced Foundation's when
/// the relay stopped loading Foundation (and ICU). NFKC is compared with Python's
/// `unicodedata`, which its tables are generated from: Foundation's own normalization is not
/// a reference (it leaves `가` + `ᆨ` apart, does not reorder marks that a compatibility
/// decomposition brings, and composes U+10041 with U+0301 as if it were `A`).
@Suite struct NFKCTests {
    /// Python's NFKC of each text, through one `python3` process.
    private func python(_ texts: [String]) throws -> (version: String, results: [[Unicode.Scalar]]) {
        let script = """
            import sys, unicodedata
            lines = [unicodedata.unidata_version]
            for line in sys.stdin:
                text = "".join(chr(int(h, 16)) for h in line.split())
                lines.append(" ".join("%X" % ord(c) for c in unicodedata.normalize("NFKC", text)))
            sys.stdout.write("\\n".join(lines) + "\\n")
            """
        let lines = texts.map { $0.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " ") }
        let answer = try Python.run(script, input: lines.joined(separator: "\n") + "\n").split(separator: "\n", omittingEmptySubsequences: false)
        guard answer.count == texts.count + 2 else { throw Python.Failed(description: "python3 answered \(answer.count) lines for \(texts.count) texts") }
        let results = answer[1...texts.count].map { line in line.split(separator: " ").map { Unicode.Scalar(UInt32($0, radix: 16)!)! } }
        return (String(answer[0]), results)
    }

    private func differences(_ texts: [String]) throws -> [String] {
        let (version, expected) = try python(texts)
        #expect(version == NFKC.unicodeVersion, "the tables are Unicode \(NFKC.unicodeVersion), python3's \(version)")
        return zip(texts, expected).compactMap { text, expected in
            Array(NFKC.normalize(text).unicodeScalars) == expected
                ? nil : text.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " ")
        }
    }

    // The long tests run off the cooperative pool: blocking both of its threads for seconds
    // starves the tests that await there (an idle client connection expired under one).
    @Test func nfkcAgreesWithPythonForEveryScalar() async throws {
        try await offPool { try self.everyScalarAgrees() }
    }

    private func everyScalarAgrees() throws {
        var texts: [String] = []
        for value in UInt32(0)...0x10FFFF {
            // Planes 4 to 13 hold nothing; 15 and 16 are private use.
            guard value < 0x40000 || (0xE0000..<0xF0000).contains(value), let scalar = Unicode.Scalar(value) else { continue }
            texts.append(String(scalar))
            // After a letter it may compose with, and before a mark that may join it: the
            // first two planes hold every scalar that composes.
            if value < 0x20000 { texts += ["A" + String(scalar), String(scalar) + "\u{301}"] }
        }
        let different = try differences(texts)
        #expect(different.count == 0, "\(different.count) differ, e.g. \(different.prefix(10))")
    }

    @Test func nfkcAgreesWithPythonOnMixedText() async throws {
        try await offPool { try self.mixedTextAgrees() }
    }

    private func mixedTextAgrees() throws {
        // Marks in every order, jamo that compose into syllables, compatibility forms among them.
        let pool: [Unicode.Scalar] = [
            "a", "e", "o", "A", "\u{300}", "\u{301}", "\u{302}", "\u{308}", "\u{323}", "\u{327}", "\u{328}", "\u{345}", "\u{3B1}",
            "\u{1100}", "\u{1161}", "\u{11A8}", "\u{11A7}", "\u{AC00}", "\u{AC01}", "\u{FF21}", "\u{FF11}", "\u{2460}", "\u{FB01}",
            "\u{1E0A}", "\u{1E63}", "\u{0F73}", "\u{0F71}", "\u{0F72}", "\u{05B8}", "\u{05B7}", "\u{0915}", "\u{093C}", "\u{3099}",
            "\u{304B}", "\u{FF76}", "\u{FF9E}", "\u{1D15E}", "\u{2126}", "\u{212B}", " ", "\u{3000}", "\u{11099}", "\u{110BA}",
        ]
        var generator = SystemRandomNumberGenerator()
        var texts: [String] = []
        for _ in 0..<100_000 {
            var text = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 1...6, using: &generator) { text.append(pool.randomElement(using: &generator)!) }
            texts.append(String(text))
        }
        let different = try differences(texts)
        #expect(different.count == 0, "\(different.count) differ, e.g. \(different.prefix(10))")
    }

    @Test func nfkcFoldsWhatShopsSend() {
        #expect(NFKC.normalize("１２３－４５ＡＢ") == "123-45AB")
        #expect(NFKC.normalize("주문 ①번") == "주문 1번")
        #expect(Array(NFKC.normalize("\u{1112}\u{1161}\u{11AB}").unicodeScalars) == ["\u{D55C}"])
        #expect(Array(NFKC.normalize("\u{AC00}\u{11A8}").unicodeScalars) == ["\u{AC01}"])
        #expect(NFKC.normalize("plain ascii") == "plain ascii")
        #expect(NFKC.normalize("") == "")
    }
}

@Suite struct TimeZoneRulesTests {
    /// Zones with daylight saving in both hemispheres, half and quarter hours, and a fixed one.
    static let zones = [
        "Asia/Seoul", "UTC", "America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Australia/Sydney",
        "Australia/Adelaide", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Pacific/Auckland", "Pacific/Chatham",
        "America/Santiago", "Asia/Tokyo", "Asia/Tehran",
    ]

    @Test(arguments: zones) func offsetsAgreeWithFoundation(_ name: String) throws {
        let ours = try #require(TimeZoneRules(identifier: name))
        let theirs = try #require(TimeZone(identifier: name))
        var differences: [String] = []
        // Every 6 hours and 7 minutes from 1990 to 2060: around every change, past the
        // transitions a file lists and into the rule after them.
        var instant = 631_152_000
        while instant < 2_871_763_200 {
            let expected = theirs.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
            let actual = ours.offset(atEpochSeconds: instant)
            if expected != actual { differences.append("\(instant): \(actual) ≠ \(expected)") }
            instant += 6 * 3600 + 7 * 60
        }
        #expect(differences.count == 0, "\(differences.count) differ, e.g. \(differences.prefix(5))")
    }

    @Test func unknownAndUnsafeNamesAreRefused() {
        #expect(TimeZoneRules(identifier: "Asia/Nowhere") == nil)
        #expect(TimeZoneRules(identifier: "../../etc/passwd") == nil)
        #expect(TimeZoneRules(identifier: "/etc/localtime") == nil)
        #expect(TimeZoneRules(identifier: "") == nil)
        // A file that is not a zone.
        #expect(TimeZoneRules(identifier: "zone.tab") == nil)
    }

    @Test func theDefaultZoneAndUTCWorkWithoutTheDatabase() throws {
        let seoul = try #require(TimeZoneRules(identifier: "Asia/Seoul", directory: "/nonexistent"))
        #expect(seoul.offset(atEpochSeconds: 1_796_115_600) == 9 * 3600)
        #expect(TimeZoneRules(identifier: "UTC", directory: "/nonexistent")?.offset(atEpochSeconds: 0) == 0)
        #expect(TimeZoneRules(identifier: "Europe/Paris", directory: "/nonexistent") == nil)
        // The load error then says what is missing, not that the zone is unknown to the world.
        #expect(
            TimeZoneRules.unknownZoneMessage("Europe/Paris", directory: "/nonexistent")
                == #"unknown time zone "Europe/Paris": this machine has no zone database at /nonexistent (install tzdata, or set TZDIR); without it only "Asia/Seoul" and "UTC" are known"#)
        #expect(TimeZoneRules.unknownZoneMessage("Asia/Seul", directory: "/usr/share/zoneinfo").hasSuffix(#"(use an IANA name such as "Asia/Seoul" or "UTC")"#))
    }

    @Test func posixRulesReadEveryForm() throws {
        let newYork = try #require(PosixRule("EST5EDT,M3.2.0,M11.1.0"))
        // 2026-03-08 06:59:59Z is 01:59:59 EST; a second later it is 03:00 EDT.
        #expect(newYork.offset(atEpochSeconds: 1_772_953_199) == -5 * 3600)
        #expect(newYork.offset(atEpochSeconds: 1_772_953_200) == -4 * 3600)
        let seoul = try #require(PosixRule("KST-9"))
        #expect(seoul.offset(atEpochSeconds: 0) == 9 * 3600)
        let newfoundland = try #require(PosixRule("<-0330>3:30<-0230>,M3.2.0,M11.1.0"))
        #expect(newfoundland.offset(atEpochSeconds: 1_767_225_600) == -(3 * 3600 + 1800))
        // Southern hemisphere: daylight time spans the new year.
        let sydney = try #require(PosixRule("AEST-10AEDT,M10.1.0,M4.1.0/3"))
        #expect(sydney.offset(atEpochSeconds: 1_767_225_600) == 11 * 3600)
        #expect(sydney.offset(atEpochSeconds: 1_782_864_000) == 10 * 3600)
        // Day-of-year forms, and times past midnight.
        let julian = try #require(PosixRule("XST-1XDT,J60/1,J300/25"))
        #expect(julian.offset(atEpochSeconds: 1_782_864_000) == 2 * 3600)
        #expect(PosixRule("<+0545>-5:45")?.offset(atEpochSeconds: 0) == 5 * 3600 + 45 * 60)
        for malformed in ["", "K", "KST", "KST-9KDT,M13.1.0,M11.1.0", "EST5EDT,M3.2.0", "EST5EDT,M3.6.0,M11.1.0", "<KST-9"] {
            #expect(PosixRule(malformed) == nil, "\(malformed)")
        }
    }
}

@Suite struct CompiledRegexTests {
    private func replaced(_ pattern: String, _ template: String, _ text: String) throws -> String {
        let regex = try CompiledRegex(pattern)
        return regex.replacing(in: text, with: try regex.template(template).get())
    }

    @Test func templatesReferToGroupsByNumberAndName() throws {
        #expect(try replaced("^(\\d{3})-(\\d+)$", "$2/$1", "010-1234") == "1234/010")
        #expect(try replaced("(?<area>\\d+)-(\\d+)", "${area}:$0", "02-123") == "02:02-123")
        #expect(try replaced("\\d", "[$0]", "a1b2") == "a[1]b[2]")
        // The longest number the pattern has groups for: with one group, $12 is $1 then "2".
        #expect(try replaced("(a)", "$12", "a") == "a2")
        #expect(try replaced("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)", "$12", "abcdefghijkl") == "l")
        // Escapes, and a $ before anything but a digit or a brace.
        #expect(try replaced("a", "\\$1 $ \\\\", "a") == "$1 $ \\")
        #expect(try replaced("x", "y", "") == "")
        #expect(try replaced("(x)?y", "[$1]", "y") == "[]")
    }

    @Test func templatesOutsideThePatternAreRefused() throws {
        let regex = try CompiledRegex("(a)")
        #expect(throws: CompiledRegex.TemplateError.self) { try regex.template("$2").get() }
        #expect(throws: CompiledRegex.TemplateError.self) { try regex.template("${name}").get() }
    }

    @Test func theEngineIsSkippedOnlyWhenEveryMatchStartsWithOneByte() throws {
        let cases: [(String, Character?)] = [
            ("\\.\\d+$", "."), ("^#\\d+", "#"), ("a+b", "a"), ("-x", "-"), ("\\/", "/"),
            // A class, an optional or repeated-from-zero first atom, alternation, flags, groups.
            ("\\d+", nil), ("a?b", nil), ("a*b", nil), ("a{0,2}b", nil), ("a|b", nil), ("(?i)a", nil), ("(a)", nil),
            ("[.]", nil), (".", nil), ("$", nil), ("\\x41", nil), ("\\p{L}", nil), ("한", nil), ("", nil),
        ]
        for (pattern, expected) in cases {
            #expect(CompiledRegex.firstByte(of: pattern) == expected.map { $0.asciiValue! }, "\(pattern)")
        }
        // With and without the byte, the answers are the engine's.
        #expect(try replaced("\\.\\d+$", "", "#1043.1") == "#1043")
        #expect(try replaced("\\.\\d+$", "", "#1043") == "#1043")
        #expect(try CompiledRegex("#\\d+").matchesWhole("#12") == true)
        #expect(try CompiledRegex("#\\d+").matchesWhole("x#12") == false)
    }

    @Test func theByteItSkipsOnIsOneNoMatchLacks() throws {
        // Random patterns and texts: wherever the engine is skipped, it would have found nothing.
        let atoms = ["a", "b", "\\.", "-", "#", "\\d", "[ab]", ".", "x", "^", "$", "(a)", "é"]
        let quantifiers = ["", "", "+", "?", "*", "{2}", "{0,1}"]
        let alphabet = Array("ab.-#1x2 é\u{301}")
        var generator = SystemRandomNumberGenerator()
        var skipped = 0
        for _ in 0..<2_000 {
            var pattern = ""
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                pattern += atoms.randomElement(using: &generator)! + quantifiers.randomElement(using: &generator)!
            }
            guard let byte = CompiledRegex.firstByte(of: pattern), let regex = try? Regex(pattern).matchingSemantics(.unicodeScalar) else { continue }
            for _ in 0..<20 {
                let text = String((0..<Int.random(in: 0...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
                if !text.utf8.contains(byte) {
                    skipped += 1
                    #expect(text.firstMatch(of: regex) == nil, "\(pattern) on \(text)")
                }
                if text.utf8.first != byte { #expect(text.wholeMatch(of: regex) == nil, "\(pattern) on \(text)") }
            }
        }
        #expect(skipped > 1_000)
    }

    /// One compiled regex serves every loop at once (run under `--sanitize=thread` too).
    @Test func oneRegexIsSharedByManyThreads() async throws {
        let regex = try CompiledRegex("^(\\d{3})-(\\d+)$")
        let template = try regex.template("$2/$1").get()
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await offPool {
                        (0..<500).allSatisfy { index in
                            regex.replacing(in: "010-\(index)", with: template) == "\(index)/010" && regex.matchesWhole("123-4")
                        }
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results == [true, true, true, true])
    }

    @Test func matchingIsByScalarAndWhole() throws {
        // `.` is one scalar: in a decomposed é the mark stands alone (by grapheme, "e" would
        // not match the é and "." would take all of it).
        #expect(try CompiledRegex("e.x").matchesWhole("e\u{301}x") == true)
        #expect(try CompiledRegex("e.x").matchesWhole("e\u{301}\u{301}x") == false)
        #expect(try CompiledRegex("..").matchesWhole("e\u{301}") == true)
        #expect(try CompiledRegex("[0-9]{3}").matchesWhole("123") == true)
        #expect(try CompiledRegex("[0-9]{3}").matchesWhole("1234") == false)
        #expect(try CompiledRegex("(?i)abc").matchesWhole("ABC") == true)
        #expect(try CompiledRegex("\\p{Hangul}+").matchesWhole("주문") == true)
    }
}

@Suite struct TextAndPathTests {
    @Test func whiteSpaceIsTrimmedAtBothEndsOnly() {
        #expect("\u{3000} a b\u{00A0} \t\n".trimmingWhitespace() == "a b")
        #expect(" \r\n ".trimmingWhitespace() == "")
        #expect("x".trimmingWhitespace() == "x")
        #expect("a\u{2003}b"[...].trimmingWhitespace() == "a\u{2003}b")
        #expect("application/json".trimmingWhitespace() == "application/json")
        #expect("\u{0B}x\u{0C}".trimmingWhitespace() == "x")
        #expect("x\u{85}".trimmingWhitespace() == "x")
        // Every ASCII byte at either end: trimmed exactly when Unicode calls it white space.
        for byte in UInt8(0)..<0x80 {
            let scalar = Unicode.Scalar(byte)
            let expected = scalar.properties.isWhitespace ? "x" : "\(scalar)x\(scalar)"
            #expect("\(scalar)x\(scalar)".trimmingWhitespace() == expected, "\(byte)")
        }
    }

    @Test func pathsSplitAndJoinAsFoundationDid() {
        for path in ["a/b.json", "/b.json", "b.json", "a/b/", "/", "", "a//b", "./x.json"] {
            #expect(FilePath.directory(of: path) == (path as NSString).deletingLastPathComponent, "\(path)")
            #expect(FilePath.lastComponent(of: path) == (path as NSString).lastPathComponent, "\(path)")
        }
        for (directory, name) in [("a", "b"), ("a/", "b"), ("", "b"), ("/", "b")] {
            #expect(FilePath.join(directory, name) == (directory as NSString).appendingPathComponent(name))
        }
        #expect(FilePath.isDirectory("/tmp") == true)
        #expect(FilePath.isDirectory("/etc/hostname") == false)
        #expect(FilePath.isDirectory("/nonexistent") == nil)
    }
}

@Suite struct EveryZoneTests {
    /// Every zone ICU knows is in the system's database, and its offsets there, 1975 to 2037,
    /// are those Python's `zoneinfo` reads from the same files (CPython's reader of RFC 8536,
    /// transitions and footer rule alike). ICU is no reference for the offsets: its database is
    /// the toolchain's, and a newer system `tzdata` corrects past offsets (2026b: Baja
    /// California's in 1975) that ICU still has as before.
    @Test func everyZoneIsReadAsPythonReadsIt() async throws {
        try await offPool { try Self.everyZoneAgrees() }
    }

    /// The instants compared: every 10 days and 7 hours.
    private static let instants = Array(stride(from: 157_766_400, to: 2_145_916_800, by: 10 * 86400 + 7 * 3600))

    /// Python's offsets for each zone at `instants`, through one `python3` process; nil for a
    /// zone the system's database lacks.
    private static func python(_ names: [String]) throws -> [String: [Int]?] {
        let script = """
            import sys
            from datetime import datetime, timezone
            from zoneinfo import ZoneInfo
            instants = range(\(instants[0]), \(instants[instants.count - 1] + 1), \(instants[1] - instants[0]))
            for name in sys.stdin.read().split():
                try:
                    zone = ZoneInfo(name)
                except Exception:
                    print(name, "-")
                    continue
                print(name, " ".join(str(int(datetime.fromtimestamp(t, timezone.utc).astimezone(zone).utcoffset().total_seconds())) for t in instants))
            """
        let output = try Python.run(script, input: names.joined(separator: "\n"))
        var offsets: [String: [Int]?] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            offsets[String(fields[0])] = fields[1] == "-" ? .some(nil) : fields.dropFirst().map { Int($0)! }
        }
        return offsets
    }

    private static func everyZoneAgrees() throws {
        let names = TimeZone.knownTimeZoneIdentifiers
        #expect(names.count > 400)
        let theirs = try python(names)
        var unreadable: [String] = []
        var differing: [String: Int] = [:]
        for name in names {
            guard let ours = TimeZoneRules(identifier: name), case .some(.some(let expected)) = theirs[name] else {
                unreadable.append(name)
                continue
            }
            for (instant, offset) in zip(instants, expected) where ours.offset(atEpochSeconds: instant) != offset {
                differing[name, default: 0] += 1
            }
        }
        #expect(unreadable.isEmpty, "\(unreadable)")
        #expect(differing.isEmpty, "\(differing)")
    }
}

/// Debian's Python, the reference the NFKC tables and the zone reader are checked against
/// (deploy/install-build-deps installs it for the tests).
enum Python {
    struct Failed: Error, CustomStringConvertible {
        let description: String
    }

    /// What `script` writes, given `input` on standard input; throws when it fails.
    static func run(_ script: String, input: String) throws -> String {
        let (status, output) = try ChildProcess.run("/usr/bin/python3", ["-c", script], input: input)
        guard status == 0 else { throw Failed(description: "python3 exited with \(status): \(output)") }
        return output
    }
}
