import Foundation
import KernelProfiles
import Workloads

/// The result of running a scenario.
public struct RunResult: Sendable {
    /// The scenario run.
    public var scenario: Scenario
    /// Label of the step-cost model (`analytic`, `linear`, ...).
    public var costModelLabel: String
    /// KV-cache blocks per replica.
    public var blocksPerReplica: Int
    /// The trace's adapters.
    public var catalogue: AdapterCatalogue
    /// Per-run metrics.
    public var summary: RunSummary
    /// Events handled by the event loop.
    public var events: Int
    /// Walks of the replicas' waiting queues, summed (twin-bench prints them).
    public var walks = WalkCounts()
}

/// Runs scenarios: builds the trace, the cost model and the replicas, runs the event loop, and
/// writes the outputs atomically.
public enum ScenarioRunner {
    /// Output files to write; nil fields are skipped.
    public struct Outputs: Sendable {
        /// Directory for `requests.csv`, `iterations.csv` and `summary.json`.
        public var directory: String?
        /// Path of the batch log (JSONL).
        public var batchLog: String?
        /// Creates the output selection.
        public init(directory: String? = nil, batchLog: String? = nil) {
            self.directory = directory
            self.batchLog = batchLog
        }
    }

    /// Checks the catalogue against the engine and builds the trace.
    public static func makeTrace(_ s: Scenario) throws(WorkloadError) -> Trace {
        let trace = try s.workload.makeTrace(baseDirectory: s.baseDirectory, seed: s.seed)
        for a in trace.catalogue.adapters {
            if a.rank > s.engine.maxLoraRank {
                throw WorkloadError(
                    file: "<scenario \(s.name)>", field: "engine.max_lora_rank",
                    "adapter '\(a.name)' has rank \(a.rank), above max_lora_rank \(s.engine.maxLoraRank)")
            }
            if let m = a.targetModules.first(where: { s.model.moduleShape($0) == nil }) {
                throw WorkloadError(
                    file: "<scenario \(s.name)>", field: "target_modules",
                    "adapter '\(a.name)' targets '\(m)', which \(s.model.name) does not have; expected \(ModelSpec.projectionModules.joined(separator: ", "))"
                )
            }
        }
        return trace
    }

    /// KV blocks per replica: the scenario's `num_gpu_blocks`, or derived from memory.
    public static func blocks(_ s: Scenario, catalogue: AdapterCatalogue) -> Int {
        if let n = s.engine.numGPUBlocks { return n }
        var modules = Set(catalogue.adapters.flatMap(\.targetModules))
        if modules.isEmpty { modules = ["q_proj", "k_proj", "v_proj", "o_proj"] }
        return s.engine.derivedBlocks(model: s.model, gpu: s.gpu, slotModules: modules.sorted())
    }

    /// Runs `scenario` on `trace` and writes the outputs. Nothing is written unless the whole
    /// run succeeds.
    /// - Parameter horizon: stop the simulation after this many simulated seconds (to compare
    ///   with a live run that was stopped early); requests unfinished then are not counted.
    /// Where `cost_model: automatic` looks for a profile: `profiles/<gpu>-<model>` (e.g.
    /// `profiles/h100-llama2-7b`) in `start` or any parent folder.
    public static func findProfile(_ s: Scenario, from start: String) -> String? {
        let gpu = s.gpu.name.split(separator: "-").first.map(String.init) ?? s.gpu.name
        let model = s.model.name.replacingOccurrences(of: "llama-2", with: "llama2")
        let name = "profiles/\(gpu)-\(model)"
        var dir = URL(fileURLWithPath: start).standardizedFileURL
        for _ in 0..<12 {
            let candidate = dir.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: candidate + "/step_decode.csv") { return candidate }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return nil
    }

    /// `--no-closed-loop` of `simulate` and `validate`: the scenario with its measured cost model
    /// (named, or found as `automatic` finds it) without the profile's closed-loop correction;
    /// other cost models unchanged.
    public static func withoutClosedLoop(_ s: Scenario) -> Scenario {
        withMeasured(s) { dir, kernel, _, _, loadStep, _ in
            .measured(profile: dir, kernel: kernel, closedLoop: false, loadStep: loadStep, eagerCorrection: false)
        }
    }

    /// `--closed-loop-eager` / `--no-closed-loop-eager` of `simulate`, `validate` and `profile
    /// price`: the scenario with its measured cost model (named, or found as `automatic` finds it)
    /// correcting the steps with prefill tokens by its closed loop as well (`on`), or only the
    /// decode-only steps; other cost models unchanged.
    public static func withEagerCorrection(_ s: Scenario, _ on: Bool) -> Scenario {
        withMeasured(s) { dir, kernel, closedLoop, from, loadStep, _ in
            .measured(profile: dir, kernel: kernel, closedLoop: closedLoop, closedLoopFrom: from, loadStep: loadStep, eagerCorrection: on)
        }
    }

