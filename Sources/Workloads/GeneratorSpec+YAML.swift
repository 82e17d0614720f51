import Yams

extension GeneratorSpec {
    /// Reads a generator section (`workload:` of a scenario).
    ///
    /// ```yaml
    /// requests: 2000
    /// arrival: {kind: gamma, rate: 8, cv: 2}          # poisson, constant, or piecewise (below)
    /// popularity: {kind: zipf, exponent: 1.1}         # distinct, uniform, identical, {kind: skewed, top: 4, share: 0.8}
    /// popularity_shifts: [{start_s: 60, kind: zipf, exponent: 1.1, rotation: 16}]
    /// prompt_tokens: {kind: lognormal, mean: 600, sigma: 0.9, min: 4, max: 3000}
    /// output_tokens: {kind: empirical, trace: traces/azure-llm-2023/AzureLLMInferenceTrace_conv.csv}
    /// # or both together, keeping their correlation (instead of prompt_tokens and output_tokens):
    /// # lengths: {kind: empirical, trace: traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv}
    /// adapters: {count: 32, ranks: {8: 1, 16: 1, 32: 1, 64: 1}, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj]}
    /// ```
    ///
    /// A piecewise arrival schedule: `{kind: piecewise, phases: [{duration_s: 60, kind: poisson, rate: 2},
    /// {duration_s: 60, kind: gamma, rate: 20, cv: 3}]}`. Paths are relative to the scenario file.
    public static func parse(_ y: YAMLReader) throws(WorkloadError) -> GeneratorSpec {
        try y.checkKeys(["requests", "arrival", "popularity", "popularity_shifts", "prompt_tokens", "output_tokens", "lengths", "adapters"])
        let requests = try y.int("requests", min: 1) ?? 1000
        guard let arrivalNode = try y.kinded("arrival") else { throw y.error("arrival", "missing; e.g. {kind: poisson, rate: 10}") }
        let arrival = try parseArrival(arrivalNode.kind, arrivalNode.body, y, key: "arrival")
        let pop = try y.kinded("popularity") ?? ("uniform", nil)
        let popularity = try parsePopularity(pop.kind, pop.body, y, key: "popularity", extraKeys: [])
        var shifts: [PopularityPhase] = []
        for s in try y.mappings("popularity_shifts") ?? [] {
            let kind = try s.requiredString("kind")
            guard let start = try s.double("start_s", min: 0) else { throw s.error("start_s", "missing; seconds from the start") }
            let p = try parsePopularity(kind, s, s, key: "kind", extraKeys: ["start_s", "rotation"])
            shifts.append(PopularityPhase(startSeconds: start, popularity: p, rotation: try s.int("rotation", min: 0) ?? 0))
        }
        let prompt = try parseLength(y, "prompt_tokens", default: .fixed(512), output: false)
        let output = try parseLength(y, "output_tokens", default: .fixed(128), output: true)
        let catalogue = try parseCatalogue(try y.mapping("adapters"))
        var spec = GeneratorSpec(
            requests: requests, arrival: arrival, popularity: popularity, promptTokens: prompt, outputTokens: output,
            catalogue: catalogue, popularityShifts: shifts)
        if let l = try y.mapping("lengths") {
            guard !y.has("prompt_tokens") && !y.has("output_tokens") else {
                throw y.error("lengths", "gives both lengths; remove prompt_tokens and output_tokens, or this key")
            }
            try l.checkKeys(["kind", "trace", "format"])
            guard try l.requiredString("kind") == "empirical" else { throw l.error("kind", "expected empirical (pairs from a trace)") }
            guard let path = try l.path("trace") else { throw l.error("trace", "missing; a trace file to resample from") }
            var kind: TraceSourceKind? = nil
            if let f = try l.string("format") {
                guard let k = TraceSourceKind(rawValue: f) else { throw l.error("format", "unknown; expected loratwin, azure or burstgpt") }
                kind = k
            }
            spec.jointLengths = try JointLengths.load(path, kind: kind)
        }
        return spec
    }

