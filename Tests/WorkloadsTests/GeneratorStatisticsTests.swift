import Foundation
import TestSupport
import Testing
import Workloads

/// Statistical checks of the generators with fixed seeds. Each interval is a 99.9 % one
/// (z = 3.29), so a correct generator fails about once in a thousand seeds; the seeds are fixed,
/// so the outcome is too.
@Suite("Generators: statistics with fixed seeds")
struct GeneratorStatisticsTests {
    static let z = 3.29

    private func spec(_ arrival: ArrivalProcess, _ popularity: Popularity = .uniform, requests: Int = 20_000, adapters: Int = 16)
        -> GeneratorSpec
    {
        GeneratorSpec(
            requests: requests, arrival: arrival, popularity: popularity, promptTokens: .fixed(10), outputTokens: .fixed(10),
            catalogue: CatalogueSpec(count: adapters, ranks: [(8, 1), (16, 1), (32, 1), (64, 1)], alpha: 16, targetModules: ["q_proj"]))
    }

    private func gaps(_ t: Trace) -> [Double] { zip(t.requests.dropFirst(), t.requests).map { $0.arrivalSeconds - $1.arrivalSeconds } }

    @Test("Poisson: the mean gap is within its confidence interval of 1/rate", arguments: [(0.5, 1 as UInt64), (10, 2), (250, 3)])
    func poissonRate(_ rate: Double, _ seed: UInt64) {
        let g = gaps(spec(.poisson(rate: rate)).generate(seed: seed))
        let mean = g.reduce(0, +) / Double(g.count)
        // Exponential gaps: sd = mean = 1/rate.
        #expect(abs(mean - 1 / rate) < Self.z * (1 / rate) / Double(g.count).squareRoot())
        // And the gaps are exponential, not merely of the right mean: CV 1.
        #expect(abs(TraceSummary.coefficientOfVariation(g) - 1) < Self.z * (1 / Double(g.count)).squareRoot())
    }

    @Test("Gamma: the gaps' CV is within its asymptotic confidence interval", arguments: [(0.5, 4 as UInt64), (2.0, 5), (4.0, 6)])
    func gammaCV(_ cv: Double, _ seed: UInt64) {
        let rate = 20.0
        let g = gaps(spec(.gamma(rate: rate, cv: cv), requests: 50_000).generate(seed: seed))
        let n = Double(g.count)
        // Var(sample CV) ~ (c^4 - c^3 g1 + c^2 (g2 - 1) / 4) / n, with a gamma's skewness g1 = 2c
        // and kurtosis g2 = 3 + 6c^2 (shape k = 1/c^2).
        let c = cv
        let variance = (pow(c, 4) - pow(c, 3) * 2 * c + c * c * (2 + 6 * c * c) / 4) / n
        #expect(abs(TraceSummary.coefficientOfVariation(g) - cv) < Self.z * variance.squareRoot())
        let mean = g.reduce(0, +) / n
        #expect(abs(mean - 1 / rate) < Self.z * cv / rate / n.squareRoot())
    }

    @Test("constant: every gap is exactly 1/rate")
    func constant() {
        let g = gaps(spec(.constant(rate: 4), requests: 100).generate(seed: 1))
        #expect(g.allSatisfy { $0 == 0.25 })
    }

    @Test(
        "Zipf shares pass a chi-square test, and the same counts fail one against uniform",
        arguments: [(0.8, 7 as UInt64), (1.1, 8), (2.0, 9)])
    func zipf(_ exponent: Double, _ seed: UInt64) throws {
        let n = 16
        let t = spec(.poisson(rate: 1), .zipf(exponent: exponent), requests: 50_000, adapters: n).generate(seed: seed)
        var counts = Array(repeating: 0, count: n)
        for r in t.requests { counts[r.adapter] += 1 }
        let p = try #require(Popularity.zipf(exponent: exponent).probabilities(adapterCount: n))
        let x = Statistics.chiSquare(observed: counts, probabilities: p)
        #expect(Statistics.chiSquareUpperTail(x, degreesOfFreedom: Double(n - 1)) > 0.001, "chi2 = \(x)")
        let u = Statistics.chiSquare(observed: counts, probabilities: Array(repeating: 1.0 / Double(n), count: n))
        #expect(Statistics.chiSquareUpperTail(u, degreesOfFreedom: Double(n - 1)) < 1e-9)
    }

    @Test("skewed by top share: the hot adapters' share is within its binomial interval")
    func topShare() throws {
        let t = spec(.poisson(rate: 1), .topShare(adapters: 3, share: 0.8), requests: 30_000, adapters: 20).generate(seed: 10)
        let hot = Double(t.requests.filter { $0.adapter < 3 }.count) / 30_000
        #expect(abs(hot - 0.8) < Self.z * (0.8 * 0.2 / 30_000).squareRoot())
        var counts = Array(repeating: 0, count: 20)
        for r in t.requests { counts[r.adapter] += 1 }
        let p = try #require(Popularity.topShare(adapters: 3, share: 0.8).probabilities(adapterCount: 20))
        #expect(Statistics.chiSquareUpperTail(Statistics.chiSquare(observed: counts, probabilities: p), degreesOfFreedom: 19) > 0.001)
    }

