/// A cost model whose steps take `factor` times the base model's; adapter loads and mode switches
/// are the base model's. For the sensitivity of a prediction to the step costs (`loratwin
/// validate --sensitivity`): how far a metric moves when every step is a few percent dearer or
/// cheaper, which is how far a calibration off by that much would move it.
public struct ScaledCostModel<Base: StepCostModel>: StepCostModel {
    /// The model scaled.
    public let base: Base
    /// The factor on every step's seconds.
    public let factor: Double

    /// Creates the model; `factor` must be positive.
    public init(base: Base, factor: Double) {
        precondition(factor > 0 && factor.isFinite, "a step-cost factor must be positive and finite")
        self.base = base
        self.factor = factor
    }

    public var label: String { base.label }

    public func stepSeconds(_ batch: StepBatch) -> Double { base.stepSeconds(batch) * factor }

    public func loadSeconds(adapter: Int, fromDisk: Bool) -> Double { base.loadSeconds(adapter: adapter, fromDisk: fromDisk) }

    public func switchSeconds(adapter: Int, merging: Bool) -> Double { base.switchSeconds(adapter: adapter, merging: merging) }
}
