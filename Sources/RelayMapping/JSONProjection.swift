#if canImport(Glibc)
import Glibc
#endif

/// The parts of a JSON document that a set of paths can read. Parsing with a projection
/// validates the whole text but builds values only for those parts, so a route that reads
/// ten fields of a large order does not pay for the rest.
package final class JSONProjection: Sendable {
    /// Everything below this point is needed.
    let isComplete: Bool
    /// Needed members by name (as UTF-8, compared with unescaped keys as they are read).
    let members: [(name: [UInt8], projection: JSONProjection)]
    /// What every array element needs, if anything.
    let elements: JSONProjection?

    init(isComplete: Bool, members: [(name: [UInt8], projection: JSONProjection)], elements: JSONProjection?) {
        self.isComplete = isComplete
        self.members = members
        self.elements = elements
    }

    /// The projection that keeps everything.
    package static let everything = JSONProjection(isComplete: true, members: [], elements: nil)

    /// The projection of the paths' segments, each read from the root. Nil when some path
    /// needs the whole document.
    package static func make(_ paths: [[JSONPath.Segment]]) -> JSONProjection? {
        let root = Builder()
        for segments in paths { root.add(segments) }
        return root.isComplete ? nil : root.build()
    }

    func member(_ name: UnsafeBufferPointer<UInt8>) -> JSONProjection? {
        guard let first = name.first else { return members.first { $0.name.isEmpty }?.projection }
        for (candidate, projection) in members where candidate.count == name.count && candidate[0] == first {
            if candidate.withUnsafeBufferPointer({ memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 }) { return projection }
        }
        return nil
    }

    /// A mutable trie used while collecting paths.
    private final class Builder {
        var isComplete = false
        var members: [(String, Builder)] = []
        var elements: Builder?

        func add(_ segments: ArraySlice<JSONPath.Segment>) {
            guard !isComplete else { return }
            guard let segment = segments.first else {
                isComplete = true
                return
            }
            let rest = segments.dropFirst()
            switch segment {
            case .name(let name):
                if let existing = members.first(where: { $0.0 == name }) {
                    existing.1.add(rest)
                } else {
                    let child = Builder()
                    members.append((name, child))
                    child.add(rest)
                }
            case .index, .wildcard:
                elementBuilder().add(rest)
            case .filter(let expression):
                let element = elementBuilder()
                for relative in expression.relativePaths { element.add(relative[...]) }
                element.add(rest)
            }
        }

        func add(_ segments: [JSONPath.Segment]) { add(segments[...]) }

        private func elementBuilder() -> Builder {
            if let elements { return elements }
            let created = Builder()
            elements = created
            return created
        }

        func build() -> JSONProjection {
            if isComplete { return .everything }
            return JSONProjection(
                isComplete: false, members: members.map { (Array($0.0.utf8), $0.1.build()) }, elements: elements?.build())
        }
    }
}

extension FilterExpression {
    /// The relative paths (`@.name`) the expression reads.
    var relativePaths: [[JSONPath.Segment]] {
        switch self {
        case .or(let terms), .and(let terms): terms.flatMap(\.relativePaths)
        case .not(let term): term.relativePaths
        case .exists(let segments): [segments]
        case .compare(let left, _, let right):
            [left, right].compactMap {
                if case .path(let segments) = $0 { return segments }
                return nil
            }
        }
    }
}