    /// `--load-step` / `--no-load-step` of `simulate` and `validate`: the scenario with its measured
    /// cost model (named, or found as `automatic` finds it) with (`on`) or without a load's excess on
    /// the step that orders it (the profile's `host_step` / `disk_step` rows); other cost models
    /// unchanged.
    public static func withLoadStep(_ s: Scenario, _ on: Bool) -> Scenario {
        withMeasured(s) { dir, kernel, closedLoop, from, _, eager in
            .measured(profile: dir, kernel: kernel, closedLoop: closedLoop, closedLoopFrom: from, loadStep: on, eagerCorrection: eager)
        }
    }

    /// `--closed-loop-from DIR` of `simulate` and `validate`: the scenario with its measured cost
    /// model (named, or found as `automatic` finds it) corrected by the closed loop of the profile
    /// directory `from` (absolute, or relative to the scenario's folder) instead of its own; other
    /// cost models unchanged.
    public static func withClosedLoop(_ s: Scenario, from: String) -> Scenario {
        withMeasured(s) { dir, kernel, _, _, loadStep, eager in
            .measured(profile: dir, kernel: kernel, closedLoop: true, closedLoopFrom: from, loadStep: loadStep, eagerCorrection: eager)
        }
    }

    /// The scenario with its measured cost model (named, or found as `automatic` finds it) replaced
    /// by `change` of its parts (profile, kernel, closed loop, lender, load step, eager correction);
    /// other cost models unchanged.
    private static func withMeasured(
        _ s: Scenario, _ change: (String, String, Bool, String?, Bool, Bool) -> CostModelSpec
    ) -> Scenario {
        var out = s
        if case .measured(let dir, let kernel, let closedLoop, let from, let loadStep, let eager) = resolvedCostModel(s) {
            out.costModel = change(dir, kernel, closedLoop, from, loadStep, eager)
        }
        return out
    }

    /// Which closed loop corrects a measured cost model's decode-only steps.
    public enum ClosedLoopSource: Sendable, Equatable {
        /// Turned off (`closed_loop: false`, `--no-closed-loop`).
        case off
        /// On, but the profile has no closed-loop steps for the kernel or `none`.
        case absent
        /// The profile's own.
        case own
        /// Another profile's (`closed_loop_from`), its directory resolved against the scenario's.
        case borrowed(String)
    }

    /// The scenario's closed-loop source; nil for a cost model that is not measured.
    public static func closedLoopSource(_ s: Scenario) -> ClosedLoopSource? {
        guard case .measured(let dir, let kernel, let closedLoop, let from, _, _) = resolvedCostModel(s) else { return nil }
        if !closedLoop { return .off }
        if let from { return .borrowed(resolvedPath(from, against: s.baseDirectory)) }
        let own = resolvedPath(dir, against: s.baseDirectory)
        return [kernel, "none"].contains { DecodeCorrection.exists(profile: own, variant: $0) } ? .own : .absent
    }

    /// The cost model a scenario will use, resolved (`automatic` becomes `measured` or `analytic`).
    public static func resolvedCostModel(_ s: Scenario) -> CostModelSpec {
        guard case .automatic = s.costModel else { return s.costModel }
        if let p = findProfile(s, from: s.baseDirectory) ?? findProfile(s, from: FileManager.default.currentDirectoryPath) {
            return .measured(profile: p, kernel: "sgmv")
        }
        return .analytic
    }

    /// Runs the scenario with its cost model (resolved as `resolvedCostModel` says), writing the
    /// outputs asked for; stops at `horizon` seconds of simulated time.
    public static func run(
        _ s: Scenario, trace: Trace, outputs: Outputs = Outputs(), progress: ((Double) -> Void)? = nil,
        horizon: Double = .infinity, stepScale: StepScale = .one
    ) throws -> RunResult {
        // A `stepScale` other than `.one` runs the scenario's model with its steps that many times
        // as long (`ScaledCostModel`; `loratwin validate --sensitivity`).
        func go<Cost: StepCostModel>(_ cost: Cost) throws -> RunResult {
            if stepScale == .one { return try run(s, trace: trace, cost: cost, outputs: outputs, progress: progress, horizon: horizon) }
            return try run(
                s, trace: trace, cost: ScaledCostModel(base: cost, scale: stepScale), outputs: outputs, progress: progress,
                horizon: horizon)
        }
        switch resolvedCostModel(s) {
        case .automatic:
            preconditionFailure("resolvedCostModel never returns automatic")
        case .analytic:
            return try go(AnalyticCostModel(model: s.model, gpu: s.gpu, catalogue: trace.catalogue))
        case .linear(let m):
            return try go(m)
        case .measured(let dir, let kernel, let closedLoop, let from, let loadStep, let eager):
            return try go(
                measuredModel(
                    s, trace: trace, profile: dir, kernel: kernel, closedLoop: closedLoop, from: from, loadStep: loadStep,
                    eagerCorrection: eager))
        }
    }

