import FoundationEssentials

/// Loads mapping files and compiles them, collecting every problem in every file.
package enum MappingLoader {
    /// What a set of mapping files and folders holds.
    package struct Loaded: Sendable {
        package var routes: [MappingRoute] = []
        package var diagnostics: [MappingDiagnostic] = []
        /// Files that are not mappings (no `"route"`), each with why it was skipped.
        package var skipped: [String] = []
    }

    /// Compiles every `*.json` in a folder (not `schema.json`, not sub-folders): the routes
    /// of the valid files and every problem of the others, including duplicate routes.
    package static func load(directory: String) -> (routes: [MappingRoute], diagnostics: [MappingDiagnostic]) {
        let loaded = load([directory])
        return (loaded.routes, loaded.diagnostics)
    }

    /// Compiles folders (their `*.json` files but `schema.json`, not sub-folders) and single
    /// files. A JSON object without `"route"` in a folder is skipped with a notice (a payload
    /// saved beside the mappings is no broken mapping); named on its own, it is an error.
    package static func load(_ paths: [String]) -> Loaded {
        var loaded = Loaded()
        var seen: [String: String] = [:]
        for path in paths {
            guard let isDirectory = FilePath.isDirectory(path) else {
                loaded.diagnostics.append(MappingDiagnostic(file: path, pointer: "", message: "no such file or folder"))
                continue
            }
            let files: [String]
            if isDirectory {
                do {
                    files = try FileManager.default.contentsOfDirectory(atPath: path)
                        .filter { $0.hasSuffix(".json") && $0 != "schema.json" }.sorted()
                        .map { FilePath.join(path, $0) }
                } catch {
                    loaded.diagnostics.append(MappingDiagnostic(file: path, pointer: "", message: "cannot read the mappings folder"))
                    continue
                }
            } else {
                files = [path]
            }
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else {
                    loaded.diagnostics.append(MappingDiagnostic(file: file, pointer: "", message: "cannot read the file"))
                    continue
                }
                let root: JSONValue
                do {
                    root = try JSONParser(maxDepth: 64, maxBytes: 4 << 20).parse(Array(data))
                } catch {
                    loaded.diagnostics.append(MappingDiagnostic(file: file, pointer: "", message: "invalid JSON: \(error)"))
                    continue
                }
                if let reason = notAMapping(root) {
                    if isDirectory {
                        loaded.skipped.append("\(file): skipped: \(reason)")
                    } else {
                        loaded.diagnostics.append(MappingDiagnostic(file: file, pointer: "/route", message: reason))
                    }
                    continue
                }
                switch compile(file: file, root: root, baseDirectory: FilePath.directory(of: file)) {
                case .success(let route):
                    if let first = seen[route.path] {
                        loaded.diagnostics.append(
                            MappingDiagnostic(file: route.file, pointer: "/route", message: "route \(route.path) is also declared in \(first)"))
                    } else {
                        seen[route.path] = route.file
                        loaded.routes.append(route)
                    }
                case .failure(let problems): loaded.diagnostics += problems.items
                }
            }
        }
        return loaded
    }

    /// Why valid JSON is not a mapping file (an object without `"route"`), or nil.
    static func notAMapping(_ root: JSONValue) -> String? {
        guard case .object(let members) = root else { return nil }
        let keys = Set(members.map(\.key))
        // A mapping that lost its route is still a mapping: the compiler says what is missing.
        if !keys.isDisjoint(with: ["route", "rules", "verify", "$schema"]) { return nil }
        if !keys.isEmpty && keys.isSubset(of: ["headers", "query", "body"]) {
            return "this looks like a request payload ({headers, body}), not a mapping (no \"route\"): keep payloads in a sub-folder such as examples/"
        }
        return "not a mapping file (no \"route\")"
    }

    /// Reads and compiles one file.
    package static func compileFile(_ path: String) -> Result<MappingRoute, MappingDiagnostics> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(MappingDiagnostics([MappingDiagnostic(file: path, pointer: "", message: "cannot read the file")]))
        }
        return compile(file: path, bytes: Array(data), baseDirectory: FilePath.directory(of: path))
    }

    /// Compiles a mapping file's bytes; `baseDirectory` resolves example request files.
    package static func compile(file: String, bytes: [UInt8], baseDirectory: String?) -> Result<MappingRoute, MappingDiagnostics> {
        let root: JSONValue
        do {
            root = try JSONParser(maxDepth: 64, maxBytes: 4 << 20).parse(bytes)
        } catch {
            return .failure(MappingDiagnostics([MappingDiagnostic(file: file, pointer: "", message: "invalid JSON: \(error)")]))
        }
        return compile(file: file, root: root, baseDirectory: baseDirectory)
    }

    /// Compiles a mapping file already parsed.
    static func compile(file: String, root: JSONValue, baseDirectory: String?) -> Result<MappingRoute, MappingDiagnostics> {
        var compiler = MappingCompiler(file: file, baseDirectory: baseDirectory)
        let route = compiler.route(root)
        if let route, compiler.diagnostics.isEmpty { return .success(route) }
        return .failure(MappingDiagnostics(compiler.diagnostics))
    }
}

/// Durations as mapping files write them: `500ms`, `5s`, `10m`, `24h`, `30d`, or seconds as a number.
package enum DurationText {
    /// The longest duration a mapping may name (ten years): anything longer is a mistake, and
    /// the bound keeps every later computation with it free of overflow.
    static let maxMilliseconds = 10 * 365 * 86_400_000.0

    package static func parse(_ value: JSONValue) -> Duration? {
        switch value {
        case .number(let text):
            guard let seconds = Double(text) else { return nil }
            return milliseconds(seconds * 1000)
        case .string(let text):
            let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
            for (unit, factor) in units where text.hasSuffix(unit) {
                let number = text.dropLast(unit.count)
                guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                    let amount = Double(number)
                else { continue }
                return milliseconds((amount * factor * 1000).rounded())
            }
            return nil
        default:
            return nil
        }
    }

    private static func milliseconds(_ value: Double) -> Duration? {
        guard value.isFinite, value >= 0, value <= maxMilliseconds else { return nil }
        return .milliseconds(Int64(value))
    }
}

struct MappingCompiler {
    let file: String
    let baseDirectory: String?
    private(set) var diagnostics: [MappingDiagnostic] = []
    /// Whether the rule being compiled has `resolve` (so `$.binding` is available).
    private var bindingAvailable = false

    init(file: String, baseDirectory: String?) {
        self.file = file
        self.baseDirectory = baseDirectory
    }

