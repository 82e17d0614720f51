import Workloads

/// Which step-cost model a scenario uses.
public enum CostModelSpec: Sendable, Equatable {
    /// The roofline model from the GPU and model specs (label `analytic`).
    case analytic
    /// Fixed coefficients (label `linear`).
    case linear(LinearCostModel)
    /// A measured profile directory (relative to the scenario), the LoRA kernel to cost, whether
    /// decode-only steps take a closed-loop correction (`DecodeCorrection`; `closed_loop: false`
    /// in the scenario, `--no-closed-loop` on the CLI), and whose: the profile's own when it has
    /// one, or the closed loop of another profile directory (`closed_loop_from: DIR`, relative to
    /// the scenario; `--closed-loop-from` on the CLI), priced with this profile's tables; and
    /// whether a load lengthens the step that orders it where the profile measures it (`load_step:
    /// false` in the scenario, `--no-load-step` on the CLI, leave it out). `closed_loop_eager`
    /// (`--closed-loop-eager` / `--no-closed-loop-eager`) scales the steps with prefill tokens by the
    /// closed loop's factor per token graph as well (off by default since lease 9da212b-1's pooled
    /// Rule 4, on from lease 3a804f7-1 until then; docs/validation.md).
    case measured(
        profile: String, kernel: String, closedLoop: Bool = true, closedLoopFrom: String? = nil, loadStep: Bool = true,
        eagerCorrection: Bool = MeasuredCostModel.eagerCorrectionDefault)
    /// Not given in the scenario: the measured profile `profiles/<gpu>-<model>` if one is found
    /// in the scenario's folder or a parent of it (or of the working directory), else analytic.
    case automatic
}

/// Which replicas host which adapters.
public enum PlacementSpec: Sendable, Equatable {
    /// Every replica hosts every adapter.
    case all
    /// Adapter i goes to replicas i, i+1, ..., i+copies-1 (mod the replica count).
    case roundRobin(copies: Int)
    /// Named adapters to replica lists; adapters not named are hosted everywhere.
    case explicit([String: [Int]])

    /// The replicas of each adapter of `catalogue`.
    public func resolve(catalogue: AdapterCatalogue, replicas: Int) -> [[Int]] {
        (0..<catalogue.count).map { i in
            switch self {
            case .all: return Array(0..<replicas)
            case .roundRobin(let copies):
                return (0..<min(copies, replicas)).map { (i + $0) % replicas }.sorted()
            case .explicit(let map): return map[catalogue[i].name] ?? Array(0..<replicas)
            }
        }
    }
}

/// A what-if scenario: model, GPU, engine limits, replicas, placement, cost model and workload
/// (format in docs/scenario.md).
public struct Scenario: Sendable {
    /// Name, for reports.
    public var name: String
    /// Seed of every random choice in the run.
    public var seed: UInt64
    /// The served model.
    public var model: ModelSpec
    /// The GPU of every replica.
    public var gpu: GPUSpec
    /// Step-cost model.
    public var costModel: CostModelSpec
    /// Engine limits.
    public var engine: EngineConfig
    /// Number of replicas.
    public var replicas: Int
    /// Adapter placement.
    public var placement: PlacementSpec
    /// The replica scheduler.
    public var scheduler: SchedulerSpec = .fcfs
    /// Where requests come from.
    public var workload: WorkloadSpec
    /// Directory relative paths in the scenario resolve against.
    public var baseDirectory: String

