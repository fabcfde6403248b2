import Foundation
import RelayCore

/// The `happyrelay` command line: which command runs, its help, its exit code.
package enum Commands {
    package static let version = "0.1.0"

    static let usage = """
        usage: happyrelay <command> [options]

        commands:
          serve                   run the relay
          check                   validate the mapping files and run their examples
          map                     show the set_user_info call a mapping makes of a payload (dry run)
          mock-upstream           a local HappyTalk set_user_info mock for trials and tests
          deliveries list|replay  the async delivery queue: list deliveries, replay dead ones
          bindings list|delete    the bindings that link order numbers, phones, … to chat rooms

        Run `happyrelay <command> --help` for a command's options; `happyrelay --version` prints the version.
        """

    /// Runs the command in `arguments` (without the program name); returns the exit code.
    package static func run(_ arguments: [String], environment: [String: String], standardInput: @Sendable () -> [UInt8]) async -> Int32 {
        var arguments = arguments
        guard !arguments.isEmpty else {
            return ServeCommand.failed(usage, code: 2)
        }
        let command = arguments.removeFirst()
        switch command {
        case "--help", "-h", "help":
            print(usage)
            return 0
        case "--version":
            print("happyrelay \(version)")
            return 0
        case "serve":
            return await ServeCommand.run(arguments, environment: environment, version: version)
        case "mock-upstream":
            return await ServeCommand.mockUpstream(arguments)
        case "deliveries":
            return deliveries(arguments, environment: environment)
        case "bindings":
            return bindings(arguments, environment: environment)
        case "check":
            if arguments.contains("--help") {
                print("usage: happyrelay check [--mappings DIR] [DIR|FILE]...\n\nValidates the mapping files of the folders and files named (default: the mappings folder) and runs their examples; JSON files without \"route\" in a folder are skipped with a notice; unset secrets and paths no example reaches are warnings. Exit 0 when all are valid, 1 otherwise.\n\noptions:\n\(helpText(for: MappingCommands.checkOptions))")
                return 0
            }
            return finish(command: "check", usage: "happyrelay check [--mappings DIR] [DIR|FILE]...") { () throws(SettingsError) in
                try MappingCommands.check(arguments, environment: environment)
            }
        case "map":
            if arguments.contains("--help") {
                print("usage: happyrelay map --route PATH [--header 'Name: value']... [--query 'k=v']... [--mappings DIR] [--data-dir DIR | --bind KIND=VALUE:UUID/ROOM...] [--explain] PAYLOAD\n\nPrints the set_user_info body the route's mapping makes of PAYLOAD (a file, or - for standard input; an example file {headers, query, body} is taken apart), token shown as \"***\"; it does not verify signatures and sends nothing. Exit 0 when a call would be made, 3 when ignored, 1 on error.\n\noptions:\n\(helpText(for: MappingCommands.mapOptions))")
                return 0
            }
            return finish(command: "map", usage: "happyrelay map --route PATH [options] PAYLOAD") { () throws(SettingsError) in
                try MappingCommands.map(arguments, environment: environment, standardInput: standardInput)
            }
        default:
            return ServeCommand.failed("happyrelay: unknown command \"\(command)\"\n\(usage)", code: 2)
        }
    }

    static func deliveries(_ arguments: [String], environment: [String: String]) -> Int32 {
        let usage = "happyrelay deliveries list [--state pending|dead|delivered] [--json] --data-dir DIR\n       happyrelay deliveries replay (ID|--all-dead) --data-dir DIR [--mappings DIR]"
        var rest = arguments
        let action = rest.isEmpty ? "" : rest.removeFirst()
        switch action {
        case "list":
            if rest.contains("--help") {
                print("usage: \(usage)\n\noptions:\n\(helpText(for: DeliveryCommands.listOptions))")
                return 0
            }
            return finish(command: "deliveries list", usage: usage) { () throws(SettingsError) in try DeliveryCommands.list(rest, environment: environment) }
        case "replay":
            if rest.contains("--help") {
                print("usage: \(usage)\n\nPuts dead deliveries back in the queue, re-mapped with the current mapping files; a running relay picks them up within a second.\n\noptions:\n\(helpText(for: DeliveryCommands.replayOptions))")
                return 0
            }
            return finish(command: "deliveries replay", usage: usage) { () throws(SettingsError) in try DeliveryCommands.replay(rest, environment: environment) }
        case "--help", "-h":
            print("usage: \(usage)")
            return 0
        default:
            return ServeCommand.failed("happyrelay deliveries: expected list or replay\nusage: \(usage)", code: 2)
        }
    }

    static func bindings(_ arguments: [String], environment: [String: String]) -> Int32 {
        let usage = "happyrelay bindings list [--key KIND=VALUE] [--json] --data-dir DIR\n       happyrelay bindings delete KIND=VALUE --data-dir DIR"
        var rest = arguments
        let action = rest.isEmpty ? "" : rest.removeFirst()
        switch action {
        case "list" where rest.contains("--help"), "--help", "-h":
            print("usage: \(usage)\n\nLists the unexpired bindings: key, uuid, room_id, created, expires.\n\noptions:\n\(helpText(for: BindingCommands.listOptions))")
            return 0
        case "delete" where rest.contains("--help"):
            print("usage: \(usage)\n\nDeletes one binding; exit 1 when there was none.\n\noptions:\n\(helpText(for: BindingCommands.deleteOptions))")
            return 0
        case "list":
            return finish(command: "bindings list", usage: usage) { () throws(SettingsError) in try BindingCommands.list(rest, environment: environment) }
        case "delete":
            return finish(command: "bindings delete", usage: usage) { () throws(SettingsError) in try BindingCommands.delete(rest, environment: environment) }
        default:
            return ServeCommand.failed("happyrelay bindings: expected list or delete\nusage: \(usage)", code: 2)
        }
    }

    /// Prints a command's output and returns its code (usage errors exit 2).
    static func finish(command: String, usage: String, _ body: () throws(SettingsError) -> CommandResult) -> Int32 {
        do {
            let result = try body()
            if !result.lines.isEmpty { print(result.lines.joined(separator: "\n")) }
            return result.exitCode
        } catch {
            return ServeCommand.failed("happyrelay \(command): \(error.message)" + (error.isUsageError ? "\nusage: \(usage)" : ""), code: error.exitCode)
        }
    }
}
