/// A step cost linear in the batch's prefill tokens and decode sequences, with constant loads.
///
/// Used by the tests (hand-computable latencies) and by the scheduler conformance test, whose
/// Python side (`gpu/engine/virtual.py`) implements the same definition
/// (docs/engine-model.md, "The linear cost model").
public struct LinearCostModel: StepCostModel, Equatable {
    /// Seconds per iteration regardless of its size.
    public var baseSeconds: Double
    /// Seconds per prefill token.
    public var perPrefillTokenSeconds: Double
    /// Seconds per decode sequence.
    public var perDecodeSequenceSeconds: Double
    /// Seconds of a host-to-GPU adapter copy.
    public var hostToGPUSeconds: Double
    /// Seconds of a disk-to-host adapter read.
    public var diskToHostSeconds: Double
    /// Seconds of a merge or an unmerge.
    public var switchSecondsConstant: Double

    /// Creates the model.
    public init(
        baseSeconds: Double, perPrefillTokenSeconds: Double = 0, perDecodeSequenceSeconds: Double = 0,
        hostToGPUSeconds: Double = 0, diskToHostSeconds: Double = 0, switchSeconds: Double = 0.02
    ) {
        self.switchSecondsConstant = switchSeconds
        self.baseSeconds = baseSeconds
        self.perPrefillTokenSeconds = perPrefillTokenSeconds
        self.perDecodeSequenceSeconds = perDecodeSequenceSeconds
        self.hostToGPUSeconds = hostToGPUSeconds
        self.diskToHostSeconds = diskToHostSeconds
    }

    public var label: String { "linear" }

    public func stepSeconds(_ batch: StepBatch) -> Double {
        baseSeconds + perPrefillTokenSeconds * Double(batch.prefillTokens)
            + perDecodeSequenceSeconds * Double(batch.decodeSequences)
    }

    public func loadSeconds(adapter: Int, fromDisk: Bool) -> Double {
        fromDisk ? diskToHostSeconds + hostToGPUSeconds : hostToGPUSeconds
    }

    public func switchSeconds(adapter: Int, merging: Bool) -> Double { switchSecondsConstant }
}
