/// The candidate closest to `text` by edit distance, when it is close enough to be a typo.
package func closestMatch(to text: String, among candidates: [String]) -> String? {
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(text, candidate)
        if distance <= max(2, candidate.count / 3), distance < (best?.distance ?? .max) {
            best = (candidate, distance)
        }
    }
    if let best { return best.candidate }
    // An abbreviation of a longer name ("order_no" for "order_number"): a long shared prefix.
    var longest: (candidate: String, length: Int)?
    for candidate in candidates {
        let shared = zip(text, candidate).prefix { $0 == $1 }.count
        if shared >= max(4, text.count * 2 / 3), shared > (longest?.length ?? 0) { longest = (candidate, shared) }
    }
    return longest?.candidate
}

/// Levenshtein distance over Unicode scalars.
package func editDistance(_ lhs: String, _ rhs: String) -> Int {
    let a = Array(lhs.unicodeScalars)
    let b = Array(rhs.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
