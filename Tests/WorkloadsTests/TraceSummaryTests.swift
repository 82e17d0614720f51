import Foundation
import TestSupport
import Testing
import Workloads

@Suite("Trace summary (loratwin trace inspect)")
struct TraceSummaryTests {
    @Test("nearest-rank percentiles, hand-computed")
    func percentiles() {
        // Sorted 1...10: p10 -> rank 1, p25 -> rank 3, p50 -> rank 5, p75 -> rank 8, p90 -> 9, p99 -> 10.
        #expect(TraceSummary.percentiles(Array((1...10).reversed())) == [1, 1, 3, 5, 8, 9, 10, 10])
        #expect(TraceSummary.percentiles([]) == Array(repeating: 0, count: TraceSummary.quantiles.count))
    }

    @Test("rate, burstiness and adapter shares of a hand-made trace")
    func handMade() {
        let times = [0.0, 1, 2, 3, 4]
        let adapters = [0, 0, 1, -1, 0]
        let t = Trace(
            requests: (0..<5).map {
                TraceRequest(requestID: $0, arrivalSeconds: times[$0], adapter: adapters[$0], promptTokens: 10 * ($0 + 1), outputTokens: 1)
            }, catalogue: WorkloadFixtures.catalogue)
        let s = TraceSummary(t, top: 2)
        #expect(s.requests == 5)
        #expect(s.durationSeconds == 4)
        #expect(s.meanRatePerSecond == 1)
        #expect(s.interArrivalCV == 0)
        #expect(s.promptMean == 30)
        #expect(s.adaptersUsed == 2 && s.catalogueSize == 3 && s.baseModelRequests == 1)
        #expect(s.topAdapters.map(\.name) == ["a0", "a1"])
        #expect(s.topAdapters.map(\.share) == [0.6, 0.2])
        #expect(s.report.contains("requests        5"))
    }

    @Test(
        "popularity probabilities sum to one and put the share where it is asked",
        arguments: [
            Popularity.uniform, .identical, .zipf(exponent: 1.3), .topShare(adapters: 2, share: 0.7), .topShare(adapters: 50, share: 0.7),
        ])
    func probabilities(_ p: Popularity) throws {
        let q = try #require(p.probabilities(adapterCount: 10))
        #expect(abs(q.reduce(0, +) - 1) < 1e-12)
        if case .topShare(2, let share) = p { #expect(abs(q[0] + q[1] - share) < 1e-12) }
        if case .topShare(50, _) = p { #expect(q.allSatisfy { abs($0 - 0.1) < 1e-12 }) }
        #expect(Popularity.distinct.probabilities(adapterCount: 10) == nil)
    }
}
