import Foundation
import KernelProfiles
import Workloads

/// Step costs from a measured profile of the live engine (label `measured`): decode-only steps
/// from the CUDA-graph decode table; steps with prefill tokens from the eager token curve (at the
/// step's token-graph size, `StepProfile.tokenGraphSize`) plus fitted attention; unmerged LoRA, in decode steps from the LoRA table of the chosen kernel (at
/// the batch's largest rank, and at the token-graph size in steps that run as token graphs), in
/// steps beyond the token graphs from the `step_mixed` fit of the kernel when the profile has one
/// (else the LoRA table); and the engine's host time per iteration. Loads from the measured copy and read fits.
/// Decode-only steps are then scaled by the profile's closed-loop factor of their CUDA graph when
/// the profile has closed-loop calibration steps (`DecodeCorrection`).
public struct MeasuredCostModel: StepCostModel {
    /// The profile.
    public let profile: StepProfile
    /// LoRA kernel whose table is used (`sgmv`, `torch`, ...).
    public let kernel: String
    /// Whether a load lengthens the step that orders it where the profile measures it (`loadStepSeconds`).
    public let loadStep: Bool
    /// Whether steps with prefill tokens take the closed loop's factor per token graph
    /// (`DecodeCorrection.eagerFactor`) as well as decode-only steps theirs.
    public let eagerCorrection: Bool
    private let adapterBytes: [Double]
    private let adapterRanks: [Int]
    /// The closed-loop corrections of decode-only steps: `kernel`'s for steps with adapters,
    /// `none`'s for steps without (and merged ones); absent without the profile's data.
    public private(set) var decodeCorrections: [String: DecodeCorrection] = [:]

    /// Whether the closed loop corrects the steps with prefill tokens as well by default: off since
    /// lease 9da212b-1's pooled Rule 4, on from lease 3a804f7-1 until then (docs/validation.md). The
    /// scenario's `closed_loop_eager` and the CLI's `--closed-loop-eager` fall back to it.
    public static let eagerCorrectionDefault = false

    /// Creates the model for the adapters of `catalogue`; fails if the profile has no LoRA table
    /// for `kernel`, or has closed-loop steps that cannot be read (the error names the file, line
    /// and column). `closedLoop: false` leaves the closed-loop correction out (a diagnostic);
    /// `closedLoopFrom` takes the closed loop of that profile directory instead of this profile's
    /// own (its steps priced with this profile; an error if it has none for `kernel` or `none`).
    /// `loadStep` (the default) adds a load's excess to the step that orders it (the profile's
    /// `host_step` / `disk_step` rows); `eagerCorrection` corrects the steps with prefill tokens by
    /// the closed loop as well, `false` only the decode-only steps (default:
    /// `eagerCorrectionDefault`). `loadStep`'s default is lease 3a804f7-1's Rule 3 (docs/validation.md).
    public init(
        profile: StepProfile, kernel: String, model: ModelSpec, catalogue: AdapterCatalogue, closedLoop: Bool = true,
        closedLoopFrom: String? = nil, loadStep: Bool = true,
        eagerCorrection: Bool = MeasuredCostModel.eagerCorrectionDefault
    ) throws(WorkloadError) {
        guard profile.loraGrids[kernel] != nil else {
            throw WorkloadError(
                file: profile.directory + "/lora_step.csv", field: "kernel",
                "no rows for kernel '\(kernel)'; the profile has \(profile.loraGrids.keys.sorted().joined(separator: ", "))")
        }
        self.profile = profile
        self.kernel = kernel
        self.loadStep = loadStep
        self.eagerCorrection = eagerCorrection
        adapterBytes = catalogue.adapters.map { Double(model.adapterBytes(rank: $0.rank, modules: $0.targetModules)) }
        adapterRanks = catalogue.adapters.map(\.rank)
        guard closedLoop else { return }
        if let closedLoopFrom {
            // another profile's closed loop measures another machine's engine: only the same GPU
            let meta: ProfileMeta
            do { meta = try ProfileMeta(path: closedLoopFrom + "/meta.json") } catch {
                throw WorkloadError(file: error.file, line: error.line, field: error.column, error.message)
            }
            guard meta.gpu == profile.meta.gpu else {
                throw WorkloadError(
                    file: closedLoopFrom + "/meta.json", field: "gpu_name",
                    "'\(meta.gpu)': a closed loop of another GPU than the profile's '\(profile.meta.gpu)'")
            }
        }
        let loop = closedLoopFrom ?? profile.directory
        for variant in Set([kernel, "none"]) where DecodeCorrection.exists(profile: loop, variant: variant) {
            decodeCorrections[variant] = try Self.fitCorrection(
                profile: profile, kernel: kernel, model: model, variant: variant, loopProfile: loop)
        }
        if let closedLoopFrom, decodeCorrections.isEmpty {
            throw WorkloadError(
                file: closedLoopFrom + "/closed_loop", field: "closed_loop_from",
                "no closed loop for kernel '\(kernel)' or 'none' (closed_loop/<variant>/steps.csv, gpu/closed_loop.py)")
        }
    }

