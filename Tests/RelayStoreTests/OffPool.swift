import Foundation

/// Runs blocking work (processes, libpq) on a thread of its own, off the cooperative pool:
/// `Process.waitUntilExit` there can starve the pool that reaps the children.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                continuation.resume(returning: try body())
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