    /// Parses a scenario from YAML text.
    /// - Parameters:
    ///   - file: the file name for errors.
    ///   - baseDirectory: where relative paths (trace files) are found.
    public static func parse(_ text: String, file: String, baseDirectory: String) throws(WorkloadError) -> Scenario {
        let y = try YAMLReader.parse(text, file: file)
        try y.checkKeys(["name", "seed", "model", "gpu", "cost_model", "engine", "replicas", "placement", "workload", "scheduler"])
        let model = try parseModel(y)
        let gpu = try parseGPU(y)
        let engine = try parseEngine(y)
        guard let w = try y.mapping("workload") else { throw y.error("workload", "missing; a trace file or a generator") }
        let seedValue = try y.int("seed", min: 0) ?? 0
        var s = Scenario(
            name: try y.string("name") ?? "scenario", seed: UInt64(seedValue), model: model, gpu: gpu,
            costModel: try parseCostModel(y), engine: engine, replicas: try y.int("replicas", min: 1) ?? 1,
            placement: try parsePlacement(y), workload: try WorkloadSpec.parse(w), baseDirectory: baseDirectory)
        if case .roundRobin(let c) = s.placement, c < 1 { throw y.error("placement", "copies must be at least 1") }
        if case .explicit(let map) = s.placement {
            for (name, list) in map where list.isEmpty || list.contains(where: { $0 < 0 || $0 >= s.replicas }) {
                throw y.error("placement", "adapter '\(name)': replicas must be a non-empty list within 0..<\(s.replicas)")
            }
        }
        s.name = s.name.isEmpty ? "scenario" : s.name
        s.scheduler = try parseScheduler(y)
        return s
    }

    private static func parseScheduler(_ y: YAMLReader) throws(WorkloadError) -> SchedulerSpec {
        guard let node = try y.kinded("scheduler") else { return .fcfs }
        switch node.kind {
        case "fcfs":
            try node.body?.checkKeys(["kind"])
            return .fcfs
        case "dlora":
            var c = DLoRAConfig()
            guard let b = node.body else { return .dlora(c) }
            try b.checkKeys([
                "kind", "credit_unit", "merge_ratio", "stay_ratio", "adaptive", "credits", "switch_cost", "speed", "drain_credit",
                "max_wait_s",
            ])
            c.creditUnit = try b.double("credit_unit", positive: true) ?? c.creditUnit
            c.mergeRatio = try b.double("merge_ratio", min: 0) ?? c.mergeRatio
            c.stayRatio = try b.double("stay_ratio", min: 0) ?? c.stayRatio
            c.adaptive = try b.bool("adaptive") ?? c.adaptive
            c.credits = try b.bool("credits") ?? c.credits
            c.drainCredit = try b.bool("drain_credit") ?? c.drainCredit
            c.maxWaitSeconds = try b.double("max_wait_s", positive: true)
            if c.stayRatio > c.mergeRatio {
                throw b.error(
                    "stay_ratio",
                    "must not exceed merge_ratio (\(c.mergeRatio)); found \(c.stayRatio) (a replica would merge and unmerge at once, forever)"
                )
            }
            switch try b.string("speed") {
            case nil, "tokens": c.speedFromDecodeOnly = false
            case "decode": c.speedFromDecodeOnly = true
            case let v?: throw b.error("speed", "expected tokens or decode, found '\(v)'")
            }
            if let v = try b.string("switch_cost"), v != "model" {
                guard let x = Double(v), x >= 0, x.isFinite else {
                    throw b.error("switch_cost", "expected seconds (a number at least 0) or 'model', found '\(v)'")
                }
                c.switchSeconds = x
            }
            return .dlora(c)
        default: throw y.error("scheduler", "unknown kind '\(node.kind)'; expected fcfs or dlora")
        }
    }

    private static func parseModel(_ y: YAMLReader) throws(WorkloadError) -> ModelSpec {
        guard let node = try y.kinded("model") else { return .llama2_7b }
        if node.body == nil {
            guard let m = ModelSpec.builtIn[node.kind] else {
                throw y.error("model", "unknown model '\(node.kind)'; built in: \(ModelSpec.builtIn.keys.sorted().joined(separator: ", "))")
            }
            return m
        }
        throw y.error("model", "give a built-in model name")
    }

