import Foundation

/// How requests arrive in a generated trace.
public enum ArrivalProcess: Sendable, Equatable {
    /// Poisson arrivals at `rate` requests per second (exponential gaps).
    case poisson(rate: Double)
    /// Gamma-distributed gaps with mean 1/rate and coefficient of variation `cv` (cv > 1 is bursty).
    case gamma(rate: Double, cv: Double)
    /// Evenly spaced arrivals at `rate` requests per second.
    case constant(rate: Double)
    /// A schedule: each phase's process for its duration, the last phase for ever after (load ramps,
    /// bursts, pauses). A phase of rate 0 is a pause.
    case piecewise([RatePhase])

    /// Draws the gap to the next arrival, in seconds, for a process that does not change over time
    /// (a piecewise schedule gives the gap after time 0; use `nextArrival(after:_:)` for it).
    public func nextGap(_ rng: RandomSource) -> Double {
        switch self {
        case .poisson(let rate): return rate > 0 ? rng.exponential(mean: 1 / rate) : .infinity
        case .gamma(let rate, let cv):
            guard rate > 0 else { return .infinity }
            let shape = 1 / (cv * cv)
            return rng.gamma(shape: shape, scale: 1 / (rate * shape))
        case .constant(let rate): return rate > 0 ? 1 / rate : .infinity
        case .piecewise: return nextArrival(after: 0, rng)
        }
    }

    /// The time of the next arrival after one at `t` seconds.
    ///
    /// In a schedule, a gap that would cross into the next phase is cut at the boundary and drawn
    /// again from the next phase's process; for Poisson phases that is exact (the exponential gap is
    /// memoryless), for the others it restarts the renewal process at the boundary.
    public func nextArrival(after t: Double, _ rng: RandomSource) -> Double {
        guard case .piecewise(let phases) = self, !phases.isEmpty else { return t + nextGap(rng) }
        var now = t
        var phaseEnd = 0.0
        var k = 0
        while k < phases.count - 1 {
            phaseEnd += phases[k].durationSeconds
            if now < phaseEnd { break }
            k += 1
        }
        while true {
            let candidate = now + phases[k].process.nextGap(rng)
            if k == phases.count - 1 || candidate < phaseEnd { return candidate }
            now = phaseEnd
            k += 1
            phaseEnd += k < phases.count - 1 ? phases[k].durationSeconds : .infinity
        }
    }

    /// Mean rate in requests per second (of the first phase, for a schedule).
    public var meanRate: Double {
        switch self {
        case .poisson(let r), .gamma(let r, _), .constant(let r): return r
        case .piecewise(let phases): return phases.first?.process.meanRate ?? 0
        }
    }
}

/// One phase of a piecewise arrival schedule.
public struct RatePhase: Sendable, Equatable, CustomStringConvertible {
    /// How long the phase lasts, in seconds (ignored for the last phase, which lasts for ever).
    public var durationSeconds: Double
    /// The arrival process during the phase (Poisson, Gamma or constant; not itself a schedule).
    public var process: ArrivalProcess

    /// Creates a phase.
    public init(durationSeconds: Double, process: ArrivalProcess) {
        self.durationSeconds = durationSeconds
        self.process = process
    }

    /// `20.0 s of poisson(rate: 4.0)`.
    public var description: String { "\(durationSeconds) s of \(process)" }
}
