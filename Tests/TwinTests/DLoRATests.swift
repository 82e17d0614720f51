import TestSupport
import Testing
import Workloads

@testable import Twin

/// Records batches (request ids), modes and switches.
struct ModeObserver: IterationObserver {
    var batches: [(mode: ServingMode, ids: [Int], start: Double)] = []
    var switches: [(merging: Bool, adapter: Int32, at: Double)] = []
    mutating func observe(_ r: IterationRecord, replica: Replica, requests: [RequestState]) {
        batches.append((r.batch.mode, replica.batch.map { requests[Int($0.request)].requestID }, r.startSeconds))
    }
    mutating func observeIdlePass(replica: Replica, at time: Double, requests: [RequestState]) {
        if let s = replica.switchStartedInPass { switches.append((s.merging, s.adapter, time)) }
    }
}

@Suite("dLoRA scheduler")
struct DLoRATests {
    let cost = LinearCostModel(
        baseSeconds: 0.01, perPrefillTokenSeconds: 0.0001, perDecodeSequenceSeconds: 0.001, hostToGPUSeconds: 0.003,
        diskToHostSeconds: 0.02, switchSeconds: 0.05)

    func run(_ rows: [(Double, Int, Int, Int)], adapters: Int, config: DLoRAConfig, seqs: Int = 4)
        -> (Simulation<LinearCostModel>, ModeObserver)
    {
        let trace = Fixtures.trace(rows, adapters: adapters)
        let engine = Fixtures.engine(seqs: seqs, tokens: 256, blocks: 256, loras: 2, cpuLoras: 4)
        var sim = Simulation(
            trace: trace, config: engine, totalBlocks: 256, replicaCount: 1,
            placement: PlacementSpec.all.resolve(catalogue: trace.catalogue, replicas: 1), cost: cost,
            scheduler: .dlora(config))
        var observer: ModeObserver? = ModeObserver()
        sim.run(observer: &observer)
        return (sim, observer!)
    }

    @Test("merges onto an adapter whose queue reaches R x max_num_seqs, serves only it, and unmerges below L")
    func mergeWhenOneDominates() {
        // 10 requests of a0 and one of a1 at t = 0; max_num_seqs 4: a0's queue 10 >= 1.5 x 4.
        let rows: [(Double, Int, Int, Int)] = (0..<10).map { _ in (0.0, 0, 10, 3) } + [(0.0, 1, 10, 3)]
        var c = DLoRAConfig()
        c.credits = false
        let (sim, obs) = run(rows, adapters: 2, config: c)
        #expect(sim.requests.allSatisfy { $0.status == .finished })
        #expect(obs.switches.first.map { $0.merging && $0.adapter == 0 } == true)
        #expect(obs.switches.contains { !$0.merging && $0.adapter == 0 })
        let merged = obs.batches.filter { $0.mode == .merged }
        #expect(!merged.isEmpty)
        #expect(merged.allSatisfy { $0.ids.allSatisfy { $0 < 10 } }, "a merged batch holds only a0's requests")
        // a1's request (id 10) runs only after the unmerge.
        let unmergeAt = obs.switches.first { !$0.merging }!.at
        #expect(sim.requests[10].firstScheduledSeconds > unmergeAt)
        // The switch takes the cost model's switch seconds: nothing runs for 0.05 s after it starts.
        let mergeAt = obs.switches[0].at
        #expect(obs.batches.allSatisfy { $0.start <= mergeAt || $0.start >= mergeAt + 0.05 - 1e-12 })
    }

    @Test("stays unmerged when no adapter's queue reaches the threshold")
    func noMergeWhenSpread() {
        let rows: [(Double, Int, Int, Int)] = (0..<12).map { (0.0, $0 % 4, 10, 3) }
        let (sim, obs) = run(rows, adapters: 4, config: DLoRAConfig())
        #expect(obs.switches.isEmpty)
        #expect(obs.batches.allSatisfy { $0.mode == .unmerged })
        #expect(sim.requests.allSatisfy { $0.status == .finished })
    }

    @Test("credits end a merged phase for a passed-over adapter sooner than without credits")
    func creditsBoundStarvation() {
        // A long stream of a0 keeps its queue above L; one a1 request arrives early.
        var rows: [(Double, Int, Int, Int)] = (0..<60).map { (Double($0) * 0.002, 0, 10, 8) }
        rows.insert((0.001, 1, 10, 8), at: 1)
        var with = DLoRAConfig()
        with.adaptive = false
        var without = with
        without.credits = false
        let (a, _) = run(rows, adapters: 2, config: with)
        let (b, _) = run(rows, adapters: 2, config: without)
        let waitWith = a.requests[1].firstScheduledSeconds - a.requests[1].arrivalSeconds
        let waitWithout = b.requests[1].firstScheduledSeconds - b.requests[1].arrivalSeconds
        #expect(waitWith < waitWithout, "with credits \(waitWith) s, without \(waitWithout) s")
        // Credit is conserved: N adapters x (N - 1) units.
        #expect(abs(a.replicas[0].credits.reduce(0, +) - 2 * 10_000) < 1e-6)
    }

    @Test("adaptive thresholds move after switches; a fixed configuration does not", arguments: [true, false])
    func adaptive(_ on: Bool) {
        let first: [(Double, Int, Int, Int)] = (0..<30).map { (Double($0) * 0.001, 0, 10, 3) }
        let second: [(Double, Int, Int, Int)] = (0..<8).map { (0.5 + Double($0) * 0.001, 1, 10, 3) }
        let rows = first + second
        var c = DLoRAConfig()
        c.adaptive = on
        let (sim, obs) = run(rows, adapters: 2, config: c)
        #expect(obs.switches.count >= 2)
        let t = sim.replicas[0].thresholds!
        #expect((t.merge != 1.5 || t.stay != 0.5) == on)
    }

