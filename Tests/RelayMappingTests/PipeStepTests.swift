import Foundation
import Testing

@testable import RelayMapping

@Suite struct PipeStepTests {
    @Test func textSteps() {
        #expect(step("\"trim\"", "\"\\u3000 a b\\u00a0 \"") == "a b")
        #expect(step("\"lowercase\"", "\"ÀBC\"") == "àbc")
        #expect(step("\"uppercase\"", "\"straße\"") == "STRASSE")
        #expect(step("\"nfkc\"", "\"１２３ＡＢＣ\"") == "123ABC")
        #expect(step("\"digits\"", "\"CJ 1234-5678-90\"") == "1234567890")
        #expect(step("\"digits\"", "820982911946154508") == "820982911946154508")
        #expect(step("\"digits\"", "\"전화 +82 (10) 9876-5432-1111\"") == "8210987654321111")
        #expect(step("\"digits\"", "\"no digits\"") == nil)
        #expect(step("{ \"replace\": { \"from\": \"-\", \"to\": \"\" } }", "\"12-34-5\"") == "12345")
        #expect(step("{ \"regex_replace\": { \"pattern\": \"^(\\\\d{3})-(\\\\d+)$\", \"to\": \"$2/$1\" } }", "\"010-1234\"") == "1234/010")
        #expect(step("{ \"prefix\": \"ORD-\" }", "1043") == "ORD-1043")
        #expect(step("{ \"suffix\": \"번\" }", "\"7\"") == "7번")
    }

    @Test(arguments: [
        ("1Z999AA10123456784", "1Z999AA10123456784"), ("1z 999 aa1 0123 456 784", "1Z999AA10123456784"),
        ("EE123456789KR", "EE123456789KR"), ("JJD-0001 2345 6789", "JJD000123456789"), ("6894-1234-5678", "689412345678"),
        (" - ", ""),
    ])
    func trackingNumbersKeepTheirLetters(_ input: String, _ expected: String) {
        #expect(step("\"tracking\"", "\"\(input)\"") == (expected.isEmpty ? nil : expected))
    }

    @Test func orderNumbersTakeOneShape() {
        #expect(step("\"order_number\"", "\"#1043\"") == "1043")
        #expect(step("\"order_number\"", "1043") == "1043")
        #expect(step("\"order_number\"", "\"20241105-0001234\"") == "202411050001234")
        #expect(step("\"order_number\"", "\"wc-77\"") == "WC77")
    }

    @Test func emptyFieldsSayWhichStepEmptiedThem() {
        let route = compileRoute(routeText(set: "\"birthday\": { \"path\": \"$.body.b\", \"pipe\": [{ \"date\": \"Y-m-d\" }], \"required\": true }, \"phone\": { \"path\": \"$.body.p\", \"pipe\": [\"phone_kr\"], \"required\": true }"))!
        #expect(route.apply(to: document(body: #"{"b": "tomorrow", "p": "010-1234-5678"}"#)) == .failed(MappingFailure(rule: "r", field: "birthday", reason: #""tomorrow" from $.body.b is not a date"#)))
        #expect(route.apply(to: document(body: #"{"b": "2026-01-02", "p": "+1 415 555 2671"}"#)) == .failed(MappingFailure(rule: "r", field: "phone", reason: #""+1 415 555 2671" from $.body.p is not a Korean phone number"#)))
        #expect(route.apply(to: document(body: #"{"p": "010-1234-5678"}"#)) == .failed(MappingFailure(rule: "r", field: "birthday", reason: "$.body.b is empty")))
    }

    @Test func prefixAndSuffixLeaveEmptyValuesEmpty() {
        #expect(field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.v\", \"pipe\": [{ \"prefix\": \"ORD-\" }] }", body: "{\"v\": \"\"}") == nil)
    }

