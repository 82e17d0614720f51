import Foundation

/// How requests arrive in a generated trace.
public enum ArrivalProcess: Sendable, Equatable {
    /// Poisson arrivals at `rate` requests per second (exponential gaps).
    case poisson(rate: Double)
    /// Gamma-distributed gaps with mean 1/rate and coefficient of variation `cv` (cv > 1 is bursty).
    case gamma(rate: Double, cv: Double)
    /// Evenly spaced arrivals at `rate` requests per second.
    case constant(rate: Double)

    /// Draws the gap to the next arrival, in seconds.
    public func nextGap(_ rng: RandomSource) -> Double {
        switch self {
        case .poisson(let rate): return rng.exponential(mean: 1 / rate)
        case .gamma(let rate, let cv):
            let shape = 1 / (cv * cv)
            return rng.gamma(shape: shape, scale: 1 / (rate * shape))
        case .constant(let rate): return 1 / rate
        }
    }
}

/// Which adapter each request uses, as named in the Punica/Dop papers.
public enum Popularity: Sendable, Equatable {
    /// Every request its own adapter (cycling through the catalogue in order).
    case distinct
    /// Adapters drawn uniformly.
    case uniform
    /// Adapter i (0-based) drawn with weight 1 / (i + 1)^exponent.
    case zipf(exponent: Double)
    /// Every request uses the first adapter.
    case identical
}

/// A distribution of token counts, always at least 1.
public enum LengthDistribution: Sendable, Equatable {
    /// Always `tokens`.
    case fixed(Int)
    /// Uniform integers in `low...high`.
    case uniform(low: Int, high: Int)
    /// Log-normal with the given mean and log-space sigma, clipped to `min...max`.
    case logNormal(mean: Double, sigma: Double, min: Int, max: Int)

    /// Draws one length.
    public func draw(_ rng: RandomSource) -> Int {
        switch self {
        case .fixed(let n): return n
        case .uniform(let lo, let hi): return lo + rng.uniformInt(hi - lo + 1)
        case .logNormal(let mean, let sigma, let lo, let hi):
            let mu = log(mean) - sigma * sigma / 2
            let v = rng.logNormal(mu: mu, sigma: sigma).rounded()
            return Swift.min(hi, Swift.max(lo, Int(Swift.min(v, 1e9))))
        }
    }
}

/// A generated adapter catalogue: `count` adapters with ranks drawn from a weighted list.
public struct CatalogueSpec: Sendable, Equatable {
    /// Number of adapters.
    public var count: Int
    /// Ranks to draw from, with their weights.
    public var ranks: [(rank: Int, weight: Double)]
    /// LoRA alpha of every adapter.
    public var alpha: Double
    /// Target modules of every adapter.
    public var targetModules: [String]

    /// Creates a catalogue spec.
    public init(count: Int, ranks: [(rank: Int, weight: Double)], alpha: Double, targetModules: [String]) {
        self.count = count
        self.ranks = ranks
        self.alpha = alpha
        self.targetModules = targetModules
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.count == b.count && a.alpha == b.alpha && a.targetModules == b.targetModules
            && a.ranks.map(\.rank) == b.ranks.map(\.rank) && a.ranks.map(\.weight) == b.ranks.map(\.weight)
    }

    /// Draws the catalogue: adapters `a0`, `a1`, ... with seeded ranks.
    public func generate(_ rng: RandomSource) -> AdapterCatalogue {
        guard let table = DiscreteDistribution(weights: ranks.map(\.weight)) else { return AdapterCatalogue([]) }
        return AdapterCatalogue(
            (0..<count).map { i in
                AdapterSpec(name: "a\(i)", rank: ranks[rng.draw(table)].rank, alpha: alpha, targetModules: targetModules)
            })
    }
}

/// A seeded synthetic workload: catalogue, arrivals, popularity and lengths.
public struct GeneratorSpec: Sendable, Equatable {
    /// Number of requests.
    public var requests: Int
    /// Arrival process.
    public var arrival: ArrivalProcess
    /// Adapter popularity.
    public var popularity: Popularity
    /// Prompt lengths.
    public var promptTokens: LengthDistribution
    /// Output lengths.
    public var outputTokens: LengthDistribution
    /// The adapter catalogue to generate.
    public var catalogue: CatalogueSpec

    /// Creates a spec.
    public init(
        requests: Int, arrival: ArrivalProcess, popularity: Popularity, promptTokens: LengthDistribution,
        outputTokens: LengthDistribution, catalogue: CatalogueSpec
    ) {
        self.requests = requests
        self.arrival = arrival
        self.popularity = popularity
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.catalogue = catalogue
    }

    /// Generates the trace. The same spec and seed give the same trace on every machine.
    public func generate(seed: UInt64) -> Trace {
        let rng = RandomSource(seed: seed)
        let cat = catalogue.generate(rng)
        let n = cat.count
        var weights: [Double]
        switch popularity {
        case .zipf(let s): weights = (0..<n).map { 1 / pow(Double($0 + 1), s) }
        default: weights = Array(repeating: 1, count: n)
        }
        let table = DiscreteDistribution(weights: weights)
        var out: [TraceRequest] = []
        out.reserveCapacity(requests)
        var t = 0.0
        for i in 0..<requests {
            if i > 0 { t += arrival.nextGap(rng) }
            let adapter: Int
            if n == 0 {
                adapter = TraceRequest.baseModel
            } else {
                switch popularity {
                case .distinct: adapter = i % n
                case .identical: adapter = 0
                case .uniform, .zipf: adapter = rng.draw(table!)
                }
            }
            out.append(
                TraceRequest(
                    requestID: i, arrivalSeconds: t, adapter: adapter,
                    promptTokens: promptTokens.draw(rng), outputTokens: outputTokens.draw(rng)))
        }
        return Trace(requests: out, catalogue: cat)
    }
}