    @Test("a merge waits for other adapters' running requests to drain (draft 1 stalled here)")
    func drainBeforeMerge() {
        // max_num_seqs 2: an a2 request and a base-model request run; six a1 requests then make
        // a1's queue reach R x 2. Draft 1 merged at once with both seats held by parked requests
        // and never ran again; draft 2 drains them first (a1's requests take the freed seats),
        // then merges while a1 still has enough waiting.
        let rows: [(Double, Int, Int, Int)] =
            [(0, 2, 10, 40), (0, TraceRequest.baseModel, 10, 40)] + (0..<6).map { _ in (0.1, 1, 10, 3) }
        var c = DLoRAConfig()
        c.mergeRatio = 1.0
        c.credits = false
        c.adaptive = false
        let (sim, obs) = run(rows, adapters: 3, config: c, seqs: 2)
        #expect(sim.requests.allSatisfy { $0.status == .finished })
        let merge = obs.switches.first { $0.merging && $0.adapter == 1 }
        #expect(merge != nil)
        // The merge starts only after the a2 and base-model requests (ids 0 and 1) finished.
        #expect(merge.map { $0.at >= max(sim.requests[0].finishSeconds, sim.requests[1].finishSeconds) } == true)
    }

    @Test("a dLoRA scenario parses with its parameters; bad values are named")
    func parsing() throws {
        let base = "workload: {requests: 3, arrival: {kind: poisson, rate: 1}}\n"
        let s = try Scenario.parse(
            "scheduler: {kind: dlora, merge_ratio: 2, credits: false, switch_cost: 0.1}\n" + base, file: "s.yaml", baseDirectory: ".")
        guard case .dlora(let c) = s.scheduler else {
            Issue.record("expected dlora")
            return
        }
        #expect(c.mergeRatio == 2 && !c.credits && c.switchSeconds == 0.1 && c.stayRatio == 0.5)
        #expect(throws: WorkloadError.self) {
            try Scenario.parse("scheduler: {kind: dlora, switch_cost: soon}\n" + base, file: "s.yaml", baseDirectory: ".")
        }
        #expect(throws: WorkloadError.self) { try Scenario.parse("scheduler: lottery\n" + base, file: "s.yaml", baseDirectory: ".") }
        let d = try Scenario.parse("scheduler: {kind: dlora, speed: decode}\n" + base, file: "s.yaml", baseDirectory: ".")
        guard case .dlora(let dc) = d.scheduler else {
            Issue.record("expected dlora")
            return
        }
        #expect(dc.speedFromDecodeOnly && !c.speedFromDecodeOnly && dc.drainCredit)
        let dr = try Scenario.parse("scheduler: {kind: dlora, drain_credit: false}\n" + base, file: "s.yaml", baseDirectory: ".")
        guard case .dlora(let drc) = dr.scheduler, !drc.drainCredit else {
            Issue.record("expected dlora without drain_credit (draft 2)")
            return
        }
        do {
            _ = try Scenario.parse("scheduler: {kind: dlora, speed: fast}\n" + base, file: "s.yaml", baseDirectory: ".")
            Issue.record("expected an error")
        } catch { #expect(error.field == "scheduler.speed") }
        let aged = try Scenario.parse("scheduler: {kind: dlora, max_wait_s: 2.5}\n" + base, file: "s.yaml", baseDirectory: ".")
        guard case .dlora(let ac) = aged.scheduler, ac.maxWaitSeconds == 2.5, c.maxWaitSeconds == nil else {
            Issue.record("expected dlora with max_wait_s 2.5 (and none by default)")
            return
        }
        for bad in ["0", "-1", "soon"] {
            do {
                _ = try Scenario.parse("scheduler: {kind: dlora, max_wait_s: \(bad)}\n" + base, file: "s.yaml", baseDirectory: ".")
                Issue.record("expected an error for max_wait_s \(bad)")
            } catch { #expect(error.field == "scheduler.max_wait_s") }
        }
        // L > R would merge and unmerge at once, forever.
        do {
            _ = try Scenario.parse(
                "scheduler: {kind: dlora, merge_ratio: 0.5, stay_ratio: 0.6}\n" + base, file: "s.yaml", baseDirectory: ".")
            Issue.record("expected an error")
        } catch { #expect(error.field == "scheduler.stay_ratio" && error.line == 1) }
    }

    @Test("with speed: decode, only decode-only iterations measure a mode's speed")
    func decodeSpeeds() {
        var c = DLoRAConfig()
        var tokens = DLoRAState(config: c, adapters: 2)
        c.speedFromDecodeOnly = true
        var decode = DLoRAState(config: c, adapters: 2)
        // A merged iteration full of prefill (2048 tokens in 50 ms), then a decode-only one (32 in 10 ms).
        tokens.record(tokens: 2048, prefillTokens: 2016, seconds: 0.05, merged: true)
        tokens.record(tokens: 32, prefillTokens: 0, seconds: 0.01, merged: true)
        decode.record(tokens: 2048, prefillTokens: 2016, seconds: 0.05, merged: true)
        decode.record(tokens: 32, prefillTokens: 0, seconds: 0.01, merged: true)
        let ewma: Double = 0.8 * 40_960 + 0.2 * 3200
        #expect(abs(tokens.speedMerged - ewma) < 1e-6)
        #expect(abs(decode.speedMerged - 3200) < 1e-9)
        #expect(decode.speedUnmerged.isNaN)
    }
}
