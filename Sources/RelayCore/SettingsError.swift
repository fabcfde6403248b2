/// A mistake on the command line or in the environment. Usage mistakes (an unknown flag,
/// a missing value) exit 2 with a usage line; a malformed value exits 1 (docs/interface.md).
package struct SettingsError: Error, Equatable, CustomStringConvertible {
    package let message: String
    /// True for an unknown flag or a missing value.
    package let isUsageError: Bool

    package init(_ message: String, isUsageError: Bool = false) {
        self.message = message
        self.isUsageError = isUsageError
    }

    package var description: String { message }
    /// The process exit code for this error.
    package var exitCode: Int32 { isUsageError ? 2 : 1 }
}
