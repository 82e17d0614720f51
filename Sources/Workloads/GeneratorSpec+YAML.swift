extension GeneratorSpec {
    /// Reads a generator section (`workload:` of a scenario).
    ///
    /// ```yaml
    /// requests: 2000
    /// arrival: {kind: gamma, rate: 8, cv: 2}
    /// popularity: {kind: zipf, exponent: 1.1}
    /// prompt_tokens: {kind: lognormal, mean: 600, sigma: 0.9, min: 4, max: 3000}
    /// output_tokens: {kind: lognormal, mean: 180, sigma: 0.8, min: 1, max: 1000}
    /// adapters: {count: 32, ranks: {8: 1, 16: 1, 32: 1, 64: 1}, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj]}
    /// ```
    public static func parse(_ y: YAMLReader) throws(WorkloadError) -> GeneratorSpec {
        try y.checkKeys(["requests", "arrival", "popularity", "prompt_tokens", "output_tokens", "adapters"])
        let requests = try y.int("requests", min: 1) ?? 1000
        guard let arrivalNode = try y.kinded("arrival") else { throw y.error("arrival", "missing; e.g. {kind: poisson, rate: 10}") }
        let arrival = try parseArrival(arrivalNode.kind, arrivalNode.body, y)
        let pop = try y.kinded("popularity") ?? ("uniform", nil)
        let popularity: Popularity
        switch pop.kind {
        case "distinct": popularity = .distinct
        case "uniform": popularity = .uniform
        case "identical": popularity = .identical
        case "zipf", "skewed":
            guard let b = pop.body else { throw y.error("popularity", "zipf needs an exponent: {kind: zipf, exponent: 1.0}") }
            try b.checkKeys(["kind", "exponent"])
            popularity = .zipf(exponent: try b.double("exponent", min: 0) ?? 1.0)
        default: throw y.error("popularity", "unknown kind '\(pop.kind)'; expected distinct, uniform, zipf or identical")
        }
        let prompt = try parseLength(y, "prompt_tokens", default: .fixed(512))
        let output = try parseLength(y, "output_tokens", default: .fixed(128))
        var cat = CatalogueSpec(count: 8, ranks: [(16, 1)], alpha: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"])
        if let a = try y.mapping("adapters") {
            try a.checkKeys(["count", "ranks", "alpha", "target_modules"])
            cat.count = try a.int("count", min: 0) ?? cat.count
            cat.alpha = try a.double("alpha", positive: true) ?? cat.alpha
            cat.targetModules = try a.strings("target_modules") ?? cat.targetModules
            if let r = try a.mapping("ranks") {
                var ranks: [(rank: Int, weight: Double)] = []
                for k in r.keys {
                    guard let rank = Int(k), rank > 0 else { throw r.error(k, "a rank must be a positive integer") }
                    ranks.append((rank, try r.double(k, min: 0) ?? 0))
                }
                guard ranks.contains(where: { $0.weight > 0 }) else { throw a.error("ranks", "needs at least one positive weight") }
                cat.ranks = ranks
            } else if let list = try a.strings("ranks") {
                var ranks: [(rank: Int, weight: Double)] = []
                for s in list {
                    guard let rank = Int(s), rank > 0 else { throw a.error("ranks", "a rank must be a positive integer, found '\(s)'") }
                    ranks.append((rank, 1))
                }
                cat.ranks = ranks
            }
        }
        return GeneratorSpec(
            requests: requests, arrival: arrival, popularity: popularity, promptTokens: prompt, outputTokens: output,
            catalogue: cat)
    }

    private static func parseArrival(_ kind: String, _ b: YAMLReader?, _ y: YAMLReader) throws(WorkloadError) -> ArrivalProcess {
        guard let b else { throw y.error("arrival", "needs a rate: {kind: \(kind), rate: 10}") }
        guard let rate = try b.double("rate", positive: true) else { throw b.error("rate", "missing; requests per second") }
        switch kind {
        case "poisson":
            try b.checkKeys(["kind", "rate"])
            return .poisson(rate: rate)
        case "gamma":
            try b.checkKeys(["kind", "rate", "cv"])
            return .gamma(rate: rate, cv: try b.double("cv", positive: true) ?? 1)
        case "constant":
            try b.checkKeys(["kind", "rate"])
            return .constant(rate: rate)
        default: throw y.error("arrival", "unknown kind '\(kind)'; expected poisson, gamma or constant")
        }
    }

    private static func parseLength(_ y: YAMLReader, _ key: String, default d: LengthDistribution) throws(WorkloadError)
        -> LengthDistribution
    {
        guard let node = try y.kinded(key) else { return d }
        if node.body == nil, let n = Int(node.kind) {
            guard n >= 1 else { throw y.error(key, "must be at least 1") }
            return .fixed(n)
        }
        guard let b = node.body else { throw y.error(key, "expected a token count or {kind: ...}") }
        switch node.kind {
        case "fixed":
            try b.checkKeys(["kind", "tokens"])
            return .fixed(try b.int("tokens", min: 1) ?? 1)
        case "uniform":
            try b.checkKeys(["kind", "min", "max"])
            let lo = try b.int("min", min: 1) ?? 1
            let hi = try b.int("max", min: lo) ?? lo
            return .uniform(low: lo, high: hi)
        case "lognormal":
            try b.checkKeys(["kind", "mean", "sigma", "min", "max"])
            guard let mean = try b.double("mean", positive: true) else { throw b.error("mean", "missing") }
            let lo = try b.int("min", min: 1) ?? 1
            return .logNormal(
                mean: mean, sigma: try b.double("sigma", positive: true) ?? 1, min: lo, max: try b.int("max", min: lo) ?? 1_000_000)
        default: throw y.error(key, "unknown kind '\(node.kind)'; expected fixed, uniform or lognormal")
        }
    }
}
