import FoundationEssentials
import Glibc
import RelayCLI

/// The `happyrelay` executable: hands its arguments to the command line and exits with its code.
@main
struct HappyRelay {
    static func main() async {
        let code = await Commands.run(Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
        // exit() flushes what was printed.
        exit(code)
    }
}