    /// Fits `variant`'s closed-loop factors: its steps priced by this model without correction
    /// (with the closed loop's own catalogue) against their measured iterations (`live_s`).
    /// `half` (0 or 1): only the even or the odd rows (`profile check` compares the two fits);
    /// `seed`: only the rows of that workload seed (the `seed` column of `gpu/closed_loop.py
    /// --seeds`; `profile check` compares the seeds' fits).
    /// `loopProfile`: the profile directory whose closed loop it is (default: this profile's).
    public static func fitCorrection(
        profile: StepProfile, kernel: String, model: ModelSpec, variant: String, half: Int? = nil, seed: Int? = nil,
        loopProfile: String? = nil
    ) throws(WorkloadError) -> DecodeCorrection {
        let (table, catalogue) = try closedLoopSteps(profile: profile, variant: variant, loopProfile: loopProfile)
        if variant == "none", let row = table.batches.firstIndex(where: { !$0.segments.isEmpty && $0.mode == .unmerged }) {
            throw WorkloadError(
                file: table.file, line: table.lines[row], field: "segments",
                "the closed loop of variant 'none' has a step with adapters; it calibrates steps without LoRA")
        }
        let plain = try MeasuredCostModel(profile: profile, kernel: kernel, model: model, catalogue: catalogue, closedLoop: false)
        var measured = try table.numbers("live_s").map { $0 * 1e6 }
        var batches = table.batches
        if let seed {
            let seeds = try table.numbers("seed")
            let keep = seeds.indices.filter { Int(seeds[$0]) == seed }
            (measured, batches) = (keep.map { measured[$0] }, keep.map { batches[$0] })
        }
        if let half {
            let keep = stride(from: half, to: batches.count, by: 2)
            (measured, batches) = (keep.map { measured[$0] }, keep.map { batches[$0] })
        }
        return DecodeCorrection(
            file: table.file, batches: batches, measuredUs: measured, price: { plain.breakdown($0).total },
            graph: { profile.graphSize($0) }, tokenGraph: { profile.tokenGraphKey($0) })
    }

    /// How far one stretch of live-like running strays from another in the same machine start, as a
    /// log-normal sigma: the RMS over seeds and graphs of ln(a seed's factor / the pooled factor)
    /// of `variant`'s closed loop (0 with fewer than two seeds). Calibration data: the loop's seeds
    /// are blocks of a few seconds of the engine's own loop, minutes apart, on one synthetic
    /// workload. `SampledCostModel` adds it to the systematic decode factor of each replica.
    /// `pooled`: the fit over all seeds where the caller has it (a model's `decodeCorrections`), so
    /// that it is not fitted again.
    public static func closedLoopSeedLogSigma(
        profile: StepProfile, kernel: String, model: ModelSpec, variant: String, loopProfile: String? = nil,
        pooled: DecodeCorrection? = nil
    ) throws(WorkloadError) -> Double {
        let seeds = try closedLoopSeeds(profile: profile, variant: variant, loopProfile: loopProfile)
        guard seeds.count >= 2 else { return 0 }
        let full: DecodeCorrection
        if let pooled {
            full = pooled
        } else {
            full = try fitCorrection(profile: profile, kernel: kernel, model: model, variant: variant, loopProfile: loopProfile)
        }
        var squares: [Double] = []
        for seed in seeds {
            let one = try fitCorrection(
                profile: profile, kernel: kernel, model: model, variant: variant, seed: seed, loopProfile: loopProfile)
            for g in one.factors.keys.sorted() {
                if let f = full.factors[g], let s = one.factors[g], f > 0, s > 0 {
                    let l = Foundation.log(s / f)
                    squares.append(l * l)
                }
            }
        }
        return squares.isEmpty ? 0 : (squares.reduce(0, +) / Double(squares.count)).squareRoot()
    }

    /// The workload seeds of `variant`'s closed loop, in order (the `seed` column; none without it).
    public static func closedLoopSeeds(
        profile: StepProfile, variant: String, loopProfile: String? = nil
    ) throws(WorkloadError) -> [Int] {
        let (table, _) = try closedLoopSteps(profile: profile, variant: variant, loopProfile: loopProfile)
        guard table.columns.contains("seed") else { return [] }
        return Set(try table.numbers("seed").map { Int($0) }).sorted()
    }

    /// `variant`'s closed-loop steps and their catalogue, from `loopProfile` (default: the profile's
    /// own directory).
    private static func closedLoopSteps(
        profile: StepProfile, variant: String, loopProfile: String?
    ) throws(WorkloadError) -> (StepsTable, AdapterCatalogue) {
        let dir = DecodeCorrection.directory(profile: loopProfile ?? profile.directory, variant: variant)
        let catalogue = try CatalogueFile.read(dir + "/catalogue.csv")
        let table = try StepsTable(path: dir + "/steps.csv", catalogue: catalogue, needsMaxKeys: profile.attentionUsesMaxKeys)
        return (table, catalogue)
    }

    public var label: String { "measured" }

    public func stepSeconds(_ b: StepBatch) -> Double {
        breakdown(b).total * 1e-6
    }

