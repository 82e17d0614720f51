import KernelProfiles
import Twin
import Workloads

/// Builders shared by the test suites.
public enum Fixtures {
    /// A catalogue of `count` adapters `a0`, `a1`, ... with the given ranks (cycled).
    public static func catalogue(_ count: Int, ranks: [Int] = [16]) -> AdapterCatalogue {
        AdapterCatalogue(
            (0..<count).map {
                AdapterSpec(
                    name: "a\($0)", rank: ranks[$0 % ranks.count], alpha: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"])
            })
    }

    /// The measured cost model of `profile` (Llama-2-7B, kernel `sgmv`) over one adapter `a` of
    /// `rank` (alpha = rank) on q_proj.
    public static func oneAdapterModel(_ profile: StepProfile, rank: Int) throws -> MeasuredCostModel {
        let cat = AdapterCatalogue([AdapterSpec(name: "a", rank: rank, alpha: Double(rank), targetModules: ["q_proj"])])
        return try MeasuredCostModel(profile: profile, kernel: "sgmv", model: .llama2_7b, catalogue: cat)
    }

    /// A trace from (arrival, adapter, prompt, output) tuples; ids are positions.
    public static func trace(_ rows: [(Double, Int, Int, Int)], adapters: Int) -> Trace {
        Trace(
            requests: rows.enumerated().map { i, r in
                TraceRequest(requestID: i, arrivalSeconds: r.0, adapter: r.1, promptTokens: r.2, outputTokens: r.3)
            }, catalogue: catalogue(adapters))
    }

    /// An engine configuration with small limits for hand-made cases.
    public static func engine(
        seqs: Int = 8, tokens: Int = 256, chunked: Bool = true, blocks: Int? = 64, loras: Int = 2, cpuLoras: Int = 3
    ) -> EngineConfig {
        var c = EngineConfig()
        c.maxNumSeqs = seqs
        c.maxNumBatchedTokens = tokens
        c.chunkedPrefill = chunked
        c.numGPUBlocks = blocks
        c.maxModelLen = 1024
        c.maxLoras = loras
        c.maxCPULoras = cpuLoras
        return c
    }

    /// Runs a simulation of `trace` with a linear cost model and returns it.
    public static func simulate<Cost: StepCostModel>(
        _ trace: Trace, engine: EngineConfig, cost: Cost, replicas: Int = 1, placement: PlacementSpec = .all
    ) -> Simulation<Cost> {
        var sim = Simulation(
            trace: trace, config: engine, totalBlocks: engine.numGPUBlocks ?? 64, replicaCount: replicas,
            placement: placement.resolve(catalogue: trace.catalogue, replicas: replicas), cost: cost)
        sim.run()
        return sim
    }
}

/// An observer that records every iteration and checks invariants as the run goes.
public struct InvariantObserver: IterationObserver {
    /// Iteration records in order.
    public var records: [IterationRecord] = []
    /// Batches in order: (request id, tokens).
    public var batches: [[(Int, Int)]] = []
    /// Violations found.
    public var violations: [String] = []
    /// Engine limits to check against.
    public let config: EngineConfig
    private var lastStart = -Double.infinity

    /// Creates an observer checking against `config`.
    public init(config: EngineConfig) { self.config = config }

    public mutating func observe(_ r: IterationRecord, replica: Replica, requests: [RequestState]) {
        records.append(r)
        batches.append(replica.batch.map { (requests[Int($0.request)].requestID, Int($0.tokens)) })
        if r.startSeconds < lastStart && replica.index == 0 { violations.append("start went back at iteration \(r.iteration)") }
        if replica.index == 0 { lastStart = r.startSeconds }
        if replica.batch.count > config.maxNumSeqs { violations.append("too many sequences") }
        if replica.batch.reduce(0, { $0 + Int($1.tokens) }) > config.maxNumBatchedTokens { violations.append("too many tokens") }
        if r.distinctAdapters > config.maxLoras { violations.append("too many adapters: \(r.distinctAdapters)") }
        if replica.freeBlocks < 0 || replica.freeBlocks > replica.totalBlocks { violations.append("free blocks \(replica.freeBlocks)") }
        let held = replica.running.reduce(0) { $0 + Int(requests[Int($1)].blocks) }
        if held + replica.freeBlocks != replica.totalBlocks {
            violations.append("blocks: held \(held) + free \(replica.freeBlocks) != \(replica.totalBlocks)")
        }
    }

    public mutating func observeIdlePass(replica: Replica, at time: Double, requests: [RequestState]) {}
}
