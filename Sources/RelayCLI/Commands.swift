import FoundationEssentials
import Glibc
import RelayCore
import RelayHTTP

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
          healthcheck             exit 0 when the relay the settings describe answers /healthz (for containers)
          deliveries ACTION       the async delivery queue: list, show, retry, delete, replay
          bindings ACTION         the bindings that link order numbers, phones, … to chat rooms: list, delete
          store copy              copy a SQLite data directory's queue, dedupe keys and bindings into PostgreSQL

        Run `happyrelay help <command>` or `happyrelay <command> --help` (-h) for a command's
        options; `happyrelay --version` prints the version.
        """

    /// One command's help: its usage line (options in brackets are optional; their defaults
    /// are in the option list), what it does, its options.
    struct Help {
        let usage: String
        let summary: String
        let options: [CommandLineOption]

        var text: String {
            "usage: \(usage)\n\n\(summary)\n\noptions:\n\(RelayCLI.helpText(for: options))"
        }
    }

    /// The help of every command and action, by name (`deliveries list`).
    static let helps: [String: Help] = [
        "serve": Help(usage: "happyrelay serve [options]", summary: "Runs the relay. SIGHUP reloads the mapping files (and the TLS certificate); SIGTERM or SIGINT stops it after in-flight requests and sends finish.", options: ServeSettings.options),
        "check": Help(
            usage: "happyrelay check [--mappings DIR] [DIR|FILE]...",
            summary: "Validates the mapping files of the folders and files named (default: the mappings folder) and runs their examples; JSON files without \"route\" in a folder are skipped with a notice; unset secrets and paths no example reaches are warnings. Exit 0 when all are valid, 1 otherwise.",
            options: MappingCommands.checkOptions),
        "map": Help(
            usage: "happyrelay map --route PATH [--header 'Name: value']... [--query 'k=v']... [--mappings DIR] [--data-dir DIR | --database-url URL | --bind KIND=VALUE:UUID/ROOM...] [--explain] PAYLOAD",
            summary: "Prints the set_user_info body the route's mapping makes of PAYLOAD (a file, or - for standard input; an example file {headers, query, body} is taken apart), token shown as \"***\"; it does not verify signatures and sends nothing. Exit 0 when a call would be made, 3 when ignored, 1 on error.",
            options: MappingCommands.mapOptions),
        "healthcheck": Help(
            usage: "happyrelay healthcheck [serve's options]",
            summary: "Asks the relay that these settings (--listen, HAPPYRELAY_LISTEN, …) describe for GET /healthz on its loopback address; exit 0 when it answers 200, 1 otherwise. With --tls-cert it checks that the port accepts connections.",
            options: ServeSettings.options),
        "mock-upstream": Help(
            usage: "happyrelay mock-upstream [options]", summary: "A local HappyTalk set_user_info endpoint (\(HappyTalkUpstream.path)).",
            options: MockUpstream.options),
        "deliveries list": Help(
            usage: "happyrelay deliveries list [--state STATE] [--route PATH] [--room ROOM_ID] [--since TIME] [--until TIME] [--limit N [--after CURSOR]] [--json] [--data-dir DIR | --database-url URL]",
            summary: "Lists deliveries, oldest first: id, state, route, attempts, last reason.", options: DeliveryCommands.listOptions),
        "deliveries show": Help(
            usage: "happyrelay deliveries show ID [--json] [--data-dir DIR | --database-url URL]",
            summary: "Shows one delivery: the request as stored (secrets are never stored), the call without the token, every attempt with HappyTalk's code and message, and the next attempt.",
            options: DeliveryCommands.showOptions),
        "deliveries retry": Help(
            usage: "happyrelay deliveries retry ID [--data-dir DIR | --database-url URL]",
            summary: "Makes a pending delivery due now (with its room's earlier ones, which go first); a running relay sends it within a second.",
            options: DeliveryCommands.retryOptions),
        "deliveries delete": Help(
            usage: "happyrelay deliveries delete (ID | --dead-older-than DURATION) [--data-dir DIR | --database-url URL]",
            summary: "Deletes one delivery with its attempts, or every dead delivery older than DURATION. The relay deletes dead deliveries after --dead-retention itself.",
            options: DeliveryCommands.deleteOptions),
        "deliveries replay": Help(
            usage: "happyrelay deliveries replay (ID | --all-dead) [--as-stored] [--data-dir DIR | --database-url URL] [--mappings DIR]",
            summary: "Puts dead deliveries back in the queue, re-mapped with the mapping files the relay serving the data directory loaded (or --mappings), or with --as-stored sent again as they were; a running relay picks them up within a second.",
            options: DeliveryCommands.replayOptions),
        "bindings list": Help(
            usage: "happyrelay bindings list [--key KIND=VALUE] [--json] [--data-dir DIR | --database-url URL]",
            summary: "Lists the unexpired bindings: key, uuid, room_id, created, expires.", options: BindingCommands.listOptions),
        "bindings delete": Help(
            usage: "happyrelay bindings delete KIND=VALUE [--data-dir DIR | --database-url URL]", summary: "Deletes one binding; exit 1 when there was none.",
            options: BindingCommands.deleteOptions),
        "store copy": Help(
            usage: "happyrelay store copy --from-data-dir DIR --to URL",
            summary: "Copies the pending and dead deliveries (with their attempts), the unexpired dedupe keys and the bindings of a SQLite data directory into the PostgreSQL database several relays share, in one transaction; says what it copied. Rows already there are left as they are, so running it again copies nothing twice.",
            options: StoreCommands.copyOptions),
    ]

    /// The actions of the commands that have them.
    static let actions = ["deliveries": ["list", "show", "retry", "delete", "replay"], "bindings": ["list", "delete"], "store": ["copy"]]

    /// The help for `command` (and `action`), or the list of actions of a command that has them.
    static func helpText(command: String, action: String?) -> String? {
        if let action, let help = helps["\(command) \(action)"] { return help.text }
        if let help = helps[command] { return help.text }
        guard let names = actions[command] else { return nil }
        return names.compactMap { helps["\(command) \($0)"].map { "usage: \($0.usage)" } }.joined(separator: "\n")
            + "\n\nRun `happyrelay help \(command) ACTION` for an action's options."
    }

    /// Runs the command in `arguments` (without the program name); returns the exit code.
    package static func run(
        _ arguments: [String], environment: [String: String],
        standardInput: @Sendable () -> [UInt8] = { FileBytes.read(fileDescriptor: STDIN_FILENO) ?? [] }
    ) async -> Int32 {
        var arguments = arguments
        if environment["HAPPYRELAY_EXIT_WITH_PARENT"] == "1" { ParentProcess.exitWithIt() }
        guard !arguments.isEmpty else {
            return ServeCommand.failed(usage, code: 2)
        }
        let command = arguments.removeFirst()
        switch command {
        case "--help", "-h":
            print(usage)
            return 0
        case "help":
            guard let name = arguments.first else {
                print(usage)
                return 0
            }
            guard let text = helpText(command: name, action: arguments.dropFirst().first) else {
                return ServeCommand.failed("happyrelay help: unknown command \"\(name)\"\n\(usage)", code: 2)
            }
            print(text)
            return 0
        case "--version":
            print("happyrelay \(version)")
            return 0
        default:
            break
        }
        let action = actions[command] != nil ? arguments.first.flatMap { actions[command]!.contains($0) ? $0 : nil } : nil
        if arguments.contains("--help") || arguments.contains("-h"), let text = helpText(command: command, action: action) {
            print(text)
            return 0
        }
        switch command {
        case "serve":
            return await ServeCommand.run(arguments, environment: environment, version: version)
        case "mock-upstream":
            return await ServeCommand.mockUpstream(arguments)
        case "healthcheck":
            return HealthCheck.run(arguments, environment: environment)
        case "check":
            return finish(command: "check", usage: helps["check"]!.usage) { () throws(SettingsError) in
                try MappingCommands.check(arguments, environment: environment)
            }
        case "map":
            return finish(command: "map", usage: "happyrelay map --route PATH [options] PAYLOAD") { () throws(SettingsError) in
                try MappingCommands.map(arguments, environment: environment, standardInput: standardInput)
            }
        case "deliveries", "bindings", "store":
            guard let action else {
                return ServeCommand.failed(
                    "happyrelay \(command): expected \(actions[command]!.joined(separator: ", "))\n" + helpText(command: command, action: nil)!, code: 2)
            }
            let rest = Array(arguments.dropFirst())
            let usage = helps["\(command) \(action)"]!.usage
            return finish(command: "\(command) \(action)", usage: usage) { () throws(SettingsError) in
                switch (command, action) {
                case ("deliveries", "list"):
                    return try DeliveryCommands.list(rest, environment: environment) { _ = ServeCommand.failed($0, code: 0) }
                case ("deliveries", "show"): return try DeliveryCommands.show(rest, environment: environment)
                case ("deliveries", "retry"): return try DeliveryCommands.retry(rest, environment: environment)
                case ("deliveries", "delete"): return try DeliveryCommands.delete(rest, environment: environment)
                case ("deliveries", "replay"): return try DeliveryCommands.replay(rest, environment: environment)
                case ("bindings", "list"): return try BindingCommands.list(rest, environment: environment)
                case ("store", _): return try StoreCommands.copy(rest, environment: environment)
                default: return try BindingCommands.delete(rest, environment: environment)
                }
            }
        default:
            return ServeCommand.failed("happyrelay: unknown command \"\(command)\"\n\(usage)", code: 2)
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
