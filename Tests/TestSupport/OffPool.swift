import Foundation

/// Runs blocking work (processes, sockets, libpq) on a thread of its own, off the cooperative
/// pool: a pool thread blocked for seconds starves every other test of the run (the pool has
/// as many threads as the machine has cores).
package func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
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