    /// Reads an adapter catalogue spec (`{count, ranks, alpha, target_modules, base_model}`); nil gives the default.
    public static func parseCatalogue(_ a: YAMLReader?) throws(WorkloadError) -> CatalogueSpec {
        var cat = CatalogueSpec(count: 8, ranks: [(16, 1)], alpha: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"])
        guard let a else { return cat }
        try a.checkKeys(["count", "ranks", "alpha", "target_modules", "base_model"])
        cat.count = try a.int("count", min: 0) ?? cat.count
        cat.alpha = try a.double("alpha", positive: true) ?? cat.alpha
        cat.targetModules = try a.strings("target_modules") ?? cat.targetModules
        cat.baseModel = try a.string("base_model")
        guard !cat.targetModules.isEmpty, !cat.targetModules.contains(where: { $0.isEmpty || $0.contains(";") || $0.contains(",") }) else {
            throw a.error("target_modules", "expected module names such as [q_proj, v_proj]")
        }
        if a.node("ranks")?.mapping != nil, let r = try a.mapping("ranks") {
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
            guard !ranks.isEmpty else { throw a.error("ranks", "needs at least one rank") }
            cat.ranks = ranks
        }
        return cat
    }

    /// Reads a popularity of `kind` whose parameters are in `b` (nil for a bare kind).
    static func parsePopularity(_ kind: String, _ b: YAMLReader?, _ y: YAMLReader, key: String, extraKeys: Set<String>)
        throws(WorkloadError) -> Popularity
    {
        try b?.checkKeys(Set(["kind", "exponent", "top", "share"]).union(extraKeys))
        switch kind {
        case "distinct": return .distinct
        case "uniform": return .uniform
        case "identical": return .identical
        case "zipf", "skewed":
            if let b, b.has("top") || b.has("share") {
                guard let top = try b.int("top", min: 1) else { throw b.error("top", "missing; how many adapters are hot") }
                guard let share = try b.double("share", min: 0), share <= 1 else {
                    throw b.error("share", "expected the hot adapters' share of requests, 0 to 1")
                }
                return .topShare(adapters: top, share: share)
            }
            guard let b else {
                throw y.error(key, "\(kind) needs an exponent: {kind: zipf, exponent: 1.0}, or {kind: skewed, top: 4, share: 0.8}")
            }
            return .zipf(exponent: try b.double("exponent", min: 0) ?? 1.0)
        default: throw y.error(key, "unknown kind '\(kind)'; expected distinct, uniform, zipf, skewed or identical")
        }
    }

    private static func parseArrival(_ kind: String, _ b: YAMLReader?, _ y: YAMLReader, key: String, extraKeys: Set<String> = [])
        throws(WorkloadError) -> ArrivalProcess
    {
        guard let b else { throw y.error(key, "needs a rate: {kind: \(kind), rate: 10}") }
        if kind == "piecewise" {
            try b.checkKeys(Set(["kind", "phases"]).union(extraKeys))
            guard let list = try b.mappings("phases"), !list.isEmpty else {
                throw b.error("phases", "missing; a list of {duration_s: 60, kind: poisson, rate: 5}")
            }
            var phases: [RatePhase] = []
            for (i, p) in list.enumerated() {
                let process = try parseArrival(try p.requiredString("kind"), p, p, key: "kind", extraKeys: ["duration_s"])
                if case .piecewise = process { throw p.error("kind", "a phase cannot itself be piecewise") }
                let last = i == list.count - 1
                guard let duration = try p.double("duration_s", positive: true) ?? (last ? .infinity : nil) else {
                    throw p.error("duration_s", "missing; seconds the phase lasts")
                }
                if last && process.meanRate <= 0 { throw p.error("rate", "the last phase must have a rate above 0") }
                phases.append(RatePhase(durationSeconds: duration, process: process))
            }
            return .piecewise(phases)
        }
        let pause = extraKeys.contains("duration_s")
        guard let rate = try b.double("rate", min: 0, positive: !pause) else { throw b.error("rate", "missing; requests per second") }
        switch kind {
        case "poisson":
            try b.checkKeys(Set(["kind", "rate"]).union(extraKeys))
            return .poisson(rate: rate)
        case "gamma":
            try b.checkKeys(Set(["kind", "rate", "cv"]).union(extraKeys))
            return .gamma(rate: rate, cv: try b.double("cv", positive: true) ?? 1)
        case "constant":
            try b.checkKeys(Set(["kind", "rate"]).union(extraKeys))
            return .constant(rate: rate)
        default: throw y.error(key, "unknown kind '\(kind)'; expected poisson, gamma, constant or piecewise")
        }
    }

    private static func parseLength(_ y: YAMLReader, _ key: String, default d: LengthDistribution, output: Bool) throws(WorkloadError)
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
        case "normal":
            try b.checkKeys(["kind", "mean", "sd", "min", "max"])
            guard let mean = try b.double("mean", positive: true) else { throw b.error("mean", "missing") }
            let lo = try b.int("min", min: 1) ?? 1
            return .normal(
                mean: mean, sd: try b.double("sd", min: 0) ?? mean / 4, min: lo, max: try b.int("max", min: lo) ?? 1_000_000)
        case "lognormal":
            try b.checkKeys(["kind", "mean", "sigma", "min", "max"])
            guard let mean = try b.double("mean", positive: true) else { throw b.error("mean", "missing") }
            let lo = try b.int("min", min: 1) ?? 1
            return .logNormal(
                mean: mean, sigma: try b.double("sigma", positive: true) ?? 1, min: lo, max: try b.int("max", min: lo) ?? 1_000_000)
        case "empirical":
            try b.checkKeys(["kind", "trace", "format", "column"])
            guard let path = try b.path("trace") else { throw b.error("trace", "missing; a trace file to resample lengths from") }
            var kind: TraceSourceKind? = nil
            if let f = try b.string("format") {
                guard let k = TraceSourceKind(rawValue: f) else { throw b.error("format", "unknown; expected loratwin, azure or burstgpt") }
                kind = k
            }
            let column = try b.string("column") ?? (output ? "output" : "prompt")
            guard column == "prompt" || column == "output" else { throw b.error("column", "expected prompt or output") }
            return .empirical(try TraceSource.lengths(path, output: column == "output", kind: kind))
        default: throw y.error(key, "unknown kind '\(node.kind)'; expected fixed, uniform, normal, lognormal or empirical")
        }
    }
}
