import Glibc

extension StringProtocol {
    /// The text without the white space (Unicode's `White_Space`: spaces, tabs, line breaks)
    /// at either end.
    package func trimmingWhitespace() -> String {
        // Nearly every text (a header value, a setting) starts and ends with ASCII that is not
        // white space: no scalar's properties need reading then (the webhook path trims its
        // Content-Type).
        let scalars = unicodeScalars
        if let first = scalars.first, let last = scalars.last, first.isASCII, last.isASCII {
            func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == " " || (scalar.value >= 0x09 && scalar.value <= 0x0D) }
            if !isSpace(first) && !isSpace(last) { return String(self) }
        }
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        var trimmed = String.UnicodeScalarView()
        trimmed.append(contentsOf: scalars[first...last])
        return String(trimmed)
    }
}

/// Paths as text, the way the relay names its files: `/` separates, nothing is resolved.
package enum FilePath {
    /// `name` inside `directory` (`name` alone when `directory` is empty).
    package static func join(_ directory: String, _ name: String) -> String {
        if directory.isEmpty { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The folder part of `path`: `a/b.json` → `a`, `/b.json` → `/`, `b.json` → empty.
    package static func directory(of path: String) -> String {
        let trimmed = withoutTrailingSlashes(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        var folder = trimmed[..<slash]
        while folder.hasSuffix("/") { folder = folder.dropLast() }
        return folder.isEmpty ? "/" : String(folder)
    }

    /// The last part of `path`: `a/b.json` → `b.json`.
    package static func lastComponent(of path: String) -> String {
        let trimmed = withoutTrailingSlashes(path)
        guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `path` without the slashes that end it, but a lone `/`.
    private static func withoutTrailingSlashes(_ path: String) -> Substring {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return trimmed
    }

    /// Whether `path` names a folder (following links); nil when nothing is there.
    package static func isDirectory(_ path: String) -> Bool? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT == S_IFDIR
    }
}