    private static func parseGPU(_ y: YAMLReader) throws(WorkloadError) -> GPUSpec {
        if let node = y.node("gpu"), node.scalar != nil, let name = try y.string("gpu") {
            guard let g = GPUSpec.builtIn[name] else {
                throw y.error("gpu", "unknown GPU '\(name)'; built in: \(GPUSpec.builtIn.keys.sorted().joined(separator: ", "))")
            }
            return g
        }
        guard let m = try y.mapping("gpu") else { return .h100 }
        try m.checkKeys([
            "base", "memory_gb", "peak_tflops", "hbm_gb_per_s", "host_to_device_gb_per_s", "disk_to_host_gb_per_s",
            "load_latency_s", "iteration_overhead_s", "per_sequence_overhead_s", "lora_launch_s", "matmul_efficiency",
            "bandwidth_efficiency",
        ])
        let baseName = try m.string("base") ?? "h100"
        guard var g = GPUSpec.builtIn[baseName] else { throw m.error("base", "unknown GPU '\(baseName)'") }
        g.name = baseName + "-custom"
        if let v = try m.double("memory_gb", positive: true) { g.memoryBytes = v * 1e9 }
        if let v = try m.double("peak_tflops", positive: true) { g.peakFlopsPerSecond = v * 1e12 }
        if let v = try m.double("hbm_gb_per_s", positive: true) { g.memoryBytesPerSecond = v * 1e9 }
        if let v = try m.double("host_to_device_gb_per_s", positive: true) { g.hostToDeviceBytesPerSecond = v * 1e9 }
        if let v = try m.double("disk_to_host_gb_per_s", positive: true) { g.diskToHostBytesPerSecond = v * 1e9 }
        if let v = try m.double("load_latency_s", min: 0) { g.loadLatencySeconds = v }
        if let v = try m.double("iteration_overhead_s", min: 0) { g.iterationOverheadSeconds = v }
        if let v = try m.double("per_sequence_overhead_s", min: 0) { g.perSequenceOverheadSeconds = v }
        if let v = try m.double("lora_launch_s", min: 0) { g.loraLaunchSeconds = v }
        if let v = try m.double("matmul_efficiency", positive: true) { g.matmulEfficiency = v }
        if let v = try m.double("bandwidth_efficiency", positive: true) { g.bandwidthEfficiency = v }
        return g
    }

    private static func parseCostModel(_ y: YAMLReader) throws(WorkloadError) -> CostModelSpec {
        guard let node = try y.kinded("cost_model") else { return .automatic }
        switch node.kind {
        case "analytic":
            try node.body?.checkKeys(["kind"])
            return .analytic
        case "linear":
            guard let b = node.body else { throw y.error("cost_model", "linear needs its coefficients") }
            try b.checkKeys(["kind", "base_s", "per_prefill_token_s", "per_decode_seq_s", "host_to_gpu_s", "disk_to_host_s", "switch_s"])
            guard let base = try b.double("base_s", positive: true) else { throw b.error("base_s", "missing; seconds per iteration (> 0)") }
            return .linear(
                LinearCostModel(
                    baseSeconds: base, perPrefillTokenSeconds: try b.double("per_prefill_token_s", min: 0) ?? 0,
                    perDecodeSequenceSeconds: try b.double("per_decode_seq_s", min: 0) ?? 0,
                    hostToGPUSeconds: try b.double("host_to_gpu_s", min: 0) ?? 0,
                    diskToHostSeconds: try b.double("disk_to_host_s", min: 0) ?? 0,
                    switchSeconds: try b.double("switch_s", min: 0) ?? 0.02))
        case "measured":
            guard let b = node.body else { throw y.error("cost_model", "measured needs {kind: measured, profile: DIR}") }
            try b.checkKeys(["kind", "profile", "kernel", "closed_loop", "closed_loop_from", "load_step", "closed_loop_eager"])
            let closedLoop = try b.bool("closed_loop") ?? true
            let from = try b.string("closed_loop_from")
            if !closedLoop && from != nil {
                throw b.error("closed_loop_from", "given with closed_loop: false; leave out one of the two")
            }
            let eager = try b.bool("closed_loop_eager") ?? MeasuredCostModel.eagerCorrectionDefault
            if !closedLoop && eager {
                throw b.error("closed_loop_eager", "given with closed_loop: false; leave out one of the two")
            }
            return .measured(
                profile: try b.requiredString("profile"), kernel: try b.string("kernel") ?? "sgmv", closedLoop: closedLoop,
                closedLoopFrom: from, loadStep: try b.bool("load_step") ?? true, eagerCorrection: eager)
        default: throw y.error("cost_model", "unknown kind '\(node.kind)'; expected analytic, linear or measured")
        }
    }