    /// The measured cost model of a scenario's `cost_model: measured` (profile directory relative
    /// to the scenario's folder); profile errors as workload errors naming file, line and column.
    static func measuredModel(
        _ s: Scenario, trace: Trace, profile dir: String, kernel: String, closedLoop: Bool, from: String? = nil,
        loadStep: Bool = true, eagerCorrection: Bool = MeasuredCostModel.eagerCorrectionDefault
    ) throws -> MeasuredCostModel {
        let path = resolvedPath(dir, against: s.baseDirectory)
        let loop = from.map { resolvedPath($0, against: s.baseDirectory) }
        let profile: StepProfile
        do { profile = try StepProfile(directory: path) } catch {
            throw WorkloadError(file: error.file, line: error.line, field: error.column, error.message)
        }
        return try MeasuredCostModel(
            profile: profile, kernel: kernel, model: s.model, catalogue: trace.catalogue, closedLoop: closedLoop,
            closedLoopFrom: loop, loadStep: loadStep, eagerCorrection: eagerCorrection)
    }

    /// The summaries of the scenario with its steps `1 - delta` and `1 + delta` times as long,
    /// `scale` saying which steps (all by default): the two sides of an `elasticity`
    /// (`--sensitivity` of `simulate` and `validate`).
    public static func bracket(
        _ s: Scenario, trace: Trace, delta: Double, horizon: Double = .infinity, scale: (Double) -> StepScale = StepScale.all
    ) throws -> (cheaper: RunSummary, dearer: RunSummary) {
        (
            try run(s, trace: trace, horizon: horizon, stepScale: scale(1 - delta)).summary,
            try run(s, trace: trace, horizon: horizon, stepScale: scale(1 + delta)).summary
        )
    }