    /// A path into a tape body through text steps skips the value tree: every kind of node,
    /// blank and missing values, steps that give nothing and defaults come out as they do from
    /// the tree (`field` maps both and records any difference).
    @Test func textStepsReadEveryKindOfNodeFromTheTape() {
        let body = #"{"s": "a-1", "blank": " \u3000", "n": -12.5e1, "t": true, "f": false, "z": null, "o": {"k": [1, "x"]}, "e": []}"#
        func mapped(_ path: String, _ pipe: String, default fallback: String? = nil) -> String? {
            let defaultMember = fallback.map { ", \"default\": \"\($0)\"" } ?? ""
            return field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.\(path)\", \"pipe\": [\(pipe)]\(defaultMember) }", body: body)
        }
        #expect(mapped("s", "") == "a-1")
        #expect(mapped("s", "\"digits\"") == "1")
        #expect(mapped("n", "\"trim\"") == "-12.5e1")
        #expect(mapped("t", "\"uppercase\"") == "TRUE")
        #expect(mapped("f", "") == "false")
        #expect(mapped("o", "\"trim\"") == #"{"k":[1,"x"]}"#)
        // Blank text goes through the steps (a prefix makes it a value); `null` does not.
        #expect(mapped("blank", "") == nil)
        #expect(mapped("blank", "{ \"suffix\": \"!\" }") == " \u{3000}!")
        #expect(mapped("blank", "\"trim\"", default: "d") == "d")
        #expect(mapped("z", "{ \"lookup\": { \"table\": { \"\": \"x\" }, \"default\": \"y\" } }") == nil)
        #expect(mapped("z", "\"trim\"", default: "d") == "d")
        #expect(mapped("e", "", default: "d") == "d")
        #expect(mapped("missing", "\"trim\"", default: "d") == "d")
        #expect(mapped("missing", "\"trim\"", default: " ") == nil)
        // A step that gives nothing ends the pipe; a later step does not bring a value back.
        #expect(mapped("s", "{ \"lookup\": { \"x\": \"y\" } }, { \"prefix\": \"p\" }", default: "d") == "d")
    }

    @Test func truncateNeverSplitsACharacter() {
        #expect(step("{ \"truncate\": 3 }", "\"가나다라마\"") == "가나다")
        #expect(step("{ \"truncate\": 2 }", "\"👍🏽👨‍👩‍👧x\"") == "👍🏽👨‍👩‍👧")
        #expect(step("{ \"truncate\": 20 }", "\"short\"") == "short")
    }

    @Test func lookupForms() {
        #expect(step("{ \"lookup\": { \"M\": \"male\", \"F\": \"female\" } }", "\"F\"") == "female")
        #expect(step("{ \"lookup\": { \"M\": \"male\" } }", "\"X\"") == nil)
        #expect(step("{ \"lookup\": { \"table\": { \"M\": \"male\" }, \"default\": \"other\" } }", "\"X\"") == "other")
        #expect(step("{ \"lookup\": { \"table\": { \"M\": \"male\" }, \"ignore_case\": true } }", "\"m\"") == "male")
        #expect(step("{ \"lookup\": { \"table\": { \"dhl\": \"DHL\", \"Ups\": \"UPS\" }, \"ignore_case\": true } }", "\"UPS\"") == "UPS")
        #expect(step("{ \"lookup\": { \"table\": { \"dhl\": \"DHL\" }, \"ignore_case\": true } }", "\"DhL\"") == "DHL")
        #expect(step("{ \"lookup\": { \"table\": { \"M\": \"male\" } } }", "\"m\"") == nil)
        #expect(step("{ \"lookup\": { \"true\": \"Y\" } }", "true") == "Y")
    }

    @Test func listSteps() {
        let body = "{\"items\": [{\"sku\": \"A\"}, {\"sku\": \"B\"}, {\"sku\": \"\"}, {\"sku\": \"C\"}]}"
        func listField(_ pipe: String) -> String? {
            field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.items[*].sku\", \"pipe\": [\(pipe)] }", body: body)
        }
        #expect(listField("{ \"join\": \", \" }") == "A, B, C")
        #expect(listField("\"count\"") == "4")
        #expect(listField("\"first\"") == "A")
        #expect(listField("\"last\"") == "C")
        #expect(field("parameter1", set: "\"parameter1\": { \"path\": \"$.body.none[*]\", \"pipe\": [\"count\"] }", body: body) == "0")
        // Without a list step, a field takes the first node.
        #expect(field("parameter1", set: "\"parameter1\": \"$.body.items[*].sku\"", body: body) == "A")
    }

    @Test(arguments: [
        ("+82 10-1234-5678", "01012345678"), ("+82 (0)10 1234 5678", "01012345678"), ("0082-10-1234-5678", "01012345678"),
        ("010-1234-5678", "01012345678"), ("(010) 1234 5678", "01012345678"), ("010.1234.5678", "01012345678"),
        ("01012345678", "01012345678"), ("８２１０１２３４５６７８", "01012345678"), ("+８２ １０-１２３４-５６７８", "01012345678"),
        ("+82-2-312-3456", "023123456"), ("02-3123-4567", "0231234567"), ("031-123-4567", "0311234567"),
        ("1588-1234", "15881234"), ("070-1234-5678", "07012345678"), ("011-123-4567", "0111234567"), ("82 10 1234 5678", "01012345678"),
        ("+1 415 555 2671", ""), ("+44 20 7946 0958", ""), ("12345", ""), ("010-1234", ""), ("phone: 010", ""),
        ("010-1234-56789", ""), ("", ""),
    ])
    func phoneKR(_ input: String, _ expected: String) {
        #expect(step("\"phone_kr\"", "\"\(input)\"") == (expected.isEmpty ? nil : expected))
    }

    @Test(arguments: [
        // A date-time with an offset is converted to Asia/Seoul.
        ("\"2026-11-29T04:05:00Z\"", "\"Y-m-d H:i:s\"", "2026-11-29 13:05:00"),
        ("\"2026-11-29T20:30:00-05:00\"", "\"Y-m-d H:i\"", "2026-11-30 10:30"),
        ("\"2026-11-29T23:30:00+0900\"", "\"Y-m-d H:i\"", "2026-11-29 23:30"),
        ("\"2026-12-31T15:00:00.123Z\"", "\"Y-m-d\"", "2027-01-01"),
        // A date-time without an offset is taken as already in the zone.
        ("\"2026-11-29 23:30:00\"", "\"Y-m-d H:i\"", "2026-11-29 23:30"),
        // A plain date never shifts.
        ("\"2026-11-29\"", "\"Y-m-d\"", "2026-11-29"),
        ("\"2026/3/5\"", "\"Y-m-d\"", "2026-03-05"),
        ("\"2026.03.05\"", "\"Ymd\"", "20260305"),
        ("\"19900401\"", "\"Y-m-d\"", "1990-04-01"),
        // Unix seconds, as a number or a 10-digit string.
        ("1764389100", "\"Y-m-d H:i\"", "2025-11-29 13:05"),
        ("\"1764389100\"", "\"Y-m-d H:i\"", "2025-11-29 13:05"),
        // Unix milliseconds (JavaScript, chat platforms), as a number or a 13-digit string.
        ("1764389100123", "\"Y-m-d H:i:s\"", "2025-11-29 13:05:00"),
        ("\"1764389100999\"", "\"Y-m-d H:i:s\"", "2025-11-29 13:05:00"),
        ("176438910012345", "\"Y-m-d\"", ""),
        ("\"2024-02-29\"", "\"Y-m-d\"", "2024-02-29"),
        ("\"2023-02-29\"", "\"Y-m-d\"", ""),
        ("\"2026-13-01\"", "\"Y-m-d\"", ""),
        ("\"next tuesday\"", "\"Y-m-d\"", ""),
        ("\"2026-11-29T25:00:00Z\"", "\"Y-m-d\"", ""),
        ("true", "\"Y-m-d\"", ""),
    ])
    func dates(_ input: String, _ format: String, _ expected: String) {
        #expect(step("{ \"date\": \(format) }", input) == (expected.isEmpty ? nil : expected))
    }

    @Test func dateWithAnotherZone() {
        #expect(step("{ \"date\": { \"format\": \"Y-m-d H:i\", \"tz\": \"UTC\" } }", "\"2026-11-29T13:05:00+09:00\"") == "2026-11-29 04:05")
        #expect(step("{ \"date\": { \"format\": \"Y-m-d H:i\", \"tz\": \"America/New_York\" } }", "\"2026-07-01T12:00:00Z\"") == "2026-07-01 08:00")
    }
}
