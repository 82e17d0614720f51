import LoraTwinGSL

/// Monotone 1-D interpolation through measured points (GSL's Steffen method: no overshoot
/// between points, so a latency curve never dips where the measurements do not).
public final class Interpolator1D: @unchecked Sendable {
    private let handle: OpaquePointer?
    /// The abscissae, increasing.
    public let xs: [Double]
    /// The values.
    public let ys: [Double]

    /// Creates an interpolator; `xs` must be strictly increasing. With fewer than three points it
    /// interpolates linearly.
    public init?(xs: [Double], ys: [Double]) {
        guard xs.count == ys.count, xs.count >= 2, zip(xs, xs.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        self.xs = xs
        self.ys = ys
        let kind: Int32 = xs.count >= 3 ? 1 : 0
        handle = xs.withUnsafeBufferPointer { x in
            ys.withUnsafeBufferPointer { y in lt_interp_new(kind, x.baseAddress, y.baseAddress, xs.count) }
        }
        if handle == nil { return nil }
    }

    deinit { lt_interp_free(handle) }

    /// Whether `x` lies within the measured range.
    public func covers(_ x: Double) -> Bool { x >= xs[0] && x <= xs[xs.count - 1] }

    /// The value at `x`, clamped to the range's ends outside it.
    public func callAsFunction(_ x: Double) -> Double {
        if x <= xs[0] { return ys[0] }
        if x >= xs[xs.count - 1] { return ys[ys.count - 1] }
        var out = 0.0
        return lt_interp_eval(handle, x, &out) == 0 ? out : .nan
    }
}

/// Multilinear interpolation over a full rectangular grid of any dimension.
///
/// Written here because GSL interpolates in one and two dimensions only, and the LoRA table has
/// three (tokens, segments, rank). Outside the grid each coordinate is clamped to its edge; the
/// caller extrapolates with a fitted model (`LinearFit`).
public struct GridInterpolator: Sendable {
    /// Grid coordinates per axis, increasing.
    public let axes: [[Double]]
    /// Values in row-major order (last axis fastest).
    public let values: [Double]

    /// Builds the grid from scattered rows that must cover every combination of axis values once.
    /// Returns nil (with the missing combination) if the rows are not a full grid.
    public static func fromRows(points: [[Double]], values: [Double]) -> (grid: GridInterpolator?, missing: [Double]?) {
        guard let d = points.first?.count else { return (nil, []) }
        let axes = (0..<d).map { k in Array(Set(points.map { $0[k] })).sorted() }
        var grid = Array(repeating: Double.nan, count: axes.reduce(1) { $0 * $1.count })
        for (p, v) in zip(points, values) {
            var index = 0
            for k in 0..<d { index = index * axes[k].count + axes[k].firstIndex(of: p[k])! }
            grid[index] = v
        }
        if let hole = grid.firstIndex(where: { $0.isNaN }) {
            var rest = hole
            var coord = Array(repeating: 0.0, count: d)
            for k in (0..<d).reversed() {
                coord[k] = axes[k][rest % axes[k].count]
                rest /= axes[k].count
            }
            return (nil, coord)
        }
        return (GridInterpolator(axes: axes, values: grid), nil)
    }

    /// The cell of `x` on axis `k` (clamped): its lower index and the weight of the upper point.
    @inline(__always) func bracket(_ k: Int, _ x: Double) -> (Int, Double) {
        let a = axes[k]
        if a.count == 1 { return (0, 0) }
        let v = min(max(x, a[0]), a[a.count - 1])
        var i = 0
        while i + 2 < a.count && v > a[i + 1] { i += 1 }
        return (i, (v - a[i]) / (a[i + 1] - a[i]))
    }

    /// Bilinear value of a 2-D grid at (x, y), clamped; no allocation (the twin's hot path).
    public func value(_ x: Double, _ y: Double) -> Double {
        precondition(axes.count == 2)
        let (i, u) = bracket(0, x)
        let (j, w) = bracket(1, y)
        let n = axes[1].count
        let j1 = min(j + 1, n - 1)
        let i1 = min(i + 1, axes[0].count - 1)
        let a = values[i * n + j] * (1 - w) + values[i * n + j1] * w
        let b = values[i1 * n + j] * (1 - w) + values[i1 * n + j1] * w
        return a * (1 - u) + b * u
    }

