import ArgumentParser
import Workloads

/// Options that say which adapters a trace's requests use, for `trace generate` and `trace convert`.
struct AdapterOptions: ParsableArguments {
    @Option(help: "Number of adapters in the generated catalogue (0: every request on the base model).")
    var adapters: Int?

    @Option(help: "Adapter popularity: distinct, uniform, identical, zipf:EXPONENT or top:COUNT:SHARE.")
    var popularity: String = "uniform"

    @Option(help: "Ranks with optional weights, e.g. 8,16,32,64 or 8:4,16:2,64:1.")
    var ranks: String = "8,16,32,64"

    @Option(help: "LoRA alpha of every adapter.")
    var alpha: Double = 16

    @Option(help: "Target modules, ;-separated.")
    var targetModules: String = "q_proj;k_proj;v_proj;o_proj"

    @Option(help: "Seed for every random draw.")
    var seed: UInt64 = 0

    /// The catalogue spec of `count` adapters.
    func catalogue(count: Int) throws -> CatalogueSpec {
        var ranked: [(rank: Int, weight: Double)] = []
        for item in ranks.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard let r = Int(parts[0]), r > 0, parts.count <= 2 else { throw ValidationError("--ranks: bad rank '\(item)'") }
            let w = parts.count == 2 ? Double(parts[1]) : 1
            guard let w, w >= 0 else { throw ValidationError("--ranks: bad weight in '\(item)'") }
            ranked.append((r, w))
        }
        guard ranked.contains(where: { $0.weight > 0 }) else { throw ValidationError("--ranks: needs a rank of positive weight") }
        let modules = targetModules.split(separator: ";").map(String.init)
        guard !modules.isEmpty else { throw ValidationError("--target-modules: needs at least one module") }
        guard count >= 0 else { throw ValidationError("--adapters: expected a count >= 0") }
        return CatalogueSpec(count: count, ranks: ranked, alpha: alpha, targetModules: modules)
    }

    /// The popularity named by `--popularity`.
    func parsedPopularity() throws -> Popularity {
        let p = popularity.split(separator: ":").map(String.init)
        switch p.first ?? "" {
        case "distinct" where p.count == 1: return .distinct
        case "uniform" where p.count == 1: return .uniform
        case "identical" where p.count == 1: return .identical
        case "zipf" where p.count == 2:
            guard let s = Double(p[1]), s >= 0 else { break }
            return .zipf(exponent: s)
        case "top" where p.count == 3:
            guard let k = Int(p[1]), k > 0, let share = Double(p[2]), (0...1).contains(share) else { break }
            return .topShare(adapters: k, share: share)
        default: break
        }
        throw ValidationError("--popularity: '\(popularity)'; expected distinct, uniform, identical, zipf:1.1 or top:4:0.8")
    }
}

/// A length distribution from a short text: `fixed:N`, `uniform:LO:HI`, `normal:MEAN:SD[:LO:HI]`,
/// `lognormal:MEAN:SIGMA[:LO:HI]`, `empirical:TRACE` (prompt or output lengths of a trace).
func parseLengths(_ text: String, output: Bool, option: String) throws -> LengthDistribution {
    if let n = Int(text), n >= 1 { return .fixed(n) }
    let p = text.split(separator: ":", maxSplits: text.hasPrefix("empirical:") ? 1 : Int.max).map(String.init)
    let numbers = p.dropFirst().map { Double($0) }
    func bounds(_ i: Int) -> (Int, Int)? {
        guard p.count == i || p.count == i + 2 else { return nil }
        if p.count == i { return (1, 1_000_000) }
        guard let lo = Int(p[i]), let hi = Int(p[i + 1]), lo >= 1, hi >= lo else { return nil }
        return (lo, hi)
    }
    switch p.first ?? "" {
    case "fixed" where p.count == 2:
        if let n = Int(p[1]), n >= 1 { return .fixed(n) }
    case "uniform" where p.count == 3:
        if let lo = Int(p[1]), let hi = Int(p[2]), lo >= 1, hi >= lo { return .uniform(low: lo, high: hi) }
    case "normal":
        if p.count >= 3, let m = numbers[0], let sd = numbers[1], m > 0, sd >= 0, let (lo, hi) = bounds(3) {
            return .normal(mean: m, sd: sd, min: lo, max: hi)
        }
    case "lognormal":
        if p.count >= 3, let m = numbers[0], let s = numbers[1], m > 0, s > 0, let (lo, hi) = bounds(3) {
            return .logNormal(mean: m, sigma: s, min: lo, max: hi)
        }
    case "empirical" where p.count == 2:
        return .empirical(try TraceSource.lengths(p[1], output: output))
    default: break
    }
    throw ValidationError(
        "\(option): '\(text)'; expected N, fixed:N, uniform:LO:HI, normal:MEAN:SD[:LO:HI], lognormal:MEAN:SIGMA[:LO:HI] or empirical:TRACE")
}
