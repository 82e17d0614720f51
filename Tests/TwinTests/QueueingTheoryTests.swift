import TestSupport
import Testing
import Twin
import Workloads

@Suite("Queueing theory")
struct QueueingTheoryTests {
    @Test(
        "batch size 1, Poisson arrivals, constant service: mean wait matches M/D/1 (Pollaczek-Khinchine)",
        arguments: [0.5, 0.8])
    func mD1(utilisation rho: Double) {
        // One sequence per iteration, one output token per request: each request is served by
        // exactly one iteration of D = 0.01 + 90 * 0.0001 = 0.019 s.
        let d = 0.019
        let lambda = rho / d
        let spec = GeneratorSpec(
            requests: 200_000, arrival: .poisson(rate: lambda), popularity: .identical, promptTokens: .fixed(90),
            outputTokens: .fixed(1), catalogue: CatalogueSpec(count: 0, ranks: [(16, 1)], alpha: 16, targetModules: []))
        let trace = spec.generate(seed: 7)
        let cost = LinearCostModel(baseSeconds: 0.01, perPrefillTokenSeconds: 0.0001)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(seqs: 1, tokens: 256, blocks: 64), cost: cost)
        let waits = sim.requests.map { $0.firstScheduledSeconds - $0.arrivalSeconds }
        let mean = waits.reduce(0, +) / Double(waits.count)
        let expected = lambda * d * d / (2 * (1 - rho))
        #expect(abs(mean - expected) / expected < 0.05, "mean wait \(mean) vs M/D/1 \(expected)")
    }
}
