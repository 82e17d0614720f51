import TestSupport
import Testing
import Twin
import Workloads

@Suite("Hand-computed latencies")
struct HandComputedLatencyTests {
    let cost = LinearCostModel(
        baseSeconds: 0.01, perPrefillTokenSeconds: 0.001, perDecodeSequenceSeconds: 0.002, hostToGPUSeconds: 0.003,
        diskToHostSeconds: 0.02)

    @Test("a base-model request: TTFT is one prefill step, E2E adds one decode step per further token")
    func baseModelRequest() {
        let trace = Fixtures.trace([(1.0, TraceRequest.baseModel, 100, 5)], adapters: 0)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(), cost: cost)
        let r = sim.requests[0]
        // Prefill of 100 tokens: 0.01 + 100 * 0.001 = 0.11 s; then 4 decode steps of 0.012 s.
        #expect(abs(r.firstScheduledSeconds - 1.0) < 1e-12)
        #expect(abs((r.firstTokenSeconds - r.arrivalSeconds) - 0.11) < 1e-12)
        #expect(abs((r.finishSeconds - r.arrivalSeconds) - (0.11 + 4 * 0.012)) < 1e-12)
        #expect(r.preemptions == 0)
        #expect(sim.replicas[0].iterations == 5)
    }

    @Test("an adapter request waits for its load from disk, then runs as above")
    func coldAdapterRequest() {
        let trace = Fixtures.trace([(0.5, 0, 100, 5)], adapters: 1)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(), cost: cost)
        let r = sim.requests[0]
        let load = 0.02 + 0.003
        #expect(abs((r.firstScheduledSeconds - r.arrivalSeconds) - load) < 1e-12)
        #expect(abs((r.firstTokenSeconds - r.arrivalSeconds) - (load + 0.11)) < 1e-12)
        #expect(abs((r.finishSeconds - r.arrivalSeconds) - (load + 0.11 + 4 * 0.012)) < 1e-12)
    }

    @Test("chunked prefill splits a long prompt over the token budget")
    func chunkedPrefill() {
        // 600 prompt tokens, budget 256: chunks 256, 256, 88 (the last samples the first token).
        let trace = Fixtures.trace([(0, TraceRequest.baseModel, 600, 2)], adapters: 0)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(blocks: 64), cost: cost)
        let r = sim.requests[0]
        let ttft = (0.01 + 0.256) * 2 + (0.01 + 0.088)
        #expect(abs(r.firstTokenSeconds - ttft) < 1e-12)
        #expect(abs(r.finishSeconds - (ttft + 0.012)) < 1e-12)
        #expect(sim.replicas[0].iterations == 4)
    }

    @Test("two requests share decode steps: continuous batching")
    func continuousBatching() {
        // Both arrive at 0: one iteration prefills both (20 + 30 tokens), then decode steps of two.
        let trace = Fixtures.trace(
            [(0, TraceRequest.baseModel, 20, 3), (0, TraceRequest.baseModel, 30, 2)], adapters: 0)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(), cost: cost)
        let prefill = 0.01 + 0.05
        let decode2 = 0.01 + 2 * 0.002
        let decode1 = 0.01 + 0.002
        #expect(abs(sim.requests[1].finishSeconds - (prefill + decode2)) < 1e-12)
        #expect(abs(sim.requests[0].finishSeconds - (prefill + decode2 + decode1)) < 1e-12)
    }
}
