/// Factors on the seconds of decode-only steps (no prefill token: the CUDA-graph path) and of steps
/// with prefill tokens (the eager and token-graph path), the split `SampledCostModel` uses too.
public struct StepScale: Sendable, Equatable {
    /// Factor on decode-only steps.
    public var decode: Double
    /// Factor on steps with prefill tokens.
    public var eager: Double

    /// Creates the factors; both must be positive and finite.
    public init(decode: Double, eager: Double) {
        precondition(decode > 0 && decode.isFinite && eager > 0 && eager.isFinite, "step-cost factors must be positive and finite")
        self.decode = decode
        self.eager = eager
    }

    /// The same factor on every step.
    public static func all(_ factor: Double) -> StepScale { StepScale(decode: factor, eager: factor) }

    /// No change.
    public static let one = StepScale(decode: 1, eager: 1)
}

/// A cost model whose steps take `scale` times the base model's (decode-only and other steps
/// apart); adapter loads and mode switches are the base model's. For the sensitivity of a
/// prediction to the step costs (`loratwin validate --sensitivity`): how far a metric moves when
/// the steps are a few percent dearer or cheaper, which is how far a calibration off by that much
/// would move it.
public struct ScaledCostModel<Base: StepCostModel>: StepCostModel {
    /// The model scaled.
    public let base: Base
    /// The factors on the steps' seconds.
    public let scale: StepScale

    /// Creates the model.
    public init(base: Base, scale: StepScale) {
        self.base = base
        self.scale = scale
    }

    /// Creates the model with one factor on every step.
    public init(base: Base, factor: Double) { self.init(base: base, scale: .all(factor)) }

    public var label: String { base.label }

    public func stepSeconds(_ batch: StepBatch) -> Double {
        base.stepSeconds(batch) * (batch.prefillTokens == 0 ? scale.decode : scale.eager)
    }

    public func loadSeconds(adapter: Int, fromDisk: Bool) -> Double { base.loadSeconds(adapter: adapter, fromDisk: fromDisk) }

    public func loadStepSeconds(adapter: Int, fromDisk: Bool) -> Double {
        base.loadStepSeconds(adapter: adapter, fromDisk: fromDisk)
    }

    public func switchSeconds(adapter: Int, merging: Bool) -> Double { base.switchSeconds(adapter: adapter, merging: merging) }
}
