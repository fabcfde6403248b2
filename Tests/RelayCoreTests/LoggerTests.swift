import Synchronization
import Testing

@testable import RelayCore

@Suite struct LoggerTests {
    func lines(_ format: Logger.Format, _ write: (Logger) -> Void) -> [String] {
        let captured = Mutex<[String]>([])
        let logger = Logger(level: .info, format: format, sink: .init { line in captured.withLock { $0.append(line) } })
        write(logger)
        return captured.withLock { $0 }
    }

    @Test func textValuesThatCouldForgeAFieldOrALineAreQuoted() {
        let written = lines(.text) { $0.warning("delivery is dead", ["reason": "room\nERROR:forged", "route": "/r"]) }
        #expect(written.count == 1)
        #expect(written[0].hasSuffix(#" WARNING delivery is dead reason="room\nERROR:forged" route=/r"# + "\n"))
    }

    @Test func jsonLinesEscapeEveryValueAndSkipDisabledLevels() {
        let written = lines(.json) { logger in
            logger.debug("not written")
            logger.info("webhook", ["route": "/a\"b"])
        }
        #expect(written.count == 1)
        #expect(written[0].hasSuffix(#","level":"info","msg":"webhook","route":"/a\"b"}"# + "\n"))
    }

    @Test func jsonValuesKeepTheirTypes() {
        let written = lines(.json) { $0.info("webhook", ["status": 202, "duration_ms": 2.74, "dry_run": false, "route": "/r", "odd": Double.nan]) }
        #expect(written[0].hasSuffix(#""msg":"webhook","status":202,"duration_ms":2.74,"dry_run":false,"route":"/r","odd":"nan"}"# + "\n"))
        let text = lines(.text) { $0.info("webhook", ["status": 202, "dry_run": true]) }
        #expect(text[0].hasSuffix(" INFO webhook status=202 dry_run=true\n"))
    }
}