    /// Trilinear value of a 3-D grid at (x, y, z), clamped; no allocation.
    public func value(_ x: Double, _ y: Double, _ z: Double) -> Double {
        precondition(axes.count == 3)
        let (i, u) = bracket(0, x)
        let (j, v) = bracket(1, y)
        let (k, w) = bracket(2, z)
        let ny = axes[1].count
        let nz = axes[2].count
        func at(_ a: Int, _ b: Int, _ c: Int) -> Double {
            values[(min(a, axes[0].count - 1) * ny + min(b, ny - 1)) * nz + min(c, nz - 1)]
        }
        func plane(_ a: Int) -> Double {
            let lo = at(a, j, k) * (1 - w) + at(a, j, k + 1) * w
            let hi = at(a, j + 1, k) * (1 - w) + at(a, j + 1, k + 1) * w
            return lo * (1 - v) + hi * v
        }
        return plane(i) * (1 - u) + plane(i + 1) * u
    }

    /// Leave-one-out error of a 2-D grid's interpolation, in percent (RMS): each interior point
    /// predicted by linear interpolation between its two neighbours along each axis in turn (what
    /// the grid would say there without it), relative to its value. NaN with no interior point.
    public func leaveOneOutPercent2D() -> Double {
        precondition(axes.count == 2)
        let (nx, ny) = (axes[0].count, axes[1].count)
        var squares = 0.0
        var count = 0
        func add(_ predicted: Double, _ actual: Double) {
            guard actual != 0 else { return }
            let e = (predicted - actual) / actual * 100
            squares += e * e
            count += 1
        }
        for i in 0..<nx {
            for j in 0..<ny {
                let v = values[i * ny + j]
                if i > 0 && i < nx - 1 {
                    let u = (axes[0][i] - axes[0][i - 1]) / (axes[0][i + 1] - axes[0][i - 1])
                    add(values[(i - 1) * ny + j] * (1 - u) + values[(i + 1) * ny + j] * u, v)
                }
                if j > 0 && j < ny - 1 {
                    let w = (axes[1][j] - axes[1][j - 1]) / (axes[1][j + 1] - axes[1][j - 1])
                    add(values[i * ny + j - 1] * (1 - w) + values[i * ny + j + 1] * w, v)
                }
            }
        }
        return count > 0 ? (squares / Double(count)).squareRoot() : .nan
    }

    /// Whether (x, y) lies within a 2-D grid.
    @inline(__always) public func covers(_ x: Double, _ y: Double) -> Bool {
        x >= axes[0][0] && x <= axes[0][axes[0].count - 1] && y >= axes[1][0] && y <= axes[1][axes[1].count - 1]
    }

    /// Whether (x, y, z) lies within a 3-D grid.
    @inline(__always) public func covers(_ x: Double, _ y: Double, _ z: Double) -> Bool {
        covers(x, y) && z >= axes[2][0] && z <= axes[2][axes[2].count - 1]
    }

    /// Whether `point` lies within the grid on every axis.
    public func covers(_ point: [Double]) -> Bool {
        zip(axes, point).allSatisfy { $1 >= $0[0] && $1 <= $0[$0.count - 1] }
    }

    /// The interpolated value at `point` (clamped to the grid).
    public func callAsFunction(_ point: [Double]) -> Double {
        let d = axes.count
        var lower = [Int](repeating: 0, count: d)
        var weight = [Double](repeating: 0, count: d)
        for k in 0..<d {
            let a = axes[k]
            let x = min(max(point[k], a[0]), a[a.count - 1])
            if a.count == 1 { continue }
            var i = 0
            while i + 2 < a.count && x > a[i + 1] { i += 1 }
            lower[k] = i
            weight[k] = (x - a[i]) / (a[i + 1] - a[i])
        }
        var total = 0.0
        for corner in 0..<(1 << d) {
            var w = 1.0
            var index = 0
            for k in 0..<d {
                let up = (corner >> k) & 1 == 1
                if axes[k].count == 1 && up { w = 0; break }
                w *= up ? weight[k] : 1 - weight[k]
                index = index * axes[k].count + lower[k] + (up ? 1 : 0)
            }
            if w != 0 { total += w * values[index] }
        }
        return total
    }
}
