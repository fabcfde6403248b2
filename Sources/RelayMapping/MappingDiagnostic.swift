import FoundationEssentials

/// One problem in a mapping file: `FILE: JSON-POINTER: message`.
package struct MappingDiagnostic: Sendable, Equatable, CustomStringConvertible {
    package var file: String
    /// RFC 6901 pointer into the file (`/rules/0/set/order_no`); empty for the whole file.
    package var pointer: String
    package var message: String

    package init(file: String, pointer: String, message: String) {
        self.file = file
        self.pointer = pointer
        self.message = message
    }

    package var description: String { "\(file): \(pointer.isEmpty ? "/" : pointer): \(message)" }
}

/// Every problem found while loading mappings.
package struct MappingDiagnostics: Error, Sendable, CustomStringConvertible {
    package var items: [MappingDiagnostic]

    package init(_ items: [MappingDiagnostic]) { self.items = items }

    package var description: String { items.map(\.description).joined(separator: "\n") }
}

/// RFC 6901 pointer building.
enum JSONPointer {
    static func appending(_ pointer: String, _ token: String) -> String {
        pointer + "/" + token.replacing("~", with: "~0").replacing("/", with: "~1")
    }

    static func appending(_ pointer: String, _ index: Int) -> String { pointer + "/\(index)" }
}

/// `" (did you mean "x"?)"` when a candidate is close, else empty.
func suggestion(for text: String, among candidates: [String]) -> String {
    closestMatch(to: text, among: candidates).map { " (did you mean \"\($0)\"?)" } ?? ""
}
