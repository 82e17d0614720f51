/// How a replica serves adapters in an iteration.
public enum ServingMode: String, Sendable, Equatable {
    /// Requests of many adapters share the base weights; LoRA runs as extra kernels.
    case unmerged
    /// One adapter is folded into the base weights; only its requests run.
    case merged
}

/// One adapter's rows in a batch (a segment of the SGMV operator).
public struct LoraSegment: Sendable, Equatable {
    /// Catalogue index of the adapter.
    public var adapter: Int
    /// Tokens of the batch that use it.
    public var tokens: Int

    /// Creates a segment.
    public init(adapter: Int, tokens: Int) {
        self.adapter = adapter
        self.tokens = tokens
    }
}

/// What a step-cost model sees of one iteration: the batch, aggregated.
public struct StepBatch: Sendable, Equatable {
    /// Prompt tokens computed (prefill chunks, including recomputation after preemption).
    public var prefillTokens = 0
    /// Sequences with a prefill chunk.
    public var prefillSequences = 0
    /// Prefill chunks that continue after cached context (chunked prompts, recomputation).
    public var prefillContinuations = 0
    /// Causal attention work of the prefill chunks: the sum over chunks of n * (c + (n + 1) / 2),
    /// for a chunk of n tokens after c cached ones (query-key pairs).
    public var prefillAttentionPairs = 0.0
    /// The most keys one prefill chunk attends to: the largest c + n over the chunks (0 without
    /// prefill). The tiled attention kernel's longest program walks that many.
    public var prefillMaxKeys = 0
    /// Sequences in decode (one token each).
    public var decodeSequences = 0
    /// Tokens of context the decode sequences attend to, summed.
    public var decodeContextTokens = 0
    /// The longest context among the decode sequences (attention kernels that give each sequence
    /// one program are bounded by it).
    public var decodeMaxContext = 0
    /// Sequences that sample a token at the end of the iteration.
    public var samplingSequences = 0
    /// LoRA segments (unmerged mode), in order of first appearance in the batch.
    public var segments: [LoraSegment] = []
    /// Serving mode of the iteration.
    public var mode: ServingMode = .unmerged

    /// Creates an empty batch.
    public init() {}

    /// All tokens computed in the iteration.
    public var tokens: Int { prefillTokens + decodeSequences }
    /// All sequences in the iteration.
    public var sequences: Int { prefillSequences + decodeSequences }
}

/// Predicts how long an iteration and an adapter load take.
///
/// Implementations: `AnalyticCostModel` (roofline from a GPU and a model spec, for GPUs that
/// have not been profiled) and `LinearCostModel` (fixed coefficients, for tests and conformance).
public protocol StepCostModel: Sendable {
    /// A short label written next to every prediction (`analytic`, `linear`, `measured`).
    var label: String { get }
    /// Seconds one iteration of `batch` takes.
    func stepSeconds(_ batch: StepBatch) -> Double
    /// Seconds to bring adapter `adapter` (catalogue index) to a GPU slot; from disk through host
    /// memory if `fromDisk`, otherwise from the host cache.
    func loadSeconds(adapter: Int, fromDisk: Bool) -> Double
    /// Seconds by which a load of `adapter` lengthens the step of the pass that orders it (the
    /// loader's copies and thread beside the step's launch; docs/step-cost.md). 0 by default.
    func loadStepSeconds(adapter: Int, fromDisk: Bool) -> Double
    /// Seconds to fold adapter `adapter` into the base weights (`merging`) or out again.
    func switchSeconds(adapter: Int, merging: Bool) -> Double
}

extension StepCostModel {
    /// No effect of a load on the step that orders it, where a model has no measurement of one.
    public func loadStepSeconds(adapter: Int, fromDisk: Bool) -> Double { 0 }
    /// dLoRA's constant (0.02 s, profiled on a 7B model) where a model has no measurement.
    public func switchSeconds(adapter: Int, merging: Bool) -> Double { 0.02 }
}