    mutating func report(_ pointer: String, _ message: String) {
        diagnostics.append(MappingDiagnostic(file: file, pointer: pointer, message: message))
    }

    // MARK: Shapes

    /// The members of an object, reporting unknown keys (with suggestions) and missing required ones.
    mutating func members(
        _ value: JSONValue, at pointer: String, allowed: [String], required: [String] = [], what: String
    ) -> [String: JSONValue]? {
        guard case .object(let list) = value else {
            report(pointer, "\(what) must be an object, not \(value.typeName)")
            return nil
        }
        var result: [String: JSONValue] = [:]
        for (key, member) in list {
            if result[key] != nil { report(JSONPointer.appending(pointer, key), "\"\(key)\" appears twice") }
            if !allowed.contains(key) {
                report(JSONPointer.appending(pointer, key), "unknown key \"\(key)\" in \(what)\(suggestion(for: key, among: allowed))")
                continue
            }
            result[key] = member
        }
        for key in required where result[key] == nil {
            report(pointer, "\(what) needs \"\(key)\"")
        }
        return result
    }

    mutating func string(_ value: JSONValue, at pointer: String, what: String) -> String? {
        guard case .string(let text) = value else {
            report(pointer, "\(what) must be a string, not \(value.typeName)")
            return nil
        }
        return text
    }

    mutating func bool(_ value: JSONValue, at pointer: String, what: String) -> Bool? {
        guard case .bool(let flag) = value else {
            report(pointer, "\(what) must be true or false, not \(value.typeName)")
            return nil
        }
        return flag
    }

    mutating func duration(_ value: JSONValue, at pointer: String, what: String) -> Duration? {
        guard let duration = DurationText.parse(value) else {
            report(pointer, "\(what) must be a duration such as \"5s\", \"10m\", \"24h\" or \"30d\"")
            return nil
        }
        return duration
    }

    // MARK: Paths

    static let documentRoots = ["body", "headers", "query", "meta", "binding"]

    mutating func path(_ text: String, at pointer: String) -> JSONPath? {
        let path: JSONPath
        do {
            path = try JSONPath(text)
        } catch {
            report(pointer, "\(error.message) at column \(error.column) in \"\(text)\"")
            return nil
        }
        guard let root = path.rootName else { return path }
        if !Self.documentRoots.contains(root) {
            report(
                pointer,
                "\"\(root)\" is not part of the request document (body, headers, query, meta, binding)\(suggestion(for: root, among: Self.documentRoots))"
            )
            return nil
        }
        if root == "binding" && !bindingAvailable {
            report(pointer, "$.binding is only available in a rule with \"resolve\" (in its set and bind)")
            return nil
        }
        if root == "headers", path.segments.count > 1, case .name(let header) = path.segments[1], header != header.lowercased() {
            report(pointer, "header names are lower-case in paths: write $.headers['\(header.lowercased())']")
            return nil
        }
        return path
    }

    static func looksLikePath(_ text: String) -> Bool { text.hasPrefix("$.") || text.hasPrefix("$[") || text == "$" }

    // MARK: Value specs

