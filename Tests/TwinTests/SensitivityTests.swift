import Foundation
import TestSupport
import Testing
import Workloads

@testable import Twin

@Suite("Sensitivity of predictions to the step costs")
struct SensitivityTests {
    /// The summary of `trace` (one replica, one sequence at a time) with `cost`.
    func summary<Cost: StepCostModel>(_ trace: Trace, _ cost: Cost) -> RunSummary {
        let engine = Fixtures.engine(seqs: 1, tokens: 256, loras: 2, cpuLoras: 3)
        var sim = Simulation(
            trace: trace, config: engine, totalBlocks: 64, replicaCount: 1,
            placement: PlacementSpec.all.resolve(catalogue: trace.catalogue, replicas: 1), cost: cost)
        sim.run()
        return RunSummary(requests: sim.requests, replicas: sim.replicas, adapterCount: trace.catalogue.count)
    }

    let base = TraceRequest.baseModel
    let linear = LinearCostModel(baseSeconds: 0.01, hostToGPUSeconds: 0.003, diskToHostSeconds: 0.02, switchSeconds: 0.03)

    @Test("a scaled model scales every step and leaves loads and switches alone")
    func scaledModel() {
        let m = ScaledCostModel(base: linear, factor: 1.25)
        var b = StepBatch()
        b.prefillTokens = 16
        b.prefillSequences = 1
        b.decodeSequences = 3
        #expect(abs(m.stepSeconds(b) - 1.25 * linear.stepSeconds(b)) < 1e-15)
        #expect(m.loadSeconds(adapter: 0, fromDisk: true) == linear.loadSeconds(adapter: 0, fromDisk: true))
        #expect(m.switchSeconds(adapter: 0, merging: true) == linear.switchSeconds(adapter: 0, merging: true))
        #expect(m.label == linear.label)
        // Decode-only steps and steps with prefill tokens apart.
        let d = ScaledCostModel(base: linear, scale: StepScale(decode: 2, eager: 1))
        var decodeOnly = StepBatch()
        decodeOnly.decodeSequences = 3
        #expect(abs(d.stepSeconds(decodeOnly) - 2 * linear.stepSeconds(decodeOnly)) < 1e-15)
        #expect(d.stepSeconds(b) == linear.stepSeconds(b))
    }

    @Test("requests that never queue: latency moves one for one with the steps, throughput not at all")
    func noQueue() {
        // Three requests far apart, base-model only (no loads): every latency is steps alone.
        let trace = Fixtures.trace([(0, base, 16, 20), (5, base, 16, 20), (10, base, 16, 20)], adapters: 1)
        let d = 0.02
        let (point, cheaper, dearer) = (
            summary(trace, linear), summary(trace, ScaledCostModel(base: linear, factor: 1 - d)),
            summary(trace, ScaledCostModel(base: linear, factor: 1 + d))
        )
        for m in [ValidationMetric.ttftMean, .e2eMean, .e2eP99, .tpotMean] {
            #expect(abs(elasticity(m, point: point, cheaper: cheaper, dearer: dearer, delta: d) - 1) < 1e-9, "\(m.rawValue)")
        }
        // The rate over the makespan barely moves: the makespan is set by the arrivals.
        #expect(abs(elasticity(.requestsPerSecond, point: point, cheaper: cheaper, dearer: dearer, delta: d)) < 0.05)
        // Scaled apart: the first token comes from the prefill step alone; E2E splits between the
        // kinds, its parts adding up to the whole.
        func split(_ m: ValidationMetric, _ scale: (Double) -> StepScale) -> Double {
            elasticity(
                m, point: point, cheaper: summary(trace, ScaledCostModel(base: linear, scale: scale(1 - d))),
                dearer: summary(trace, ScaledCostModel(base: linear, scale: scale(1 + d))), delta: d)
        }
        let decodeOnly = { StepScale(decode: $0, eager: 1) }
        let eagerOnly = { StepScale(decode: 1, eager: $0) }
        #expect(abs(split(.ttftMean, eagerOnly) - 1) < 1e-9 && abs(split(.ttftMean, decodeOnly)) < 1e-9)
        #expect(abs(split(.e2eMean, eagerOnly) + split(.e2eMean, decodeOnly) - 1) < 1e-9)
        #expect(split(.e2eMean, decodeOnly) > 0.9)  // 19 decode steps and one prefill step
        // A metric that is 0 has no elasticity.
        #expect(elasticity(.preemptions, point: point, cheaper: cheaper, dearer: dearer, delta: d).isNaN)
    }

    @Test("at the knee a few percent of step cost moves the waiting many times over")
    func knee() {
        // One sequence at a time, 20 steps of 10 ms each (0.2 s); a request every 0.201 s: the
        // server is busy 99.5 % of the time, and 2 % dearer steps overload it.
        let rows = (0..<60).map { (Double($0) * 0.201, base, 16, 20) }
        let trace = Fixtures.trace(rows, adapters: 1)
        let d = 0.02
        let e = elasticity(
            .ttftMean, point: summary(trace, linear), cheaper: summary(trace, ScaledCostModel(base: linear, factor: 1 - d)),
            dearer: summary(trace, ScaledCostModel(base: linear, factor: 1 + d)), delta: d)
        #expect(e > 3, "elasticity \(e)")
    }
}