    /// The parts of one step's predicted cost, in microseconds (`loratwin profile price` prints
    /// them per live iteration).
    public struct Breakdown: Sendable, Equatable {
        /// Decode-only steps: the graph-size floor, attention work and longest-program tail
        /// (`StepProfile.decodeParts`); 0 for eager steps.
        public var decodeFloor = 0.0, decodeWork = 0.0, decodeTail = 0.0
        /// Eager steps: the model without LoRA (token curve at the token-graph size plus fitted
        /// attention, `StepProfile.eagerMicroseconds`); 0 for decode steps.
        public var eager = 0.0
        /// Unmerged LoRA: the `step_mixed` residual in eager steps, the LoRA table in decode steps.
        public var lora = 0.0
        /// The engine's host time per iteration.
        public var host = 0.0
        /// Decode-only steps: the closed-loop factor of the step's CUDA graph (1 without one);
        /// it scales the whole step.
        public var factor = 1.0
        /// The step, as `stepSeconds` prices it (at least 1 us).
        public var total: Double {
            max((decodeFloor + max(decodeWork, decodeTail) + eager + lora + host) * factor, 1)
        }
    }

    /// `stepSeconds`, part by part.
    public func breakdown(_ b: StepBatch) -> Breakdown {
        var out = Breakdown()
        if b.prefillTokens == 0 {
            let p = profile.decodeParts(
                seqs: b.decodeSequences, contextTokens: b.decodeContextTokens, maxContext: b.decodeMaxContext)
            (out.decodeFloor, out.decodeWork, out.decodeTail) = (p.floor, p.work, p.tail)
        } else {
            out.eager = profile.eagerMicroseconds(
                tokens: b.tokens, prefillPairs: b.prefillAttentionPairs, decodeSequences: b.decodeSequences,
                decodeContextTokens: b.decodeContextTokens, prefillMaxKeys: b.prefillMaxKeys)
        }
        if b.mode == .unmerged && !b.segments.isEmpty {
            // A step with prefill tokens that runs as a token graph pays the LoRA of its graph
            // size, as `lora_step` measures it (the same step with and without adapters); only
            // a step beyond the token graphs runs the LoRA kernels eagerly, launched from Python,
            // and takes the `step_mixed` fit.
            let graphed = b.prefillTokens == 0 || profile.runsAsTokenGraph(b.tokens)
            if !graphed, let eager = profile.eagerLoraMicroseconds(kernel: kernel, tokens: b.tokens) {
                out.lora = eager
            } else {
                var rank = 0
                for s in b.segments { rank = max(rank, adapterRanks[s.adapter]) }
                let tokens = b.prefillTokens == 0 ? b.tokens : profile.tokenGraphSize(b.tokens)
                let viaTokenGraph =
                    b.prefillTokens > 0
                    ? profile.loraTokenMicroseconds(kernel: kernel, graphTokens: tokens, segments: b.segments.count, rank: rank)
                    : nil
                out.lora =
                    viaTokenGraph
                    ?? profile.loraMicroseconds(kernel: kernel, tokens: tokens, segments: b.segments.count, rank: rank) ?? 0
            }
        }
        out.host = max(0, profile.hostOverheadFit.value(1, Double(b.sequences)))
        if !decodeCorrections.isEmpty {
            let variant = b.mode == .unmerged && !b.segments.isEmpty ? kernel : "none"
            if let c = decodeCorrections[variant] {
                if b.prefillTokens == 0 {
                    out.factor = c.factor(graph: profile.graphSize(b.decodeSequences))
                } else if eagerCorrection {
                    out.factor = c.eagerFactor(tokenGraph: profile.tokenGraphKey(b.tokens))
                }
            }
        }
        return out
    }

    /// The profile's merge or unmerge fit at the adapter's rank (its target modules as profiled).
    public func switchSeconds(adapter: Int, merging: Bool) -> Double {
        guard let f = profile.mergeFits[merging ? "merge" : "unmerge"] else { return 0.02 }
        return max(0, f.value(1, Double(adapterRanks[adapter]))) * 1e-6
    }

    /// From the busy rows where the profile has them (a load measured while decode steps run, as
    /// live loads are), else the idle ones: the copy, plus the file read for a load from disk.
    public func loadSeconds(adapter: Int, fromDisk: Bool) -> Double {
        let bytes = adapterBytes[adapter]
        if let busy = profile.busyLoadFits {
            return max(0, (fromDisk ? busy.disk : busy.host).value(1, bytes)) * 1e-6
        }
        var us = max(0, profile.hostToGPUFit.value(1, bytes))
        if fromDisk { us += max(0, profile.diskToHostFit.value(1, bytes)) }
        return us * 1e-6
    }

    /// From the step rows where the profile has them (how much longer the step that orders a load
    /// runs than the steps before it), never negative; else 0.
    public func loadStepSeconds(adapter: Int, fromDisk: Bool) -> Double {
        guard loadStep, let fits = profile.loadStepFits else { return 0 }
        return max(0, (fromDisk ? fits.disk : fits.host).value(1, adapterBytes[adapter])) * 1e-6
    }
}
