import TestSupport
import Testing
import Twin
import Workloads

@Suite("Invariants over random runs")
struct InvariantTests {
    static let seeds: [UInt64] = Array(1...40)

    @Test("conservation, KV capacity, batch limits, monotone clock", arguments: seeds)
    func invariants(seed: UInt64) {
        let rng = RandomSource(seed: seed)
        let chunked = rng.uniform() < 0.7
        let engine = Fixtures.engine(
            seqs: 2 + rng.uniformInt(14), tokens: chunked ? 64 + rng.uniformInt(512) : 1024, chunked: chunked,
            blocks: 24 + rng.uniformInt(200), loras: 1 + rng.uniformInt(4), cpuLoras: 5 + rng.uniformInt(3))
        let spec = GeneratorSpec(
            requests: 300, arrival: .gamma(rate: 5 + 40 * rng.uniform(), cv: 0.5 + 2 * rng.uniform()),
            popularity: [.uniform, .zipf(exponent: 1.2), .distinct, .identical][rng.uniformInt(4)],
            promptTokens: .uniform(low: 1, high: 300), outputTokens: .uniform(low: 1, high: 120),
            catalogue: CatalogueSpec(count: 1 + rng.uniformInt(12), ranks: [(8, 1), (64, 1)], alpha: 16, targetModules: ["q_proj"]))
        let trace = spec.generate(seed: seed)
        let cost = LinearCostModel(
            baseSeconds: 0.005, perPrefillTokenSeconds: 1e-5, perDecodeSequenceSeconds: 1e-4, hostToGPUSeconds: 0.002,
            diskToHostSeconds: 0.01)
        let replicas = 1 + rng.uniformInt(3)
        var sim = Simulation(
            trace: trace, config: engine, totalBlocks: engine.numGPUBlocks!, replicaCount: replicas,
            placement: PlacementSpec.all.resolve(catalogue: trace.catalogue, replicas: replicas), cost: cost)
        var observer: InvariantObserver? = InvariantObserver(config: engine)
        sim.run(observer: &observer)
        #expect(observer!.violations.isEmpty, "\(observer!.violations.prefix(3))")
        let finished = sim.requests.filter { $0.status == .finished }
        let rejected = sim.requests.filter { $0.status == .rejected }
        #expect(finished.count + rejected.count == trace.requests.count)
        for r in finished {
            #expect(r.generated == r.outputTokens)
            #expect(r.arrivalSeconds <= r.firstScheduledSeconds)
            #expect(r.firstScheduledSeconds < r.firstTokenSeconds)
            #expect(r.firstTokenSeconds <= r.finishSeconds)
            #expect(r.blocks == 0)
        }
        for rep in sim.replicas {
            #expect(rep.freeBlocks == rep.totalBlocks)
            #expect(rep.running.isEmpty && rep.waiting.isEmpty)
        }
    }
}
