/// Chooses the adapter of each request from a popularity, and from the phases that shift it.
///
/// Shared by the generators and the real-trace importers, so that both assign adapters alike.
public struct AdapterSampler {
    private struct Phase {
        let startSeconds: Double
        let popularity: Popularity
        let rotation: Int
        let table: DiscreteDistribution?
    }

    private let phases: [Phase]
    private let adapterCount: Int
    private var drawn = 0

    /// Prepares the sampler over `adapterCount` adapters: `popularity` from time 0, then each of
    /// `shifts` from its start time.
    public init(popularity: Popularity, shifts: [PopularityPhase] = [], adapterCount: Int) {
        self.adapterCount = adapterCount
        let all =
            [PopularityPhase(startSeconds: -.infinity, popularity: popularity)]
            + shifts.sorted { $0.startSeconds < $1.startSeconds }
        phases = all.map { p in
            let table: DiscreteDistribution?
            switch p.popularity {
            case .distinct, .identical: table = nil
            default: table = p.popularity.probabilities(adapterCount: adapterCount).flatMap { DiscreteDistribution(weights: $0) }
            }
            return Phase(startSeconds: p.startSeconds, popularity: p.popularity, rotation: p.rotation, table: table)
        }
    }

    /// The adapter index of the next request arriving at `arrivalSeconds`, or
    /// `TraceRequest.baseModel` when there are no adapters.
    public mutating func next(arrivalSeconds: Double, _ rng: RandomSource) -> Int {
        guard adapterCount > 0 else { return TraceRequest.baseModel }
        var k = 0
        while k + 1 < phases.count && phases[k + 1].startSeconds <= arrivalSeconds { k += 1 }
        let p = phases[k]
        let i: Int
        switch p.popularity {
        case .distinct: i = drawn % adapterCount
        case .identical: i = 0
        default: i = p.table.map { rng.draw($0) } ?? 0
        }
        drawn += 1
        let r = p.rotation % adapterCount
        return (i + r + adapterCount) % adapterCount
    }
}
