import TestSupport
import Testing
import Twin
import Workloads

@Suite("Adapter slots, host cache and loads")
struct AdapterLoadingTests {
    let cost = LinearCostModel(
        baseSeconds: 0.01, perPrefillTokenSeconds: 0.001, perDecodeSequenceSeconds: 0.002, hostToGPUSeconds: 0.003,
        diskToHostSeconds: 0.02)

    @Test("a request waits for a slot held by another adapter's running request, then loads into it")
    func slotContention() {
        let trace = Fixtures.trace([(0, 0, 10, 3), (0, 1, 10, 3), (1.0, 0, 10, 3)], adapters: 2)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(loras: 1, cpuLoras: 2), cost: cost)
        let r = sim.requests
        // r0: disk load 0.023, prefill 0.02, two decodes 0.012 -> done at 0.067.
        #expect(abs(r[0].firstScheduledSeconds - 0.023) < 1e-12)
        #expect(abs(r[0].finishSeconds - 0.067) < 1e-12)
        // r1: its load could only start once a0 had no running request: 0.067 + 0.023.
        #expect(abs(r[1].firstScheduledSeconds - 0.090) < 1e-12)
        // r2 at 1.0: a0 was evicted from the slot but is still in host memory: 0.003.
        #expect(abs(r[2].firstScheduledSeconds - 1.003) < 1e-12)
        #expect(sim.replicas[0].hostAdapters == [0, 1])
        #expect(sim.replicas[0].residentAdapters == [0])
    }

    @Test("loads are serialised on one loader")
    func serialisedLoads() {
        let trace = Fixtures.trace([(0, 0, 10, 1), (0, 1, 10, 1)], adapters: 2)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(loras: 2, cpuLoras: 2), cost: cost)
        #expect(abs(sim.requests[0].firstScheduledSeconds - 0.023) < 1e-12)
        // The second load starts at 0 but waits for the loader: 0.023 + 0.023.
        #expect(abs(sim.requests[1].firstScheduledSeconds - 0.046) < 1e-12)
    }

    /// `cost` with a fixed excess on the step of a pass that orders a load.
    struct StretchedCost: StepCostModel {
        let base: LinearCostModel
        let host: Double
        let disk: Double
        var label: String { "stretched" }
        func stepSeconds(_ batch: StepBatch) -> Double { base.stepSeconds(batch) }
        func loadSeconds(adapter: Int, fromDisk: Bool) -> Double { base.loadSeconds(adapter: adapter, fromDisk: fromDisk) }
        func loadStepSeconds(adapter: Int, fromDisk: Bool) -> Double { fromDisk ? disk : host }
    }

    @Test("a load lengthens the step of the pass that orders it, once, by its source's excess")
    func loadLengthensItsStep() {
        // r0 (a0) decodes 99 steps from 0.043; r1 (a1, from disk) arrives at 0.5, while r0 runs.
        let trace = Fixtures.trace([(0, 0, 10, 100), (0.5, 1, 10, 2)], adapters: 2)
        let engine = Fixtures.engine(loras: 2, cpuLoras: 2)
        let plain = Fixtures.simulate(trace, engine: engine, cost: cost)
        let disk = Fixtures.simulate(trace, engine: engine, cost: StretchedCost(base: cost, host: 0.007, disk: 0.005))
        let host = Fixtures.simulate(trace, engine: engine, cost: StretchedCost(base: cost, host: 0.007, disk: 0))
        // r0's first load has no step to lengthen (the pass that orders it forms no batch); r1's
        // lengthens one step of r0, by the disk excess; the host excess applies to no load here.
        #expect(abs(disk.requests[0].finishSeconds - plain.requests[0].finishSeconds - 0.005) < 1e-12)
        #expect(abs(host.requests[0].finishSeconds - plain.requests[0].finishSeconds) < 1e-12)
        #expect(abs(disk.requests[0].firstScheduledSeconds - plain.requests[0].firstScheduledSeconds) < 1e-12)
    }

    @Test("the host cache evicts its least recently used adapter")
    func hostLRU() {
        // One slot, two host entries, three adapters used in turn: a2's disk load evicts a0.
        let trace = Fixtures.trace([(0, 0, 10, 1), (1, 1, 10, 1), (2, 2, 10, 1), (3, 0, 10, 1)], adapters: 3)
        let sim = Fixtures.simulate(trace, engine: Fixtures.engine(loras: 1, cpuLoras: 2), cost: cost)
        // a0 must come from disk again at t = 3.
        #expect(abs(sim.requests[3].firstScheduledSeconds - 3.023) < 1e-12)
        #expect(sim.replicas[0].hostAdapters == [0, 2])
    }
}
