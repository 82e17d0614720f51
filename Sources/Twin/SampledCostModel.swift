import Foundation
import KernelProfiles
import Workloads

/// The measured model with each step's cost drawn around its median: the median times
/// exp(sigma x z), z standard normal, sigma from the profile's spread of repeated timings
/// (`StepProfile.decodeLogSigma`, `eagerLogSigma`). With `modelError`, each replica also carries
/// one systematic factor per step kind, exp(sigma_m x z) drawn once, sigma_m from the model's own
/// leave-one-out error on the calibration tables (`decodeModelLogSigma`, `eagerModelLogSigma`):
/// the twin's error is mostly a bias that lasts a whole run, not noise from step to step. With a
/// closed loop of several seeds (`loopLogSigma`, `MeasuredCostModel.closedLoopSeedLogSigma`), the
/// decode factor's sigma also holds how far one stretch of running strays from another in the same
/// machine start (the two added in quadrature). Seeded:
/// N seeds give N replicas of a run, whose spread is the twin's prediction interval
/// (`--intervals N`). The factors' standard normal draws can be given (`biasZ`):
/// `ScenarioRunner.sampledRuns` spreads them over a Latin hypercube, so that N replicas cover the
/// factors' distribution evenly.
///
/// `@unchecked Sendable`: it owns a random generator and is used by one simulation at a time.
public struct SampledCostModel: StepCostModel, @unchecked Sendable {
    /// The point model.
    public let base: MeasuredCostModel
    /// This replica's systematic factors on decode-only and eager steps (1 without model error).
    public let decodeBias: Double
    public let eagerBias: Double
    private let rng: RandomSource

    /// Creates the model with its own generator seeded by `seed`. With `modelError`, the two
    /// factors' standard normal draws are `biasZ` (decode, eager) when given, else drawn from the
    /// generator.
    public init(
        base: MeasuredCostModel, seed: UInt64, modelError: Bool = false, biasZ: (decode: Double, eager: Double)? = nil,
        loopLogSigma: Double = 0
    ) {
        self.base = base
        let rng = RandomSource(seed: seed)
        if modelError {
            let z = biasZ ?? (rng.gaussian(sigma: 1), rng.gaussian(sigma: 1))
            let m = base.profile.decodeModelLogSigma
            decodeBias = exp((m * m + loopLogSigma * loopLogSigma).squareRoot() * z.decode)
            eagerBias = exp(base.profile.eagerModelLogSigma(kernel: base.kernel) * z.eager)
        } else {
            decodeBias = 1
            eagerBias = 1
        }
        self.rng = rng
    }

    public var label: String { "measured, sampled" }

    public func stepSeconds(_ b: StepBatch) -> Double {
        let decode = b.prefillTokens == 0
        let sigma = decode ? base.profile.decodeLogSigma : base.profile.eagerLogSigma
        return base.stepSeconds(b) * (decode ? decodeBias : eagerBias) * exp(sigma * rng.gaussian(sigma: 1))
    }

    public func loadSeconds(adapter: Int, fromDisk: Bool) -> Double {
        base.loadSeconds(adapter: adapter, fromDisk: fromDisk)
    }

    public func loadStepSeconds(adapter: Int, fromDisk: Bool) -> Double {
        base.loadStepSeconds(adapter: adapter, fromDisk: fromDisk)
    }

    public func switchSeconds(adapter: Int, merging: Bool) -> Double {
        base.switchSeconds(adapter: adapter, merging: merging)
    }
}
