/// The short text forms of popularities and length distributions that the command line takes.
extension Popularity {
    /// Parses `distinct`, `uniform`, `identical`, `zipf:EXPONENT` or `top:COUNT:SHARE`; nil otherwise.
    public init?(shortForm text: String) {
        let p = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch (p.first ?? "", p.count) {
        case ("distinct", 1): self = .distinct
        case ("uniform", 1): self = .uniform
        case ("identical", 1): self = .identical
        case ("zipf", 2):
            guard let s = Double(p[1]), s >= 0, s.isFinite else { return nil }
            self = .zipf(exponent: s)
        case ("top", 3):
            guard let k = Int(p[1]), k > 0, let share = Double(p[2]), (0...1).contains(share) else { return nil }
            self = .topShare(adapters: k, share: share)
        default: return nil
        }
    }
}

extension LengthDistribution {
    /// Parses `N`, `fixed:N`, `uniform:LO:HI`, `normal:MEAN:SD[:LO:HI]`, `lognormal:MEAN:SIGMA[:LO:HI]`
    /// or `empirical:TRACE` (the prompt lengths, or the output lengths when `output`, of a trace file).
    /// Returns nil for text of none of these forms; throws only when reading the trace fails.
    public static func parse(shortForm text: String, output: Bool) throws(WorkloadError) -> LengthDistribution? {
        if let n = Int(text) { return n >= 1 ? .fixed(n) : nil }
        if text.hasPrefix("empirical:") {
            let path = String(text.dropFirst("empirical:".count))
            return path.isEmpty ? nil : .empirical(try TraceSource.lengths(path, output: output))
        }
        let p = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func bounds(_ i: Int) -> (Int, Int)? {
            if p.count == i { return (1, 1_000_000) }
            guard p.count == i + 2, let lo = Int(p[i]), let hi = Int(p[i + 1]), lo >= 1, hi >= lo else { return nil }
            return (lo, hi)
        }
        let a = p.count > 1 ? Double(p[1]) : nil
        let b = p.count > 2 ? Double(p[2]) : nil
        switch p.first ?? "" {
        case "fixed":
            guard p.count == 2, let n = Int(p[1]), n >= 1 else { return nil }
            return .fixed(n)
        case "uniform":
            guard p.count == 3, let lo = Int(p[1]), let hi = Int(p[2]), lo >= 1, hi >= lo else { return nil }
            return .uniform(low: lo, high: hi)
        case "normal":
            guard let m = a, let sd = b, m > 0, m.isFinite, sd >= 0, sd.isFinite, let (lo, hi) = bounds(3) else { return nil }
            return .normal(mean: m, sd: sd, min: lo, max: hi)
        case "lognormal":
            guard let m = a, let s = b, m > 0, m.isFinite, s > 0, s.isFinite, let (lo, hi) = bounds(3) else { return nil }
            return .logNormal(mean: m, sigma: s, min: lo, max: hi)
        default: return nil
        }
    }
}

extension CatalogueSpec {
    /// Parses ranks with optional weights, `8,16,32,64` or `8:4,16:2,64:1`; nil unless every rank
    /// is a positive integer, every weight a finite number >= 0, and one weight positive.
    public static func ranks(shortForm text: String) -> [(rank: Int, weight: Double)]? {
        var out: [(rank: Int, weight: Double)] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 1 || parts.count == 2, let r = Int(parts[0]), r > 0 else { return nil }
            let w = parts.count == 2 ? Double(parts[1]) : 1
            guard let w, w >= 0, w.isFinite else { return nil }
            out.append((r, w))
        }
        return out.contains { $0.weight > 0 } ? out : nil
    }
}
