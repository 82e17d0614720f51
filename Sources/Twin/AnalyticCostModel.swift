import Workloads

/// A roofline model of one iteration from a GPU spec and a model spec: every matrix product costs
/// the larger of its bytes over the usable bandwidth and its FLOPs over the usable tensor rate.
///
/// It is *analytic*: no measurement of the engine enters it, and every output that uses it says so.
/// It is the fallback for GPUs without a measured profile.
public struct AnalyticCostModel: StepCostModel {
    /// The model served.
    public let model: ModelSpec
    /// The GPU it runs on.
    public let gpu: GPUSpec
    /// Per adapter: weight bytes of A and B over all layers and modules.
    private let adapterBytes: [Double]
    /// Per adapter: FLOPs per token of shrink plus expand over all layers and modules.
    private let adapterFlopsPerToken: [Double]
    /// LoRA kernel launches per step (shrink + expand per targeted module and layer).
    private let loraLaunches: Double
    private let bandwidth: Double
    private let flopRate: Double

    /// Creates the model for the adapters of `catalogue`.
    public init(model: ModelSpec, gpu: GPUSpec, catalogue: AdapterCatalogue) {
        self.model = model
        self.gpu = gpu
        bandwidth = gpu.memoryBytesPerSecond * gpu.bandwidthEfficiency
        flopRate = gpu.peakFlopsPerSecond * gpu.matmulEfficiency
        adapterBytes = catalogue.adapters.map { Double(model.adapterBytes(rank: $0.rank, modules: $0.targetModules)) }
        adapterFlopsPerToken = catalogue.adapters.map { a in
            a.targetModules.reduce(0.0) { s, m in
                guard let (i, o) = model.moduleShape(m) else { return s }
                return s + 2 * Double(model.layers * a.rank * (i + o))
            }
        }
        let modules = Set(catalogue.adapters.flatMap(\.targetModules)).filter { model.moduleShape($0) != nil }
        loraLaunches = Double(2 * modules.count * model.layers)
    }

    public var label: String { "analytic" }

    private func roofline(bytes: Double, flops: Double) -> Double {
        max(bytes / bandwidth, flops / flopRate)
    }

    public func stepSeconds(_ b: StepBatch) -> Double {
        let t = Double(b.tokens)
        guard t > 0 else { return gpu.iterationOverheadSeconds }
        let dt = Double(model.dtypeBytes)
        var seconds = 0.0
        for m in ModelSpec.projectionModules {
            let (i, o) = model.moduleShape(m)!
            let (fi, fo) = (Double(i), Double(o))
            seconds += roofline(bytes: (fi * fo + t * (fi + fo)) * dt, flops: 2 * t * fi * fo)
        }
        seconds *= Double(model.layers)
        // LM head for the rows that sample.
        let h = Double(model.hiddenSize)
        let v = Double(model.vocabularySize)
        seconds += roofline(bytes: v * h * dt, flops: 2 * Double(b.samplingSequences) * v * h)
        // Attention: prefill is compute-bound (QK^T and PV over the causal pairs); decode reads
        // the KV cache of every sequence.
        let kvPerToken = Double(model.kvBytesPerToken)
        let attnFlops = 4 * Double(model.layers * model.heads * model.headDim)
        seconds += roofline(
            bytes: kvPerToken * (Double(b.prefillTokens) + Double(b.decodeContextTokens)),
            flops: attnFlops * (b.prefillAttentionPairs + Double(b.decodeContextTokens)))
        if b.mode == .unmerged && !b.segments.isEmpty {
            for s in b.segments {
                seconds += roofline(bytes: adapterBytes[s.adapter], flops: Double(s.tokens) * adapterFlopsPerToken[s.adapter])
            }
            seconds += loraLaunches * gpu.loraLaunchSeconds
        }
        return seconds + gpu.iterationOverheadSeconds + gpu.perSequenceOverheadSeconds * Double(b.sequences)
    }

    public func loadSeconds(adapter: Int, fromDisk: Bool) -> Double {
        let bytes = adapterBytes[adapter]
        let copy = gpu.loadLatencySeconds + bytes / gpu.hostToDeviceBytesPerSecond
        return fromDisk ? copy + gpu.loadLatencySeconds + bytes / gpu.diskToHostBytesPerSecond : copy
    }
}