    /// Runs with a given cost model (generic, so the event loop is specialised for it).
    public static func run<Cost: StepCostModel>(
        _ s: Scenario, trace: Trace, cost: Cost, outputs: Outputs = Outputs(), progress: ((Double) -> Void)? = nil,
        horizon: Double = .infinity
    ) throws -> RunResult {
        let blocks = blocks(s, catalogue: trace.catalogue)
        guard blocks > 0 else {
            throw WorkloadError(
                file: "<scenario \(s.name)>", field: "engine",
                "no memory is left for the KV cache after the weights of \(s.model.name) on \(s.gpu.name); lower the reserve or set num_gpu_blocks"
            )
        }
        var sim = Simulation(
            trace: trace, config: s.engine, totalBlocks: blocks, replicaCount: s.replicas,
            placement: s.placement.resolve(catalogue: trace.catalogue, replicas: s.replicas), cost: cost,
            scheduler: s.scheduler)
        if let dir = outputs.directory {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        var recorder: RunRecorder? = nil
        if outputs.directory != nil || outputs.batchLog != nil {
            recorder = try RunRecorder(
                iterationsPath: outputs.directory.map { $0 + "/iterations.csv" }, batchLogPath: outputs.batchLog,
                catalogue: trace.catalogue)
        }
        sim.run(observer: &recorder, progress: progress, horizon: horizon)
        let summary = RunSummary(requests: sim.requests, replicas: sim.replicas, adapterCount: trace.catalogue.count)
        let result = RunResult(
            scenario: s, costModelLabel: cost.label, blocksPerReplica: blocks, catalogue: trace.catalogue,
            summary: summary, events: sim.eventsHandled, walks: sim.replicas.reduce(WalkCounts()) { $0 + $1.walkCounts })
        // Every file is complete in its temporary before any is renamed into place.
        var pending: [AtomicFileWriter] = []
        if let dir = outputs.directory {
            pending.append(try requestsCSV(path: dir + "/requests.csv", requests: sim.requests, catalogue: trace.catalogue))
            let json = try AtomicFileWriter(path: dir + "/summary.json")
            try json.write(summaryJSON(result))
            pending.append(json)
        }
        for w in pending { try w.commit() }
        try recorder?.commit()
        return result
    }

    /// Runs `count` replicas of the scenario with step costs drawn from the measured profile's
    /// spread (seeds 1...count), for prediction intervals; with `modelError`, each replica also
    /// carries a systematic factor per step kind from the model's calibration error
    /// (`SampledCostModel`), the replicas' factors on a Latin hypercube (one stratum of each
    /// factor's normal per replica: ten independent draws can sit mostly on one side and shift
    /// every band the same way). Needs a measured cost model.
    public static func sampledRuns(
        _ s: Scenario, trace: Trace, count: Int, horizon: Double = .infinity, modelError: Bool = false
    ) throws -> [RunSummary] {
        guard case .measured(let dir, let kernel, let closedLoop, let from, let loadStep, let eager) = resolvedCostModel(s) else {
            throw WorkloadError(
                file: "<scenario \(s.name)>", field: "cost_model", "prediction intervals need a measured profile (cost_model: measured)")
        }
        let base = try measuredModel(
            s, trace: trace, profile: dir, kernel: kernel, closedLoop: closedLoop, from: from, loadStep: loadStep,
            eagerCorrection: eager)
        // the closed loop's seed-to-seed spread, where the correction is on and its loop has seeds
        var loopSigma = 0.0
        if modelError, let pooled = base.decodeCorrections[kernel] {
            let loop = from.map { resolvedPath($0, against: s.baseDirectory) }
            loopSigma = try MeasuredCostModel.closedLoopSeedLogSigma(
                profile: base.profile, kernel: kernel, model: s.model, variant: kernel, loopProfile: loop, pooled: pooled)
        }
        let n = max(1, count)
        let z = Statistics.latinHypercubeNormal(count: n, dimensions: 2, seed: 0x5EED)
        return try (1...n).map { seed in
            let cost = SampledCostModel(
                base: base, seed: UInt64(seed), modelError: modelError, biasZ: (z[seed - 1][0], z[seed - 1][1]),
                loopLogSigma: loopSigma)
            return try run(s, trace: trace, cost: cost, horizon: horizon).summary
        }
    }

    /// The measured profile's folder with every symbolic link resolved (the default
    /// `profiles/<gpu>-<model>` links to one lease's `-<commit>` folder); nil without a measured
    /// profile.
    public static func profileTarget(_ s: Scenario) -> String? {
        guard case .measured(let dir, _, _, _, _, _) = resolvedCostModel(s) else { return nil }
        return URL(fileURLWithPath: resolvedPath(dir, against: s.baseDirectory)).resolvingSymlinksInPath().path
    }

    /// The summary as JSON text (sorted keys; NaN written as null).
    public static func summaryJSON(_ r: RunResult) -> String {
        func num(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        func dist(_ d: Distribution) -> [String: Any] {
            ["count": d.count, "mean_s": num(d.mean), "p50_s": num(d.p50), "p90_s": num(d.p90), "p99_s": num(d.p99), "max_s": num(d.max)]
        }
        let s = r.summary
        var longest: [String: Any] = [:]
        for (i, w) in s.longestWaitByAdapter.enumerated() where !w.isNaN { longest[r.catalogue[i].name] = w }
        var obj: [String: Any] = [
            "format": "loratwin-summary/1",
            "scenario": r.scenario.name,
            "seed": r.scenario.seed,
            "cost_model": r.costModelLabel,
            "model": r.scenario.model.name,
            "gpu": r.scenario.gpu.name,
            "replicas": r.scenario.replicas,
            "kv_blocks_per_replica": r.blocksPerReplica,
            "requests": s.requests,
            "completed": s.completed,
            "rejected": s.rejected,
            "makespan_s": num(s.makespanSeconds),
            "requests_per_s": num(s.requestsPerSecond),
            "output_tokens_per_s": num(s.outputTokensPerSecond),
            "total_tokens_per_s": num(s.totalTokensPerSecond),
            "ttft": dist(s.ttft),
            "tpot": dist(s.tpot),
            "e2e": dist(s.e2e),
            "queue_wait": dist(s.queueWait),
            "longest_wait_s": num(s.queueWait.max),
            "longest_wait_by_adapter_s": longest,
            "preemptions": s.preemptions,
            "iterations": s.iterations,
            "mode_changes": s.modeChanges,
            "gpu_busy_fraction": num(s.gpuBusyFraction),
        ]
        if case .measured(let dir, let kernel, let closedLoop, _, let loadStep, let eager) = resolvedCostModel(r.scenario) {
            obj["profile"] = resolvedPath(dir, against: r.scenario.baseDirectory)
            // whether a load lengthens the step that orders it where the profile measures it
            obj["load_step"] = loadStep
            // whether the closed loop also corrects the steps with prefill tokens
            obj["closed_loop_eager"] = closedLoop && eager
            // the folder the tables were read from: `profiles/h200-llama2-7b` is a link that moves
            // to each newer lease's profile, so a summary names the one it used
            obj["profile_resolved"] = profileTarget(r.scenario)
            obj["lora_kernel"] = kernel
            // which closed loop corrects the decode-only steps: "none", "own" or the lender's path
            switch closedLoopSource(r.scenario) {
            case .own: obj["closed_loop"] = "own"
            case .borrowed(let path): obj["closed_loop"] = path
            case .off, .absent, nil: obj["closed_loop"] = "none"
            }
        }
        let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
