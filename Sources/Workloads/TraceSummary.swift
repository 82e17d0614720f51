import Foundation

/// What `loratwin trace inspect` reports about a trace: size, duration, rate and burstiness,
/// length percentiles, and how requests spread over adapters.
public struct TraceSummary: Sendable {
    /// Number of requests.
    public var requests: Int
    /// Time from the first arrival to the last, in seconds.
    public var durationSeconds: Double
    /// Mean arrival rate, requests per second ((requests - 1) / duration; 0 when undefined).
    public var meanRatePerSecond: Double
    /// Burstiness: coefficient of variation of the gaps between arrivals (1 for Poisson, 0 for
    /// constant, above 1 for bursty traffic).
    public var interArrivalCV: Double
    /// Prompt length percentiles (nearest rank), keyed by the fraction in `TraceSummary.quantiles`.
    public var promptPercentiles: [Int]
    /// Output length percentiles, as `promptPercentiles`.
    public var outputPercentiles: [Int]
    /// Mean prompt length in tokens.
    public var promptMean: Double
    /// Mean output length in tokens.
    public var outputMean: Double
    /// Number of distinct adapters that requests use.
    public var adaptersUsed: Int
    /// Adapters in the catalogue.
    public var catalogueSize: Int
    /// Requests served by the base model alone.
    public var baseModelRequests: Int
    /// The most used adapters and their share of all requests, most used first.
    public var topAdapters: [(name: String, share: Double)]

    /// The fractions the percentiles are taken at.
    public static let quantiles: [Double] = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]

    /// Summarises `trace`, listing the `top` most used adapters.
    public init(_ trace: Trace, top: Int = 5) {
        let r = trace.requests
        requests = r.count
        durationSeconds = r.count > 1 ? r[r.count - 1].arrivalSeconds - r[0].arrivalSeconds : 0
        meanRatePerSecond = durationSeconds > 0 ? Double(r.count - 1) / durationSeconds : 0
        let gaps = zip(r.dropFirst(), r).map { $0.arrivalSeconds - $1.arrivalSeconds }
        interArrivalCV = Self.coefficientOfVariation(gaps)
        promptPercentiles = Self.percentiles(r.map(\.promptTokens))
        outputPercentiles = Self.percentiles(r.map(\.outputTokens))
        promptMean = r.isEmpty ? 0 : Double(r.reduce(0) { $0 + $1.promptTokens }) / Double(r.count)
        outputMean = r.isEmpty ? 0 : Double(r.reduce(0) { $0 + $1.outputTokens }) / Double(r.count)
        var counts = Array(repeating: 0, count: trace.catalogue.count)
        var base = 0
        for q in r {
            if q.adapter >= 0 && q.adapter < counts.count { counts[q.adapter] += 1 } else { base += 1 }
        }
        baseModelRequests = base
        catalogueSize = trace.catalogue.count
        adaptersUsed = counts.filter { $0 > 0 }.count
        let order = counts.indices.filter { counts[$0] > 0 }.sorted { counts[$0] > counts[$1] || (counts[$0] == counts[$1] && $0 < $1) }
        topAdapters = order.prefix(top).map { (trace.catalogue[$0].name, Double(counts[$0]) / Double(max(r.count, 1))) }
    }

    /// Nearest-rank percentiles of `values` at `quantiles` (empty input gives zeros).
    public static func percentiles(_ values: [Int]) -> [Int] {
        guard !values.isEmpty else { return quantiles.map { _ in 0 } }
        let s = values.sorted()
        return quantiles.map { q in s[min(s.count - 1, max(0, Int((q * Double(s.count)).rounded(.up)) - 1))] }
    }

    /// Standard deviation over mean (population form), 0 for fewer than two values or a zero mean.
    public static func coefficientOfVariation(_ x: [Double]) -> Double {
        guard x.count > 1 else { return 0 }
        let mean = x.reduce(0, +) / Double(x.count)
        guard mean > 0 else { return 0 }
        let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(x.count)
        return variance.squareRoot() / mean
    }

    /// The summary as lines of text for a terminal.
    public var report: String {
        func row(_ name: String, _ p: [Int], _ mean: Double) -> String {
            name.padding(toLength: 8, withPad: " ", startingAt: 0) + p.map { String($0).leftPad(7) }.joined()
                + String(format: "%10.1f", mean)
        }
        var lines = [
            "requests        \(requests)",
            String(format: "duration        %.3f s", durationSeconds),
            String(format: "mean rate       %.3f req/s", meanRatePerSecond),
            String(format: "burstiness      %.3f (CV of inter-arrival gaps; 1 = Poisson)", interArrivalCV),
            "tokens  "
                + Self.quantiles.map { q in (q == 0 ? "min" : q == 1 ? "max" : "p" + String(format: "%g", q * 100)).leftPad(7) }
                .joined() + "      mean",
            row("prompt", promptPercentiles, promptMean),
            row("output", outputPercentiles, outputMean),
            "adapters        \(adaptersUsed) used of \(catalogueSize) in the catalogue; \(baseModelRequests) requests on the base model",
        ]
        for (i, a) in topAdapters.enumerated() {
            lines.append(
                "  #\(i + 1) " + a.name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: " %6.2f%%", a.share * 100))
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
