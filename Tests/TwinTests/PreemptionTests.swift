import TestSupport
import Testing
import Twin
import Workloads

@Suite("Preemption by recompute")
struct PreemptionTests {
    @Test("the newest request is preempted when a decode needs a block, and recomputes its prompt and output")
    func newestPreemptedAndRecomputed() {
        // 4 blocks of 16 tokens. A and B (16-token prompts, 40 outputs) each reach 2 blocks at
        // iteration 1; at iteration 17 A needs a third block, so B (newest) is preempted with 17
        // tokens generated. B waits (33 tokens need 3 blocks, 1 is free) until A finishes at
        // iteration 39, is readmitted at iteration 40 with a 33-token prefill that samples its
        // 18th token, and decodes 22 more iterations: 63 iterations of 0.01 s in all.
        let trace = Fixtures.trace(
            [(0, TraceRequest.baseModel, 16, 40), (0, TraceRequest.baseModel, 16, 40)], adapters: 0)
        let engine = Fixtures.engine(blocks: 4)
        var sim = Simulation(
            trace: trace, config: engine, totalBlocks: 4, replicaCount: 1, placement: [],
            cost: LinearCostModel(baseSeconds: 0.01))
        var observer: InvariantObserver? = InvariantObserver(config: engine)
        sim.run(observer: &observer)
        let batches = observer!.batches
        #expect(observer!.violations.isEmpty)
        #expect(sim.requests[0].preemptions == 0)
        #expect(sim.requests[1].preemptions == 1)
        #expect(batches.count == 63)
        #expect(batches[16].map(\.0) == [0, 1])
        #expect(batches[17].map(\.0) == [0])
        #expect(batches[40].count == 1 && batches[40][0] == (1, 33))
        #expect(abs(sim.requests[0].finishSeconds - 0.40) < 1e-9)
        #expect(abs(sim.requests[1].firstTokenSeconds - 0.01) < 1e-9)
        #expect(abs(sim.requests[1].finishSeconds - 0.63) < 1e-9)
    }
}
