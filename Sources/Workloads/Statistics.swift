import LoraTwinGSL

/// Statistical helpers from GSL for checking generated workloads.
public enum Statistics {
    /// The upper tail Q(x; dof) of the chi-square distribution: the p-value of a statistic `x`
    /// with `dof` degrees of freedom.
    public static func chiSquareUpperTail(_ x: Double, degreesOfFreedom dof: Double) -> Double { lt_chisq_q(x, dof) }

    /// The standard normal quantile: the x with P(Z <= x) = p, for p in (0, 1).
    public static func normalQuantile(_ p: Double) -> Double { lt_ugaussian_pinv(p) }

    /// `count` points of a Latin hypercube over `dimensions` standard normal variables: point k's
    /// coordinate in each dimension is the normal quantile of the stratum (j + 1/2) / count, where
    /// j runs once over 0..<count in every dimension, in order in the first and in a seeded
    /// shuffle in the others. Each variable's draws then cover its distribution evenly, which N
    /// independent draws do only for large N (ten draws of a normal can all fall on one side).
    public static func latinHypercubeNormal(count: Int, dimensions: Int, seed: UInt64) -> [[Double]] {
        guard count > 0, dimensions > 0 else { return [] }
        let rng = RandomSource(seed: seed)
        let columns = [Array(0..<count)] + (1..<dimensions).map { _ in rng.permutation(count) }
        return (0..<count).map { k in columns.map { normalQuantile((Double($0[k]) + 0.5) / Double(count)) } }
    }

    /// Pearson's chi-square statistic of observed counts against expected probabilities.
    public static func chiSquare(observed: [Int], probabilities: [Double]) -> Double {
        let n = Double(observed.reduce(0, +))
        var x = 0.0
        for (o, p) in zip(observed, probabilities) where p > 0 {
            let e = n * p
            x += (Double(o) - e) * (Double(o) - e) / e
        }
        return x
    }
}
