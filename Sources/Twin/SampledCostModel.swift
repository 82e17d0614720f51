import Foundation
import KernelProfiles
import Workloads

/// The measured model with each step's cost drawn around its median: the median times
/// exp(sigma x z), z standard normal, sigma from the profile's spread of repeated timings
/// (`StepProfile.decodeLogSigma`, `eagerLogSigma`). Seeded: N seeds give N replicas of a run,
/// whose spread is the twin's prediction interval (`--intervals N`).
///
/// `@unchecked Sendable`: it owns a random generator and is used by one simulation at a time.
public struct SampledCostModel: StepCostModel, @unchecked Sendable {
    /// The point model.
    public let base: MeasuredCostModel
    private let rng: RandomSource

    /// Creates the model with its own generator seeded by `seed`.
    public init(base: MeasuredCostModel, seed: UInt64) {
        self.base = base
        rng = RandomSource(seed: seed)
    }

    public var label: String { "measured, sampled" }

    public func stepSeconds(_ b: StepBatch) -> Double {
        let sigma = b.prefillTokens == 0 ? base.profile.decodeLogSigma : base.profile.eagerLogSigma
        return base.stepSeconds(b) * exp(sigma * rng.gaussian(sigma: 1))
    }

    public func loadSeconds(adapter: Int, fromDisk: Bool) -> Double {
        base.loadSeconds(adapter: adapter, fromDisk: fromDisk)
    }

    public func switchSeconds(adapter: Int, merging: Bool) -> Double {
        base.switchSeconds(adapter: adapter, merging: merging)
    }
}
