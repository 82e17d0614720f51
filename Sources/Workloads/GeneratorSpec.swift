import Foundation

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
    /// Shifts of popularity over time (empty: `popularity` throughout).
    public var popularityShifts: [PopularityPhase] = []
    /// When set, prompt and output lengths are drawn together from these pairs, and
    /// `promptTokens` and `outputTokens` are not used.
    public var jointLengths: JointLengths? = nil

    /// Creates a spec.
    public init(
        requests: Int, arrival: ArrivalProcess, popularity: Popularity, promptTokens: LengthDistribution,
        outputTokens: LengthDistribution, catalogue: CatalogueSpec, popularityShifts: [PopularityPhase] = []
    ) {
        self.popularityShifts = popularityShifts
        self.requests = requests
        self.arrival = arrival
        self.popularity = popularity
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.catalogue = catalogue
    }

    /// Generates the trace. The same spec and seed give the same trace on every machine (GSL's
    /// MT19937 and its distributions are the same code everywhere).
    public func generate(seed: UInt64) -> Trace {
        let rng = RandomSource(seed: seed)
        let cat = catalogue.generate(rng)
        var sampler = AdapterSampler(popularity: popularity, shifts: popularityShifts, adapterCount: cat.count)
        var out: [TraceRequest] = []
        out.reserveCapacity(requests)
        var t = 0.0
        for i in 0..<requests {
            if i > 0 { t = arrival.nextArrival(after: t, rng) }
            let adapter = sampler.next(arrivalSeconds: t, rng)
            let lengths = jointLengths?.draw(rng) ?? (prompt: promptTokens.draw(rng), output: outputTokens.draw(rng))
            out.append(
                TraceRequest(
                    requestID: i, arrivalSeconds: t, adapter: adapter, promptTokens: lengths.prompt, outputTokens: lengths.output))
        }
        return Trace(requests: out, catalogue: cat, provenance: provenance(seed: seed))
    }

    /// How a trace of this spec was made, for `<name>.meta.json`.
    public func provenance(seed: UInt64) -> [String: String] {
        var p = [
            "generator": "loratwin GeneratorSpec", "seed": String(seed), "requests": String(requests),
            "arrival": "\(arrival)", "popularity": "\(popularity)", "prompt_tokens": "\(promptTokens)",
            "output_tokens": "\(outputTokens)", "catalogue": catalogue.summary,
        ]
        if let jointLengths {
            p["lengths"] = jointLengths.description
            p["prompt_tokens"] = nil
            p["output_tokens"] = nil
        }
        if !popularityShifts.isEmpty {
            p["popularity_shifts"] = popularityShifts.map { "from \($0.startSeconds) s: \($0.popularity), rotation \($0.rotation)" }
                .joined(separator: "; ")
        }
        return p
    }
}
