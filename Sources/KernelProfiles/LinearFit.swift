import LoraTwinGSL

/// An ordinary least-squares fit y ~ X c (GSL's multifit), with its leave-one-out error: each
/// point predicted by the fit to all the others, which says how well the model extrapolates.
public struct LinearFit: Sendable, Equatable {
    /// Names of the features (the columns of X).
    public let features: [String]
    /// Coefficients, one per feature.
    public let coefficients: [Double]
    /// Root-mean-square of the leave-one-out relative errors, in percent (NaN with too few points).
    public let leaveOneOutPercent: Double
    /// Largest leave-one-out relative error, in percent.
    public let leaveOneOutMaxPercent: Double
    /// Points fitted.
    public let points: Int

    /// Fits `y` on the rows of `x` (each row one feature vector). Returns nil when the system is
    /// underdetermined or GSL fails.
    ///
    /// With `offset`, the fit is of a residual: it fits `y - offset`, and its leave-one-out error
    /// is that of the whole model `offset + fit` against `y` (a part of a step cost fitted over
    /// the rest of the model, judged on the step).
    public init?(features: [String], x: [[Double]], y: [Double], offset: [Double]? = nil) {
        let p = features.count
        guard x.count == y.count, x.count >= p, p > 0, x.allSatisfy({ $0.count == p }) else { return nil }
        let base = offset ?? [Double](repeating: 0, count: y.count)
        guard base.count == y.count else { return nil }
        let target = zip(y, base).map { $0 - $1 }
        guard let c = Self.solve(x, target, p) else { return nil }
        self.features = features
        coefficients = c
        points = y.count
        var squares = 0.0
        var worst = 0.0
        var counted = 0
        if y.count > p {
            for i in y.indices {
                var xs = x
                var ys = target
                xs.remove(at: i)
                ys.remove(at: i)
                guard let ci = Self.solve(xs, ys, p) else { continue }
                let predicted = base[i] + zip(ci, x[i]).reduce(0) { $0 + $1.0 * $1.1 }
                let e = abs(predicted - y[i]) / max(abs(y[i]), 1e-12) * 100
                squares += e * e
                worst = max(worst, e)
                counted += 1
            }
        }
        leaveOneOutPercent = counted > 0 ? (squares / Double(counted)).squareRoot() : .nan
        leaveOneOutMaxPercent = counted > 0 ? worst : .nan
    }

    private static func solve(_ x: [[Double]], _ y: [Double], _ p: Int) -> [Double]? {
        let flat = x.flatMap { $0 }
        var c = [Double](repeating: 0, count: p)
        var cov = [Double](repeating: 0, count: p * p)
        var chisq = 0.0
        let rc = flat.withUnsafeBufferPointer { fx in
            y.withUnsafeBufferPointer { fy in lt_multifit_linear(fx.baseAddress, fy.baseAddress, y.count, p, &c, &cov, &chisq) }
        }
        return rc == 0 && c.allSatisfy(\.isFinite) ? c : nil
    }

    /// The fitted value for one, two, three or four features, without building an array.
    @inline(__always) public func value(_ a: Double) -> Double { coefficients[0] * a }
    /// See `value(_:)`.
    @inline(__always) public func value(_ a: Double, _ b: Double) -> Double { coefficients[0] * a + coefficients[1] * b }
    /// See `value(_:_:)`.
    @inline(__always) public func value(_ a: Double, _ b: Double, _ c: Double) -> Double {
        coefficients[0] * a + coefficients[1] * b + coefficients[2] * c
    }
    /// See `value(_:_:)`.
    @inline(__always) public func value(_ a: Double, _ b: Double, _ c: Double, _ d: Double) -> Double {
        coefficients[0] * a + coefficients[1] * b + coefficients[2] * c + coefficients[3] * d
    }

    /// The fitted value for a feature vector.
    public func callAsFunction(_ features: [Double]) -> Double {
        zip(coefficients, features).reduce(0) { $0 + $1.0 * $1.1 }
    }
}
