import LoraTwinGSL

/// Statistical helpers from GSL for checking generated workloads.
public enum Statistics {
    /// The upper tail Q(x; dof) of the chi-square distribution: the p-value of a statistic `x`
    /// with `dof` degrees of freedom.
    public static func chiSquareUpperTail(_ x: Double, degreesOfFreedom dof: Double) -> Double { lt_chisq_q(x, dof) }

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
