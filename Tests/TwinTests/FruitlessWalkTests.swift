import TestSupport
import Testing
import Workloads

@testable import Twin

/// The replica skips a walk of `waiting` that would examine the same window in the same state as
/// the last one, which admitted nothing and started no load (`Replica.fruitlessWalkGeneration`).
/// The skip must change nothing: every run here is simulated with and without it and compared
/// request by request.
@Suite("Skipping fruitless walks of the waiting queue")
struct FruitlessWalkTests {
    static func simulate(seed: UInt64, skip: Bool, dlora: Bool) -> (sim: Simulation<LinearCostModel>, skipped: Int) {
        let rng = RandomSource(seed: seed)
        // Many adapters, few slots, short lookahead windows: walks that find nothing are common.
        var engine = Fixtures.engine(
            seqs: 4 + rng.uniformInt(12), tokens: 128 + rng.uniformInt(384), blocks: 64 + rng.uniformInt(200),
            loras: 1 + rng.uniformInt(3), cpuLoras: 4 + rng.uniformInt(4))
        engine.schedulerLookahead = 1 + rng.uniformInt(12)
        let spec = GeneratorSpec(
            requests: 400, arrival: .gamma(rate: 40 + 60 * rng.uniform(), cv: 0.5 + 2 * rng.uniform()),
            popularity: [.uniform, .zipf(exponent: 1.2), .distinct][rng.uniformInt(3)],
            promptTokens: .uniform(low: 1, high: 300), outputTokens: .uniform(low: 1, high: 80),
            catalogue: CatalogueSpec(count: 8 + rng.uniformInt(24), ranks: [(8, 1), (64, 1)], alpha: 16, targetModules: ["q_proj"]))
        let trace = spec.generate(seed: seed)
        let cost = LinearCostModel(
            baseSeconds: 0.005, perPrefillTokenSeconds: 1e-5, perDecodeSequenceSeconds: 1e-4, hostToGPUSeconds: 0.02,
            diskToHostSeconds: 0.05)
        var sim = Simulation(
            trace: trace, config: engine, totalBlocks: engine.numGPUBlocks!, replicaCount: 1,
            placement: PlacementSpec.all.resolve(catalogue: trace.catalogue, replicas: 1), cost: cost,
            scheduler: dlora ? .dlora(DLoRAConfig()) : .fcfs)
        sim.replicas[0].skipsFruitlessWalks = skip
        var observer: InvariantObserver? = nil
        sim.run(observer: &observer)
        return (sim, sim.replicas[0].walkCounts.skipped)
    }

    @Test("with and without the skip, every request is scheduled, served and finished at the same times")
    func sameOutcome() {
        var skipped = 0
        for seed in UInt64(1)...30 {
            for dlora in [false, true] {
                let (a, n) = Self.simulate(seed: seed, skip: true, dlora: dlora)
                let (b, none) = Self.simulate(seed: seed, skip: false, dlora: dlora)
                #expect(none == 0)
                skipped += n
                #expect(a.replicas[0].iterations == b.replicas[0].iterations, "seed \(seed) dlora \(dlora)")
                for (i, (x, y)) in zip(a.requests, b.requests).enumerated() {
                    #expect(
                        x.firstScheduledSeconds == y.firstScheduledSeconds && x.firstTokenSeconds == y.firstTokenSeconds
                            && x.finishSeconds == y.finishSeconds && x.preemptions == y.preemptions && x.status == y.status,
                        "seed \(seed) dlora \(dlora) request \(i)")
                }
            }
        }
        // The runs do exercise the skip.
        #expect(skipped > 1000, "\(skipped) walks skipped")
    }
}