    mutating func valueSpec(_ value: JSONValue, at pointer: String) -> ValueSpec? {
        switch value {
        case .string(let text):
            if Self.looksLikePath(text) { return path(text, at: pointer).map { ValueSpec(source: .path($0)) } }
            return ValueSpec(source: .constant(text))
        case .number(let digits):
            return ValueSpec(source: .constant(digits))
        case .bool(let flag):
            return ValueSpec(source: .constant(flag ? "true" : "false"))
        case .null:
            report(pointer, "null is not a value (leave the field out, or write \"\")")
            return nil
        case .array:
            report(pointer, "a value is a path, a constant or an object form; to try several, write { \"first\": [ … ] }")
            return nil
        case .tape(let node):
            // Mapping files are parsed into trees; a tape value is read whole.
            return valueSpec(node.value, at: pointer)
        case .object:
            let forms = ["const", "path", "first", "template"]
            guard
                let members = members(
                    value, at: pointer, allowed: forms + ["pipe", "default", "required"], what: "a value spec")
            else { return nil }
            let given = forms.filter { members[$0] != nil }
            guard given.count == 1 else {
                report(
                    pointer,
                    given.isEmpty
                        ? "a value spec needs one of \"path\", \"const\", \"first\" or \"template\""
                        : "a value spec takes only one of \(given.map { "\"\($0)\"" }.joined(separator: ", "))")
                return nil
            }
            let form = given[0]
            let formPointer = JSONPointer.appending(pointer, form)
            var spec: ValueSpec?
            switch form {
            case "const":
                switch members[form]! {
                case .string(let text): spec = ValueSpec(source: .constant(text))
                case .number(let digits): spec = ValueSpec(source: .constant(digits))
                case .bool(let flag): spec = ValueSpec(source: .constant(flag ? "true" : "false"))
                default: report(formPointer, "a constant is a string, a number or a boolean")
                }
            case "path":
                if let text = string(members[form]!, at: formPointer, what: "\"path\"") {
                    if !Self.looksLikePath(text) {
                        report(formPointer, "a path starts with \"$.\" or \"$[\" (got \"\(text)\")")
                    } else if let compiled = path(text, at: formPointer) {
                        spec = ValueSpec(source: .path(compiled))
                    }
                }
            case "first":
                guard case .array(let options) = members[form]!, !options.isEmpty else {
                    report(formPointer, "\"first\" takes a non-empty list of value specs")
                    break
                }
                var compiled: [ValueSpec] = []
                for (index, option) in options.enumerated() {
                    if let item = valueSpec(option, at: JSONPointer.appending(formPointer, index)) { compiled.append(item) }
                }
                if compiled.count == options.count { spec = ValueSpec(source: .first(compiled)) }
            default:
                if let text = string(members[form]!, at: formPointer, what: "\"template\"") {
                    spec = template(text, at: formPointer).map { ValueSpec(source: .template($0)) }
                }
            }
            if let pipeValue = members["pipe"] {
                let steps = pipe(pipeValue, at: JSONPointer.appending(pointer, "pipe"))
                spec?.setPipe(steps ?? [])
                if steps == nil { spec = nil }
            }
            if let defaultValue = members["default"] {
                switch defaultValue {
                case .string(let text): spec?.defaultValue = text
                case .number(let digits): spec?.defaultValue = digits
                default: report(JSONPointer.appending(pointer, "default"), "\"default\" must be text")
                }
            }
            if let required = members["required"], let flag = bool(required, at: JSONPointer.appending(pointer, "required"), what: "\"required\"") {
                spec?.isRequired = flag
            }
            return spec
        }
    }

    mutating func template(_ text: String, at pointer: String) -> [ValueSpec.TemplatePart]? {
        var parts: [ValueSpec.TemplatePart] = []
        var rest = Substring(text)
        var ok = true
        while let open = rest.firstRange(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].firstRange(of: "}}") else {
                report(pointer, "unclosed \"{{\" in the template")
                return nil
            }
            let inner = rest[open.upperBound..<close.lowerBound].trimmingWhitespace()
            if !Self.looksLikePath(inner) {
                report(pointer, "a placeholder holds a path starting with \"$.\" (got \"{{ \(inner) }}\")")
                ok = false
            } else if let compiled = path(inner, at: pointer) {
                parts.append(.path(compiled))
            } else {
                ok = false
            }
            rest = rest[close.upperBound...]
        }
        if rest.contains("}}") {
            report(pointer, "\"}}\" without \"{{\" in the template")
            return nil
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        if !parts.contains(where: { if case .path = $0 { true } else { false } }) && ok {
            report(pointer, "a template without placeholders is a constant: write the text directly")
            return nil
        }
        return ok ? parts : nil
    }

    // MARK: Pipe steps

    mutating func pipe(_ value: JSONValue, at pointer: String) -> [PipeStep]? {
        guard case .array(let items) = value else {
            report(pointer, "\"pipe\" takes a list of steps")
            return nil
        }
        var steps: [PipeStep] = []
        for (index, item) in items.enumerated() {
            if let step = step(item, at: JSONPointer.appending(pointer, index)) { steps.append(step) }
        }
        return steps.count == items.count ? steps : nil
    }

    static let simpleSteps: [String: PipeStep] = [
        "trim": .trim, "lowercase": .lowercase, "uppercase": .uppercase, "nfkc": .nfkc, "digits": .digits,
        "phone_kr": .phoneKR, "tracking": .tracking, "order_number": .orderNumber, "first": .first, "last": .last, "count": .count,
    ]

    mutating func step(_ value: JSONValue, at pointer: String) -> PipeStep? {
        switch value {
        case .string(let name):
            if let step = Self.simpleSteps[name] {
                // NFKC's tables take ~13 ms to build: at load, not on the loop of the first
                // webhook with a full-width character.
                if step == .nfkc || step == .phoneKR { NFKC.prepare() }
                return step
            }
            if PipeStep.names.contains(name) {
                report(pointer, "step \"\(name)\" needs an argument: { \"\(name)\": … }")
            } else {
                report(pointer, "unknown step \"\(name)\"\(suggestion(for: name, among: PipeStep.names))")
            }
            return nil
        case .object(let stepMembers) where stepMembers.count == 1:
            let (name, argument) = stepMembers[0]
            let argumentPointer = JSONPointer.appending(pointer, name)
            switch name {
            case "date":
                return dateStep(argument, at: argumentPointer)
            case "lookup":
                return lookupStep(argument, at: argumentPointer)
            case "truncate":
                guard case .number(let text) = argument, let limit = Int(text), limit > 0 else {
                    report(argumentPointer, "\"truncate\" takes a positive whole number of characters")
                    return nil
                }
                return .truncate(limit)
            case "replace":
                guard let fields = members(argument, at: argumentPointer, allowed: ["from", "to"], required: ["from", "to"], what: "\"replace\""),
                    let from = fields["from"].flatMap({ string($0, at: JSONPointer.appending(argumentPointer, "from"), what: "\"from\"") }),
                    let to = fields["to"].flatMap({ string($0, at: JSONPointer.appending(argumentPointer, "to"), what: "\"to\"") })
                else { return nil }
                if from.isEmpty {
                    report(JSONPointer.appending(argumentPointer, "from"), "\"from\" must not be empty")
                    return nil
                }
                return .replace(from: from, to: to)
            case "regex_replace":
                guard let fields = members(argument, at: argumentPointer, allowed: ["pattern", "to"], required: ["pattern", "to"], what: "\"regex_replace\""),
                    let pattern = fields["pattern"].flatMap({ string($0, at: JSONPointer.appending(argumentPointer, "pattern"), what: "\"pattern\"") }),
                    let to = fields["to"].flatMap({ string($0, at: JSONPointer.appending(argumentPointer, "to"), what: "\"to\"") })
                else { return nil }
                guard let regex = regex(pattern, at: JSONPointer.appending(argumentPointer, "pattern")) else { return nil }
                switch regex.template(to) {
                case .success(let template): return .regexReplace(regex, template: template)
                case .failure(let error):
                    report(JSONPointer.appending(argumentPointer, "to"), error.message)
                    return nil
                }
            case "prefix", "suffix", "join":
                guard let text = string(argument, at: argumentPointer, what: "\"\(name)\"") else { return nil }
                return name == "prefix" ? .prefix(text) : name == "suffix" ? .suffix(text) : .join(text)
            default:
                if Self.simpleSteps[name] != nil {
                    report(pointer, "step \"\(name)\" takes no argument: write \"\(name)\"")
                } else {
                    report(pointer, "unknown step \"\(name)\"\(suggestion(for: name, among: PipeStep.names))")
                }
                return nil
            }
        default:
            report(pointer, "a step is a name (\"trim\") or a one-key object ({ \"truncate\": 20 })")
            return nil
        }
    }

    mutating func regex(_ pattern: String, at pointer: String) -> CompiledRegex? {
        if let problem = RegexSafety.problem(in: pattern) {
            report(pointer, "regular expression \"\(pattern)\" \(problem)")
            return nil
        }
        do {
            return try CompiledRegex(pattern)
        } catch {
            report(pointer, "invalid regular expression \"\(pattern)\": \(error)")
            return nil
        }
    }

    mutating func dateStep(_ argument: JSONValue, at pointer: String) -> PipeStep? {
        var format: String?
        var zoneName = "Asia/Seoul"
        switch argument {
        case .string(let text):
            format = text
        case .object:
            guard let fields = members(argument, at: pointer, allowed: ["format", "tz"], required: ["format"], what: "\"date\"") else {
                return nil
            }
            format = fields["format"].flatMap { string($0, at: JSONPointer.appending(pointer, "format"), what: "\"format\"") }
            if let tz = fields["tz"] {
                guard let name = string(tz, at: JSONPointer.appending(pointer, "tz"), what: "\"tz\"") else { return nil }
                zoneName = name
            }
        default:
            report(pointer, "\"date\" takes a format (\"Y-m-d\") or { \"format\": …, \"tz\": … }")
            return nil
        }
        guard let format else { return nil }
        if let problem = Self.dateFormatProblem(format) {
            report(pointer, problem)
            return nil
        }
        guard let zone = TimeZoneRules(identifier: zoneName) else {
            report(pointer, TimeZoneRules.unknownZoneMessage(zoneName))
            return nil
        }
        return .date(DateStep(format: format, zone: zone))
    }

    /// Why a `date` format would print something other than what its writer meant, or nil.
    static func dateFormatProblem(_ format: String) -> String? {
        let tokens = "the tokens are Y (year, 2026), m (month, 01), d (day, 01), H (hour, 00-23), i (minute, 00), s (second, 00); e.g. \"Y-m-d H:i\""
        guard format.contains(where: { "YmdHis".contains($0) }) else { return "a date format needs at least one token: \(tokens)" }
        var previous: Character?
        for character in format {
            if character.isASCII && character.isLetter && !"YmdHis".contains(character) {
                return "\"\(character)\" is not a date token (\(tokens)); other letters are not allowed, as they would be printed as they are"
            }
            if character == previous && "YmdHis".contains(character) {
                return "\"\(character)\(character)\" prints the \(character) value twice: each token is written once (\(tokens))"
            }
            previous = character
        }
        return nil
    }

    mutating func lookupStep(_ argument: JSONValue, at pointer: String) -> PipeStep? {
        guard case .object(let list) = argument else {
            report(pointer, "\"lookup\" takes a table: { \"M\": \"male\" }")
            return nil
        }
        var tableValue = argument
        var defaultValue: String?
        var ignoreCase = false
        if list.contains(where: { $0.key == "table" }) {
            guard let fields = members(argument, at: pointer, allowed: ["table", "default", "ignore_case"], required: ["table"], what: "\"lookup\"") else {
                return nil
            }
            tableValue = fields["table"]!
            if let value = fields["default"] {
                defaultValue = string(value, at: JSONPointer.appending(pointer, "default"), what: "\"default\"")
            }
            if let value = fields["ignore_case"] {
                ignoreCase = bool(value, at: JSONPointer.appending(pointer, "ignore_case"), what: "\"ignore_case\"") ?? false
            }
        }
        let tablePointer = tableValue == argument ? pointer : JSONPointer.appending(pointer, "table")
        guard case .object(let entries) = tableValue else {
            report(tablePointer, "the lookup table must be an object")
            return nil
        }
        // With ignore_case the keys are kept lower-cased: a lookup lower-cases its value once
        // instead of every key.
        var table: [String: String] = [:]
        for (key, value) in entries {
            let text: String
            switch value {
            case .string(let string): text = string
            case .number(let digits): text = digits
            default:
                report(JSONPointer.appending(tablePointer, key), "lookup values are text")
                continue
            }
            let entryKey = ignoreCase ? key.lowercased() : key
            if ignoreCase, table[entryKey] != nil {
                report(JSONPointer.appending(tablePointer, key), "with \"ignore_case\", \"\(key)\" is the same key as another in the table")
                continue
            }
            table[entryKey] = text
        }
        return .lookup(table: table, defaultValue: defaultValue, ignoreCase: ignoreCase)
    }

    // MARK: Conditions

    mutating func condition(_ value: JSONValue, at pointer: String) -> Condition? {
        guard case .object(let list) = value else {
            report(pointer, "a condition is an object")
            return nil
        }
        let logical = ["all", "any", "not"]
        if let key = list.first(where: { logical.contains($0.key) })?.key {
            guard list.count == 1 else {
                report(pointer, "\"\(key)\" stands alone in its condition object")
                return nil
            }
            let inner = list[0].value
            let innerPointer = JSONPointer.appending(pointer, key)
            if key == "not" { return condition(inner, at: innerPointer).map(Condition.not) }
            guard case .array(let terms) = inner, !terms.isEmpty else {
                report(innerPointer, "\"\(key)\" takes a non-empty list of conditions")
                return nil
            }
            var compiled: [Condition] = []
            for (index, term) in terms.enumerated() {
                if let item = condition(term, at: JSONPointer.appending(innerPointer, index)) { compiled.append(item) }
            }
            guard compiled.count == terms.count else { return nil }
            return key == "all" ? .all(compiled) : .any(compiled)
        }
        let allowed = ["path", "pipe"] + Condition.operatorNames
        guard let members = members(value, at: pointer, allowed: allowed + logical, required: ["path"], what: "a condition")
        else { return nil }
        guard let pathText = members["path"].flatMap({ string($0, at: JSONPointer.appending(pointer, "path"), what: "\"path\"") })
        else { return nil }
        guard Self.looksLikePath(pathText) else {
            report(JSONPointer.appending(pointer, "path"), "a path starts with \"$.\" or \"$[\" (got \"\(pathText)\")")
            return nil
        }
        guard let path = path(pathText, at: JSONPointer.appending(pointer, "path")) else { return nil }
        var steps: [PipeStep] = []
        if let pipeValue = members["pipe"] {
            guard let compiled = pipe(pipeValue, at: JSONPointer.appending(pointer, "pipe")) else { return nil }
            steps = compiled
        }
        let operators = Condition.operatorNames.filter { members[$0] != nil }
        guard operators.count == 1 else {
            report(
                pointer,
                operators.isEmpty
                    ? "a condition needs an operator: \(Condition.operatorNames.joined(separator: ", "))"
                    : "a condition takes one operator, not \(operators.joined(separator: " and "))")
            return nil
        }
        let name = operators[0]
        let operand = members[name]!
        let operandPointer = JSONPointer.appending(pointer, name)
        let op: Condition.Operator
        switch name {
        case "equals":
            op = .equals(operand)
        case "in":
            guard case .array(let items) = operand, !items.isEmpty else {
                report(operandPointer, "\"in\" takes a non-empty list of values")
                return nil
            }
            op = .isIn(items)
        case "exists", "empty":
            guard let flag = bool(operand, at: operandPointer, what: "\"\(name)\"") else { return nil }
            op = name == "exists" ? .exists(flag) : .empty(flag)
        case "matches":
            guard let pattern = string(operand, at: operandPointer, what: "\"matches\""),
                let regex = regex(pattern, at: operandPointer)
            else { return nil }
            op = .matches(regex)
        case "contains", "starts_with":
            guard let text = string(operand, at: operandPointer, what: "\"\(name)\"") else { return nil }
            op = name == "contains" ? .contains(text) : .startsWith(text)
        default:
            guard case .number(let bound) = operand else {
                report(operandPointer, "\"\(name)\" takes a number")
                return nil
            }
            op = name == "gt" ? .greater(bound) : name == "gte" ? .greaterOrEqual(bound) : name == "lt" ? .less(bound) : .lessOrEqual(bound)
        }
        return .test(path: path, pipe: steps, operator: op)
    }

    // MARK: Rules

    mutating func rule(_ value: JSONValue, at pointer: String, index: Int) -> MappingRule? {
        guard let members = members(value, at: pointer, allowed: ["name", "when", "set", "bind", "resolve", "ignore_without"], what: "a rule") else {
            return nil
        }
        let before = diagnostics.count
        var name = "rules[\(index)]"
        if let value = members["name"], let text = string(value, at: JSONPointer.appending(pointer, "name"), what: "\"name\"") {
            name = text
        }
        if members["set"] == nil && members["bind"] == nil {
            report(pointer, "a rule needs \"set\" (the call to make), \"bind\", or both")
        }
        bindingAvailable = false
        var when: Condition?
        if let value = members["when"] { when = condition(value, at: JSONPointer.appending(pointer, "when")) }
        var resolve: [(kind: String, value: ValueSpec)] = []
        if let value = members["resolve"] {
            let resolvePointer = JSONPointer.appending(pointer, "resolve")
            if case .array(let keys) = value, !keys.isEmpty {
                for (offset, key) in keys.enumerated() {
                    let keyPointer = JSONPointer.appending(resolvePointer, offset)
                    guard case .object(let list) = key, list.count == 1 else {
                        report(keyPointer, "each resolve entry is one key: { \"order_number\": \"$.body.order_number\" }")
                        continue
                    }
                    if let kind = bindingKind(list[0].key, at: JSONPointer.appending(keyPointer, list[0].key)),
                        let spec = valueSpec(list[0].value, at: JSONPointer.appending(keyPointer, list[0].key))
                    {
                        resolve.append((kind, spec))
                    }
                }
            } else {
                report(resolvePointer, "\"resolve\" takes a non-empty list of keys, tried in order")
            }
            bindingAvailable = true
        }
        var fields: [(name: String, value: ValueSpec)] = []
        if let value = members["set"] {
            fields = set(value, at: JSONPointer.appending(pointer, "set"))
        }
        var bind: BindSpec?
        if let value = members["bind"] {
            bind = bindSpec(value, at: JSONPointer.appending(pointer, "bind"))
        }
        bindingAvailable = false
        var ignoreWithout: (fields: [String], reason: String)?
        if let value = members["ignore_without"] {
            ignoreWithout = ignoreWithoutSpec(value, at: JSONPointer.appending(pointer, "ignore_without"), fields: fields)
        }
        guard diagnostics.count == before else { return nil }
        return MappingRule(name: name, condition: when, fields: fields, bind: bind, resolve: resolve, ignoreWithout: ignoreWithout)
    }

    /// `"ignore_without": ["uuid", "room_id"]` or `{ "fields": [...], "reason": "..." }`.
    mutating func ignoreWithoutSpec(
        _ value: JSONValue, at pointer: String, fields: [(name: String, value: ValueSpec)]
    ) -> (fields: [String], reason: String)? {
        var listValue = value
        var reason: String?
        if case .object = value {
            // Without "fields", `members` has reported it: nothing more to read.
            guard let members = members(value, at: pointer, allowed: ["fields", "reason"], required: ["fields"], what: "\"ignore_without\""),
                let list = members["fields"]
            else {
                return nil
            }
            listValue = list
            if let text = members["reason"] {
                reason = string(text, at: JSONPointer.appending(pointer, "reason"), what: "\"reason\"")
            }
        }
        let listPointer = listValue == value ? pointer : JSONPointer.appending(pointer, "fields")
        guard case .array(let items) = listValue, !items.isEmpty else {
            report(listPointer, "\"ignore_without\" takes a non-empty list of fields of \"set\" (or { \"fields\": [...], \"reason\": \"...\" })")
            return nil
        }
        var names: [String] = []
        for (index, item) in items.enumerated() {
            let itemPointer = JSONPointer.appending(listPointer, index)
            guard case .string(let name) = item else {
                report(itemPointer, "a field name in quotes")
                continue
            }
            guard fields.contains(where: { $0.name == name }) else {
                report(itemPointer, "\"\(name)\" is not set by this rule\(suggestion(for: name, among: fields.map(\.name)))")
                continue
            }
            names.append(name)
        }
        guard names.count == items.count else { return nil }
        return (names, reason ?? "no \(names.joined(separator: " or ")) for this event")
    }

    mutating func bindingKind(_ kind: String, at pointer: String) -> String? {
        guard !kind.isEmpty, kind.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            report(pointer, "a binding key kind is lower-case letters, digits and _ (e.g. order_number, phone)")
            return nil
        }
        return kind
    }

    mutating func set(_ value: JSONValue, at pointer: String) -> [(name: String, value: ValueSpec)] {
        guard case .object(let list) = value else {
            report(pointer, "\"set\" must be an object of set_user_info fields")
            return []
        }
        var fields: [(name: String, value: ValueSpec)] = []
        for (field, specValue) in list {
            let fieldPointer = JSONPointer.appending(pointer, field)
            if field == "token" {
                report(fieldPointer, "\"token\" cannot be set: the relay injects it from its credential at send time")
                continue
            }
            guard UpstreamContract.fieldSet.contains(field) else {
                report(
                    fieldPointer,
                    "\"\(field)\" is not a set_user_info field\(suggestion(for: field, among: UpstreamContract.fields))")
                continue
            }
            if fields.contains(where: { $0.name == field }) {
                report(fieldPointer, "\"\(field)\" is set twice")
                continue
            }
            guard let spec = valueSpec(specValue, at: fieldPointer) else { continue }
            if let constant = spec.constantValue, let problem = UpstreamContract.problem(field: field, value: constant) {
                report(fieldPointer, "\(field): \(problem)")
                continue
            }
            // Texts the file itself supplies (a default, a lookup's results) are checked now,
            // not when the first webhook that needs them turns into a dead letter.
            var written: [String] = spec.defaultValue.map { [$0] } ?? []
            if case .lookup(let table, let lookupDefault, _)? = spec.pipe.last {
                written += table.values.sorted() + (lookupDefault.map { [$0] } ?? [])
            }
            if let bad = written.first(where: { UpstreamContract.problem(field: field, value: $0) != nil }),
                let problem = UpstreamContract.problem(field: field, value: bad)
            {
                report(fieldPointer, "\(field): \"\(bad)\" \(problem)")
                continue
            }
            fields.append((field, spec))
        }
        for required in ["uuid", "room_id"] where !fields.contains(where: { $0.name == required }) && !list.contains(where: { $0.key == required }) {
            report(pointer, "\"set\" needs \"\(required)\" (HappyTalk requires uuid and room_id)")
        }
        return fields
    }

    mutating func bindSpec(_ value: JSONValue, at pointer: String) -> BindSpec? {
        guard let members = members(value, at: pointer, allowed: ["keys", "uuid", "room_id", "ttl", "replace"], required: ["keys", "uuid", "room_id"], what: "\"bind\"") else {
            return nil
        }
        var keys: [(kind: String, value: ValueSpec)] = []
        if let keysValue = members["keys"] {
            let keysPointer = JSONPointer.appending(pointer, "keys")
            if case .object(let list) = keysValue, !list.isEmpty {
                for (kind, spec) in list {
                    if let kind = bindingKind(kind, at: JSONPointer.appending(keysPointer, kind)),
                        let compiled = valueSpec(spec, at: JSONPointer.appending(keysPointer, kind))
                    {
                        keys.append((kind, compiled))
                    }
                }
            } else {
                report(keysPointer, "\"keys\" is a non-empty object: { \"order_number\": \"$.body.order_number\" }")
            }
        }
        let uuid = members["uuid"].flatMap { valueSpec($0, at: JSONPointer.appending(pointer, "uuid")) }
        let room = members["room_id"].flatMap { valueSpec($0, at: JSONPointer.appending(pointer, "room_id")) }
        var ttl = Duration.seconds(30 * 86400)
        if let value = members["ttl"], let parsed = duration(value, at: JSONPointer.appending(pointer, "ttl"), what: "\"ttl\"") {
            ttl = parsed
        }
        var mayReplace = false
        if let value = members["replace"] {
            if case .bool(let flag) = value { mayReplace = flag } else {
                report(JSONPointer.appending(pointer, "replace"), "\"replace\" is true or false")
            }
        }
        guard let uuid, let room, !keys.isEmpty else { return nil }
        return BindSpec(keys: keys, uuid: uuid, roomID: room, ttl: ttl, mayReplace: mayReplace)
    }

    // MARK: Verification

    mutating func verify(_ value: JSONValue, at pointer: String) -> VerifySpec? {
        let keys = ["scheme", "secret", "secrets", "header", "algorithm", "encoding", "prefix", "param", "tolerance", "allow_ips"]
        guard let members = members(value, at: pointer, allowed: keys, required: ["scheme"], what: "\"verify\"") else { return nil }
        guard let schemeName = members["scheme"].flatMap({ string($0, at: JSONPointer.appending(pointer, "scheme"), what: "\"scheme\"") })
        else { return nil }
        guard let scheme = VerifySpec.Scheme(rawValue: schemeName) else {
            let names = VerifySpec.Scheme.allCases.map(\.rawValue)
            report(JSONPointer.appending(pointer, "scheme"), "unknown scheme \"\(schemeName)\"\(suggestion(for: schemeName, among: names)); the schemes are \(names.joined(separator: ", "))")
            return nil
        }
        var spec = VerifySpec(scheme: scheme)
        var allowed: Set<String> = ["scheme", "allow_ips"]
        switch scheme {
        case .none: break
        case .shopify, .woocommerce, .github, .bearer: allowed.formUnion(["secret", "secrets"])
        case .stripe, .standardWebhooks: allowed.formUnion(["secret", "secrets", "tolerance"])
        case .hmac: allowed.formUnion(["secret", "secrets", "header", "algorithm", "encoding", "prefix"])
        case .header: allowed.formUnion(["secret", "secrets", "header"])
        case .query: allowed.formUnion(["secret", "secrets", "param"])
        }
        for key in members.keys.sorted() where !allowed.contains(key) {
            report(JSONPointer.appending(pointer, key), "\"\(key)\" does not apply to the \(scheme.rawValue) scheme")
        }
        if scheme != .none {
            switch (members["secret"], members["secrets"]) {
            case (nil, nil):
                report(pointer, "the \(scheme.rawValue) scheme needs \"secret\": { \"env\": \"NAME\" } or { \"file\": \"/path\" }")
            case (.some, .some):
                report(pointer, "write \"secret\" or \"secrets\", not both")
            case (let single?, nil):
                if let reference = secretReference(single, at: JSONPointer.appending(pointer, "secret")) { spec.secrets = [reference] }
            case (nil, let list?):
                let listPointer = JSONPointer.appending(pointer, "secrets")
                if case .array(let items) = list, !items.isEmpty {
                    spec.secrets = items.enumerated().compactMap { secretReference($1, at: JSONPointer.appending(listPointer, $0)) }
                } else {
                    report(listPointer, "\"secrets\" takes a non-empty list of secret references")
                }
            }
        }
        if scheme == .hmac || scheme == .header {
            if let header = members["header"].flatMap({ string($0, at: JSONPointer.appending(pointer, "header"), what: "\"header\"") }) {
                spec.header = header.lowercased()
            } else if members["header"] == nil {
                report(pointer, "the \(scheme.rawValue) scheme needs \"header\"")
            }
        }
        if scheme == .query {
            if let parameter = members["param"].flatMap({ string($0, at: JSONPointer.appending(pointer, "param"), what: "\"param\"") }) {
                spec.parameter = parameter
            } else if members["param"] == nil {
                report(pointer, "the query scheme needs \"param\"")
            }
        }
        if let value = members["algorithm"], let name = string(value, at: JSONPointer.appending(pointer, "algorithm"), what: "\"algorithm\"") {
            if let algorithm = VerifySpec.Algorithm(rawValue: name) { spec.algorithm = algorithm } else {
                report(JSONPointer.appending(pointer, "algorithm"), "algorithm is sha256, sha1 or sha512\(suggestion(for: name, among: ["sha256", "sha1", "sha512"]))")
            }
        }
        if let value = members["encoding"], let name = string(value, at: JSONPointer.appending(pointer, "encoding"), what: "\"encoding\"") {
            if let encoding = VerifySpec.Encoding(rawValue: name) { spec.encoding = encoding } else {
                report(JSONPointer.appending(pointer, "encoding"), "encoding is hex, base64 or base64url\(suggestion(for: name, among: ["hex", "base64", "base64url"]))")
            }
        }
        if let value = members["prefix"], let text = string(value, at: JSONPointer.appending(pointer, "prefix"), what: "\"prefix\"") {
            spec.prefix = text
        }
        if let value = members["tolerance"], let tolerance = duration(value, at: JSONPointer.appending(pointer, "tolerance"), what: "\"tolerance\"") {
            spec.tolerance = tolerance
        }
        if let value = members["allow_ips"] {
            spec.allowIPs = allowIPs(value, at: JSONPointer.appending(pointer, "allow_ips"))
        }
        return spec
    }

    mutating func allowIPs(_ value: JSONValue, at pointer: String) -> [IPRange] {
        guard case .array(let items) = value, !items.isEmpty else {
            report(pointer, "\"allow_ips\" takes a non-empty list of addresses or CIDR blocks")
            return []
        }
        var ranges: [IPRange] = []
        for (index, item) in items.enumerated() {
            let itemPointer = JSONPointer.appending(pointer, index)
            guard let text = string(item, at: itemPointer, what: "an address") else { continue }
            guard let range = IPRange(text) else {
                report(itemPointer, "\"\(text)\" is not an IPv4/IPv6 address or CIDR block (e.g. 203.0.113.0/24)")
                continue
            }
            ranges.append(range)
        }
        return ranges
    }

    mutating func secretReference(_ value: JSONValue, at pointer: String) -> SecretReference? {
        guard case .object = value else {
            // Never echo the value: it may be the secret itself.
            report(pointer, "secrets are references, never literals: write { \"env\": \"NAME\" } or { \"file\": \"/run/secrets/name\" }")
            return nil
        }
        guard let members = members(value, at: pointer, allowed: ["env", "file"], what: "a secret reference") else { return nil }
        switch (members["env"], members["file"]) {
        case (let name?, nil):
            guard let text = string(name, at: JSONPointer.appending(pointer, "env"), what: "\"env\""), !text.isEmpty,
                text.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
            else {
                report(JSONPointer.appending(pointer, "env"), "an environment variable name is letters, digits and _")
                return nil
            }
            return .environment(text)
        case (nil, let path?):
            guard let text = string(path, at: JSONPointer.appending(pointer, "file"), what: "\"file\""), text.hasPrefix("/") else {
                report(JSONPointer.appending(pointer, "file"), "a secret file is an absolute path")
                return nil
            }
            return .file(text)
        default:
            report(pointer, "a secret reference has exactly one of \"env\" or \"file\"")
            return nil
        }
    }

    // MARK: Route

    static let routeKeys = [
        "$schema", "route", "description", "verify", "accept", "delivery", "timeout", "dedupe", "credential", "mode", "rules",
        "examples", "allow_ips",
    ]

    mutating func route(_ root: JSONValue) -> MappingRoute? {
        guard let members = members(root, at: "", allowed: Self.routeKeys, required: ["route", "verify", "rules"], what: "a mapping file")
        else { return nil }
        var path = "/"
        if let value = members["route"], let text = string(value, at: "/route", what: "\"route\"") {
            if !text.hasPrefix("/") || text.contains("?") || text.contains("#") || text.contains(" ") {
                report("/route", "a route is a path starting with \"/\", without query or spaces")
            } else if ["/healthz", "/readyz", "/metrics"].contains(text) || text.hasPrefix("/admin") {
                report("/route", "\(text) is reserved for the relay's own endpoints")
            }
            path = text
        }
        var description: String?
        if let value = members["description"] { description = string(value, at: "/description", what: "\"description\"") }
        var verify = members["verify"].flatMap { self.verify($0, at: "/verify") }
        if let value = members["allow_ips"] {
            if verify?.allowIPs.isEmpty == false {
                report("/allow_ips", "\"allow_ips\" is given twice (here and in verify)")
            }
            verify?.allowIPs = allowIPs(value, at: "/allow_ips")
        }
        var acceptsForm = false
        if let value = members["accept"] {
            if case .array(let items) = value, items.contains(.string("json")),
                items.allSatisfy({ $0 == .string("json") || $0 == .string("form") })
            {
                acceptsForm = items.contains(.string("form"))
            } else {
                report("/accept", "\"accept\" is [\"json\"] or [\"json\", \"form\"]")
            }
        }
        var delivery = MappingRoute.Delivery.async
        if let value = members["delivery"], let text = string(value, at: "/delivery", what: "\"delivery\"") {
            if let parsed = MappingRoute.Delivery(rawValue: text) { delivery = parsed } else {
                report("/delivery", "\"delivery\" is \"async\" or \"sync\"\(suggestion(for: text, among: ["async", "sync"]))")
            }
        }
        var timeout = Duration.seconds(5)
        if let value = members["timeout"] {
            if delivery != .sync && members["delivery"] != nil {
                report("/timeout", "\"timeout\" applies to sync delivery only")
            } else if delivery != .sync {
                report("/timeout", "\"timeout\" applies to sync delivery only (add \"delivery\": \"sync\")")
            }
            if let parsed = duration(value, at: "/timeout", what: "\"timeout\"") { timeout = parsed }
        }
        var dedupe: (key: ValueSpec, window: Duration)?
        if let value = members["dedupe"], let fields = self.members(value, at: "/dedupe", allowed: ["key", "window"], required: ["key"], what: "\"dedupe\"") {
            let window = fields["window"].flatMap { duration($0, at: "/dedupe/window", what: "\"window\"") } ?? .seconds(86400)
            if let key = fields["key"].flatMap({ valueSpec($0, at: "/dedupe/key") }) { dedupe = (key, window) }
        }
        var credential: String?
        if let value = members["credential"], let text = string(value, at: "/credential", what: "\"credential\"") {
            if text.isEmpty || !text.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) {
                report("/credential", "a credential name is letters, digits and _ (it selects HAPPYTALK_TOKEN_<NAME>)")
            } else {
                credential = text
            }
        }
        var mode = MappingRoute.Mode.first
        if let value = members["mode"], let text = string(value, at: "/mode", what: "\"mode\"") {
            if let parsed = MappingRoute.Mode(rawValue: text) { mode = parsed } else {
                report("/mode", "\"mode\" is \"first\" or \"all\"\(suggestion(for: text, among: ["first", "all"]))")
            }
        }
        var rules: [MappingRule] = []
        if let value = members["rules"] {
            if case .array(let items) = value, !items.isEmpty {
                for (index, item) in items.enumerated() {
                    if let rule = rule(item, at: "/rules/\(index)", index: index) { rules.append(rule) }
                }
            } else {
                report("/rules", "\"rules\" takes a non-empty list of rules")
            }
        }
        var examples: [MappingExample] = []
        if let value = members["examples"] {
            if case .array(let items) = value {
                for (index, item) in items.enumerated() {
                    if let example = example(item, at: "/examples/\(index)", index: index) { examples.append(example) }
                }
            } else {
                report("/examples", "\"examples\" takes a list")
            }
        }
        guard let verify else { return nil }
        var route = MappingRoute(
            file: file, path: path, description: description, verify: verify, acceptsForm: acceptsForm, delivery: delivery,
            timeout: timeout, dedupe: dedupe, credential: credential, mode: mode, rules: rules, examples: examples)
        route.readHeaderNames = route.makeReadHeaderNames()
        return route
    }

    // MARK: Examples

    mutating func example(_ value: JSONValue, at pointer: String, index: Int) -> MappingExample? {
        guard let members = members(value, at: pointer, allowed: ["name", "request", "expect", "bindings"], required: ["request", "expect"], what: "an example") else {
            return nil
        }
        let name = members["name"].flatMap { string($0, at: JSONPointer.appending(pointer, "name"), what: "\"name\"") } ?? "examples[\(index)]"
        guard let requestValue = members["request"], let request = exampleRequest(requestValue, at: JSONPointer.appending(pointer, "request")),
            let expectValue = members["expect"], let expectation = expectation(expectValue, at: JSONPointer.appending(pointer, "expect"))
        else { return nil }
        var seeded: [(kind: String, value: String, uuid: String, roomID: String)] = []
        if let value = members["bindings"] {
            let bindingsPointer = JSONPointer.appending(pointer, "bindings")
            guard case .array(let items) = value else {
                report(bindingsPointer, "\"bindings\" takes a list")
                return nil
            }
            for (offset, item) in items.enumerated() {
                let itemPointer = JSONPointer.appending(bindingsPointer, offset)
                guard let fields = self.members(item, at: itemPointer, allowed: ["key", "uuid", "room_id"], required: ["key", "uuid", "room_id"], what: "a seeded binding"),
                    case .object(let key)? = fields["key"], key.count == 1, let keyValue = key[0].value.stringValue ?? (key[0].value == .null ? nil : key[0].value.text),
                    let uuid = fields["uuid"]?.stringValue, let room = fields["room_id"]?.stringValue
                else {
                    if diagnostics.last?.pointer.hasPrefix(itemPointer) != true {
                        report(itemPointer, "a seeded binding is { \"key\": { \"order_number\": \"1043\" }, \"uuid\": \"…\", \"room_id\": \"…\" }")
                    }
                    continue
                }
                seeded.append((key[0].key, keyValue, uuid, room))
            }
        }
        return MappingExample(
            name: name, pointer: pointer, headers: request.headers, query: request.query, body: request.body,
            expectation: expectation, seededBindings: seeded)
    }

    mutating func exampleRequest(_ value: JSONValue, at pointer: String) -> (headers: [(name: String, value: String)], query: [(name: String, value: String)], body: JSONValue)? {
        var requestValue = value
        var requestPointer = pointer
        if case .string(let relative) = value {
            let path = relative.hasPrefix("/") ? relative : FilePath.join(baseDirectory ?? ".", relative)
            guard let data = FileManager.default.contents(atPath: path) else {
                report(pointer, "cannot read the example request file \(relative)")
                return nil
            }
            do {
                requestValue = try JSONParser().parse(Array(data))
            } catch {
                report(pointer, "\(relative) is not valid JSON: \(error)")
                return nil
            }
            requestPointer = pointer + " (\(relative))"
        }
        guard let fields = members(requestValue, at: requestPointer, allowed: ["headers", "query", "body"], what: "an example request") else {
            return nil
        }
        func pairs(_ key: String) -> [(name: String, value: String)]? {
            guard let value = fields[key] else { return [] }
            guard case .object(let list) = value else {
                report(JSONPointer.appending(requestPointer, key), "\"\(key)\" is an object of strings")
                return nil
            }
            return list.map { ($0.key, $0.value.text) }
        }
        guard let headers = pairs("headers"), let query = pairs("query") else { return nil }
        return (headers, query, fields["body"] ?? .object([]))
    }

    mutating func expectation(_ value: JSONValue, at pointer: String) -> MappingExample.Expectation? {
        guard let members = members(value, at: pointer, allowed: ["call", "calls", "partial", "ignored", "bound", "fails"], what: "\"expect\"") else {
            return nil
        }
        let kinds = ["call", "calls", "ignored", "bound", "fails"].filter { members[$0] != nil }
        guard kinds.count == 1 else {
            report(pointer, "\"expect\" holds one of \"call\", \"calls\", \"ignored\", \"bound\" or \"fails\"")
            return nil
        }
        let partial = members["partial"].flatMap { bool($0, at: JSONPointer.appending(pointer, "partial"), what: "\"partial\"") } ?? false
        func fields(_ value: JSONValue, at pointer: String) -> [(name: String, value: String)]? {
            guard case .object(let list) = value else {
                report(pointer, "an expected call is an object of fields")
                return nil
            }
            var result: [(name: String, value: String)] = []
            for (name, field) in list {
                if name == "token" {
                    report(JSONPointer.appending(pointer, name), "\"token\" is never listed in an example")
                    return nil
                }
                guard UpstreamContract.fieldSet.contains(name) else {
                    report(JSONPointer.appending(pointer, name), "\"\(name)\" is not a set_user_info field\(suggestion(for: name, among: UpstreamContract.fields))")
                    return nil
                }
                guard case .string(let text) = field else {
                    report(JSONPointer.appending(pointer, name), "expected values are strings (the call sends strings)")
                    return nil
                }
                result.append((name, text))
            }
            return result
        }
        switch kinds[0] {
        case "call":
            return fields(members["call"]!, at: JSONPointer.appending(pointer, "call")).map { .call($0, partial: partial) }
        case "calls":
            guard case .array(let items) = members["calls"]!, !items.isEmpty else {
                report(JSONPointer.appending(pointer, "calls"), "\"calls\" takes a non-empty list of calls")
                return nil
            }
            var calls: [[(name: String, value: String)]] = []
            for (index, item) in items.enumerated() {
                guard let call = fields(item, at: JSONPointer.appending(JSONPointer.appending(pointer, "calls"), index)) else { return nil }
                calls.append(call)
            }
            return .calls(calls, partial: partial)
        case "ignored":
            switch members["ignored"] {
            case .bool(true)?: return .ignored(reason: nil)
            case .string(let reason)?: return .ignored(reason: reason)
            default:
                report(JSONPointer.appending(pointer, "ignored"), "write \"ignored\": true, or the reason (\"ignored\": \"no binding\")")
                return nil
            }
        case "bound":
            guard members["bound"] == .bool(true) else {
                report(JSONPointer.appending(pointer, "bound"), "write \"bound\": true")
                return nil
            }
            return .bound
        default:
            guard let field = string(members["fails"]!, at: JSONPointer.appending(pointer, "fails"), what: "\"fails\"") else { return nil }
            return .fails(field)
        }
    }
}
