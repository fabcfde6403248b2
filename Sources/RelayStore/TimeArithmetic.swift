import CSystem

/// The wall clock in unix milliseconds: the default clock of the store, the relay and the CLI.
package func currentUnixMilliseconds() -> UnixMilliseconds {
    Int(csystem_unix_milliseconds())
}

extension Int {
    /// `self + other`, saturating at `Int.max` or `Int.min` instead of trapping: stored values
    /// (a damaged row, a poisoned answer) may be anything.
    package func addingSaturating(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? Int.max : Int.min) : sum
    }

    /// `self - other`, or nil when it does not fit.
    package func subtractingIfFits(_ other: Int) -> Int? {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? nil : difference
    }
}

extension Duration {
    /// Whole milliseconds, saturating at `Int.max` for durations that do not fit; 0 for
    /// negative ones.
    package var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = Int(seconds).multipliedReportingOverflow(by: 1000)
        return overflow ? Int.max : whole.addingSaturating(Int(attoseconds / 1_000_000_000_000_000))
    }
}