    private static func parseEngine(_ y: YAMLReader) throws(WorkloadError) -> EngineConfig {
        var c = EngineConfig()
        guard let e = try y.mapping("engine") else { return c }
        try e.checkKeys([
            "max_num_seqs", "max_num_batched_tokens", "chunked_prefill", "block_size", "num_gpu_blocks",
            "gpu_memory_utilization", "activation_reserve_gib", "max_model_len", "max_loras", "max_lora_rank",
            "max_cpu_loras", "scheduler_lookahead",
        ])
        c.maxNumSeqs = try e.int("max_num_seqs", min: 1) ?? c.maxNumSeqs
        c.maxNumBatchedTokens = try e.int("max_num_batched_tokens", min: 1) ?? c.maxNumBatchedTokens
        c.chunkedPrefill = try e.bool("chunked_prefill") ?? c.chunkedPrefill
        c.blockSize = try e.int("block_size", min: 1) ?? c.blockSize
        c.numGPUBlocks = try e.int("num_gpu_blocks", min: 1)
        c.gpuMemoryUtilization = try e.double("gpu_memory_utilization", positive: true) ?? c.gpuMemoryUtilization
        if c.gpuMemoryUtilization > 1 { throw e.error("gpu_memory_utilization", "must be at most 1") }
        c.activationReserveGiB = try e.double("activation_reserve_gib", min: 0) ?? c.activationReserveGiB
        c.maxModelLen = try e.int("max_model_len", min: 2) ?? c.maxModelLen
        c.maxLoras = try e.int("max_loras", min: 1) ?? c.maxLoras
        c.maxLoraRank = try e.int("max_lora_rank", min: 1) ?? c.maxLoraRank
        c.maxCPULoras = try e.int("max_cpu_loras", min: 1) ?? c.maxCPULoras
        c.schedulerLookahead = try e.int("scheduler_lookahead", min: 1) ?? c.schedulerLookahead
        if c.maxCPULoras < c.maxLoras {
            throw e.error("max_cpu_loras", "must be at least max_loras (\(c.maxLoras)); found \(c.maxCPULoras)")
        }
        if !c.chunkedPrefill && c.maxNumBatchedTokens < c.maxModelLen {
            throw e.error(
                "max_num_batched_tokens",
                "without chunked prefill it must be at least max_model_len (\(c.maxModelLen)); found \(c.maxNumBatchedTokens)")
        }
        return c
    }

    private static func parsePlacement(_ y: YAMLReader) throws(WorkloadError) -> PlacementSpec {
        guard let node = try y.kinded("placement") else { return .all }
        switch node.kind {
        case "all": return .all
        case "round_robin":
            try node.body?.checkKeys(["kind", "copies"])
            return .roundRobin(copies: try node.body?.int("copies", min: 1) ?? 1)
        case "explicit":
            guard let b = node.body, let m = try b.mapping("map") else {
                throw y.error("placement", "explicit placement needs map: {adapter: [replica, ...]}")
            }
            try b.checkKeys(["kind", "map"])
            var out: [String: [Int]] = [:]
            for k in m.keys {
                let items = try m.strings(k) ?? []
                var list: [Int] = []
                for s in items {
                    guard let v = Int(s) else { throw m.error(k, "expected replica indices, found '\(s)'") }
                    list.append(v)
                }
                out[k] = list
            }
            return .explicit(out)
        default: throw y.error("placement", "unknown kind '\(node.kind)'; expected all, round_robin or explicit")
        }
    }
}
