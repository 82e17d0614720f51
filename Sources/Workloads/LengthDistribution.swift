import Foundation

/// A distribution of token counts, always at least 1.
public enum LengthDistribution: Sendable, Equatable, CustomStringConvertible {
    /// Always `tokens`.
    case fixed(Int)
    /// Uniform integers in `low...high`.
    case uniform(low: Int, high: Int)
    /// Normal with the given mean and standard deviation, rounded and clipped to `min...max`.
    case normal(mean: Double, sd: Double, min: Int, max: Int)
    /// Log-normal with the given mean and log-space sigma, clipped to `min...max`.
    case logNormal(mean: Double, sigma: Double, min: Int, max: Int)
    /// Resampled (uniformly, with replacement) from the lengths of a real trace.
    case empirical([Int])

    /// Draws one length.
    public func draw(_ rng: RandomSource) -> Int {
        switch self {
        case .fixed(let n): return n
        case .uniform(let lo, let hi): return lo + rng.uniformInt(hi - lo + 1)
        case .normal(let mean, let sd, let lo, let hi):
            return Self.clip((mean + rng.gaussian(sigma: sd)).rounded(), lo, hi)
        case .logNormal(let mean, let sigma, let lo, let hi):
            let mu = log(mean) - sigma * sigma / 2
            return Self.clip(rng.logNormal(mu: mu, sigma: sigma).rounded(), lo, hi)
        case .empirical(let values):
            return values.isEmpty ? 1 : values[rng.uniformInt(values.count)]
        }
    }

    private static func clip(_ v: Double, _ lo: Int, _ hi: Int) -> Int {
        Swift.min(hi, Swift.max(lo, Int(Swift.min(Swift.max(v, -1e9), 1e9))))
    }

    /// A short description (an empirical distribution is not listed value by value).
    public var description: String {
        switch self {
        case .fixed(let n): return "fixed(\(n))"
        case .uniform(let lo, let hi): return "uniform(\(lo)...\(hi))"
        case .normal(let m, let sd, let lo, let hi): return "normal(mean: \(m), sd: \(sd), \(lo)...\(hi))"
        case .logNormal(let m, let s, let lo, let hi): return "lognormal(mean: \(m), sigma: \(s), \(lo)...\(hi))"
        case .empirical(let v): return "empirical(\(v.count) values)"
        }
    }
}