    @Test("distinct cycles through every adapter; identical uses one")
    func distinctAndIdentical() {
        #expect(
            spec(.poisson(rate: 1), .distinct, requests: 40, adapters: 16).generate(seed: 1).requests.map(\.adapter)
                == (0..<40).map { $0 % 16 })
        #expect(spec(.poisson(rate: 1), .identical, requests: 40).generate(seed: 1).requests.allSatisfy { $0.adapter == 0 })
    }

    @Test("a piecewise schedule gives each phase its rate")
    func piecewise() {
        let schedule = ArrivalProcess.piecewise([
            RatePhase(durationSeconds: 200, process: .poisson(rate: 5)),
            RatePhase(durationSeconds: 100, process: .constant(rate: 0)),
            RatePhase(durationSeconds: .infinity, process: .poisson(rate: 50)),
        ])
        let t = spec(schedule, requests: 6000).generate(seed: 11)
        let first = t.requests.filter { $0.arrivalSeconds < 200 }.count
        let paused = t.requests.filter { $0.arrivalSeconds >= 200 && $0.arrivalSeconds < 300 }.count
        let last = t.requests.filter { $0.arrivalSeconds >= 300 && $0.arrivalSeconds < 400 }.count
        #expect(abs(Double(first) - 1000) < Self.z * 1000.0.squareRoot())
        #expect(paused == 0)
        #expect(abs(Double(last) - 5000) < Self.z * 5000.0.squareRoot())
    }

    @Test("a popularity shift moves the hot adapter at its start time")
    func popularityShift() throws {
        var s = spec(.poisson(rate: 100), .zipf(exponent: 1.5), requests: 20_000, adapters: 10)
        s.popularityShifts = [PopularityPhase(startSeconds: 100, popularity: .zipf(exponent: 1.5), rotation: 4)]
        let t = s.generate(seed: 12)
        func hottest(_ r: [TraceRequest]) -> Int {
            var c = Array(repeating: 0, count: 10)
            for q in r { c[q.adapter] += 1 }
            return c.indices.max { c[$0] < c[$1] } ?? -1
        }
        #expect(hottest(t.requests.filter { $0.arrivalSeconds < 100 }) == 0)
        #expect(hottest(t.requests.filter { $0.arrivalSeconds >= 100 }) == 4)
    }

    @Test("empirical lengths reproduce the Azure conversation trace's percentiles")
    func empirical() throws {
        let source = try TraceSource.lengths(WorkloadFixtures.azureTrace("conv"), output: false)
        var s = spec(.poisson(rate: 1), requests: 100_000)
        s.promptTokens = .empirical(source)
        let generated = s.generate(seed: 13).requests.map(\.promptTokens)
        // At each source percentile x, the generated CDF F(x) matches the source's within a
        // Dvoretzky-Kiefer-Wolfowitz band (alpha = 0.001) for 100,000 draws.
        let band = (log(2 / 0.001) / (2 * 100_000)).squareRoot()
        let sortedSource = source.sorted()
        let sortedGenerated = generated.sorted()
        func cdf(_ v: [Int], _ x: Int) -> Double {
            var lo = 0
            var hi = v.count
            while lo < hi {
                let m = (lo + hi) / 2
                if v[m] <= x { lo = m + 1 } else { hi = m }
            }
            return Double(lo) / Double(v.count)
        }
        for x in TraceSummary.percentiles(source) {
            #expect(abs(cdf(sortedGenerated, x) - cdf(sortedSource, x)) < band, "at \(x) tokens")
        }
        #expect(Set(generated).isSubset(of: Set(source)))
    }

    @Test("normal lengths are clipped to their range and centred on the mean")
    func normal() {
        var s = spec(.poisson(rate: 1), requests: 20_000)
        s.outputTokens = .normal(mean: 200, sd: 80, min: 50, max: 400)
        let v = s.generate(seed: 14).requests.map(\.outputTokens)
        #expect(v.allSatisfy { (50...400).contains($0) })
        let median = TraceSummary.percentiles(v)[3]
        #expect(abs(median - 200) <= 3)
    }

    @Test("catalogue ranks follow their weights (chi-square)")
    func ranks() {
        let cat = CatalogueSpec(count: 4000, ranks: [(8, 4), (16, 3), (32, 2), (64, 1)], alpha: 16, targetModules: ["q_proj"])
            .generate(RandomSource(seed: 15))
        let counts = [8, 16, 32, 64].map { r in cat.adapters.filter { $0.rank == r }.count }
        let x = Statistics.chiSquare(observed: counts, probabilities: [0.4, 0.3, 0.2, 0.1])
        #expect(Statistics.chiSquareUpperTail(x, degreesOfFreedom: 3) > 0.001)
    }
}
