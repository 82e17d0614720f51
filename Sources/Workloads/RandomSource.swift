import LoraTwinGSL

/// A seeded random source (GSL's MT19937): the same seed gives the same stream on every machine.
///
/// A reference type because it owns a C generator; it is not shared between threads.
public final class RandomSource {
    private let rng: OpaquePointer

    /// Creates a generator from `seed`.
    public init(seed: UInt64) {
        guard let r = lt_rng_new(seed) else { fatalError("GSL could not allocate a random generator") }
        rng = r
    }

    deinit { lt_rng_free(rng) }

    /// Uniform on [0, 1).
    public func uniform() -> Double { lt_rng_uniform(rng) }
    /// Uniform on (0, 1).
    public func uniformPositive() -> Double { lt_rng_uniform_pos(rng) }
    /// Uniform integer on 0..<n (n > 0).
    public func uniformInt(_ n: Int) -> Int { Int(lt_rng_uniform_int(rng, UInt(n))) }
    /// Exponential with the given mean.
    public func exponential(mean: Double) -> Double { lt_ran_exponential(rng, mean) }
    /// Gamma with shape and scale (mean shape * scale).
    public func gamma(shape: Double, scale: Double) -> Double { lt_ran_gamma(rng, shape, scale) }
    /// Normal with mean 0 and standard deviation sigma.
    public func gaussian(sigma: Double) -> Double { lt_ran_gaussian(rng, sigma) }
    /// Log-normal: exp(N(mu, sigma^2)).
    public func logNormal(mu: Double, sigma: Double) -> Double { lt_ran_lognormal(rng, mu, sigma) }
    /// Poisson with the given mean.
    public func poisson(mean: Double) -> Int { Int(lt_ran_poisson(rng, mean)) }
    /// 0..<n in a random order (GSL's shuffle).
    public func permutation(_ n: Int) -> [Int] {
        var values = (0..<n).map { Int32($0) }
        values.withUnsafeMutableBufferPointer { lt_ran_shuffle_int(rng, $0.baseAddress, $0.count) }
        return values.map { Int($0) }
    }

    /// Draws from a discrete distribution prepared once.
    public func draw(_ d: DiscreteDistribution) -> Int { Int(lt_discrete_draw(rng, d.table)) }
}

/// A discrete distribution over 0..<k with given (unnormalised) weights, prepared for fast draws.
public final class DiscreteDistribution {
    fileprivate let table: OpaquePointer
    /// Number of outcomes.
    public let count: Int

    /// Prepares the distribution; returns nil if weights are empty, negative or all zero.
    public init?(weights: [Double]) {
        guard !weights.isEmpty, weights.allSatisfy({ $0 >= 0 && $0.isFinite }), weights.contains(where: { $0 > 0 }),
            let t = weights.withUnsafeBufferPointer({ lt_discrete_new($0.count, $0.baseAddress) })
        else { return nil }
        table = t
        count = weights.count
    }

    deinit { lt_discrete_free(table) }
}
