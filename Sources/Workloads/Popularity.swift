import Foundation

/// Which adapter each request uses, as named in the Punica/Dop papers.
public enum Popularity: Sendable, Equatable {
    /// Every request its own adapter (cycling through the catalogue in order).
    case distinct
    /// Adapters drawn uniformly.
    case uniform
    /// Skewed: adapter i (0-based) drawn with weight 1 / (i + 1)^exponent.
    case zipf(exponent: Double)
    /// Skewed: the first `adapters` adapters share `share` (0...1) of requests evenly, the others the rest.
    case topShare(adapters: Int, share: Double)
    /// Every request uses the first adapter.
    case identical

    /// The probability of each of `count` adapters (summing to 1), or nil for `distinct`, which
    /// is not drawn at random.
    public func probabilities(adapterCount count: Int) -> [Double]? {
        guard count > 0 else { return [] }
        var w: [Double]
        switch self {
        case .distinct: return nil
        case .uniform: w = Array(repeating: 1, count: count)
        case .zipf(let s): w = (0..<count).map { 1 / pow(Double($0 + 1), s) }
        case .identical: w = [1] + Array(repeating: 0, count: count - 1)
        case .topShare(let k, let share):
            let top = min(max(k, 0), count)
            if top == 0 || top == count {
                w = Array(repeating: 1, count: count)
            } else {
                let s = min(max(share, 0), 1)
                w = (0..<count).map { $0 < top ? s / Double(top) : (1 - s) / Double(count - top) }
            }
        }
        let total = w.reduce(0, +)
        return w.map { $0 / total }
    }
}

/// A popularity that takes over at a point in time: a shift of which adapters are hot.
public struct PopularityPhase: Sendable, Equatable {
    /// When the phase starts, in seconds from the start of the trace.
    public var startSeconds: Double
    /// The popularity from then on.
    public var popularity: Popularity
    /// Rotates the ranking: the adapter drawn as i is `(i + rotation) % count`, so a skewed
    /// popularity's hot set moves to other adapters.
    public var rotation: Int

    /// Creates a phase.
    public init(startSeconds: Double, popularity: Popularity, rotation: Int = 0) {
        self.startSeconds = startSeconds
        self.popularity = popularity
        self.rotation = rotation
    }
}
