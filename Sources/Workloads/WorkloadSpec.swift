/// Where a scenario's requests come from: a trace file with its catalogue, a real trace imported
/// with options, or a generator.
public enum WorkloadSpec: Sendable, Equatable {
    /// A trace file (CSV or JSONL) and its adapter catalogue, paths relative to the scenario file.
    case file(trace: String, catalogue: String?)
    /// Another project's trace (Azure 2023, BurstGPT) read through `ImportOptions`; the adapter
    /// assignment's seed, when `nil`, is the scenario's seed.
    case imported(trace: String, kind: TraceSourceKind, options: ImportOptions, seed: UInt64?)
    /// A seeded generator.
    case generated(GeneratorSpec)

    /// Reads the `workload:` section of a scenario.
    ///
    /// ```yaml
    /// workload: {trace: traces/examples/small.csv, catalogue: traces/examples/small.catalogue.csv}
    /// workload:
    ///   trace: traces/azure-llm-2023/AzureLLMInferenceTrace_conv.csv
    ///   format: azure                # or burstgpt
    ///   window_s: [0, 600]           # optional
    ///   rate_scale: 2                # optional
    ///   limit: 5000                  # optional
    ///   popularity: {kind: zipf, exponent: 1.1}
    ///   adapters: {count: 32, ranks: {8: 1, 16: 1}}
    /// ```
    /// Anything else is a generator section (`GeneratorSpec.parse`).
    public static func parse(_ y: YAMLReader) throws(WorkloadError) -> WorkloadSpec {
        guard y.has("trace") else { return .generated(try GeneratorSpec.parse(y)) }
        guard let format = try y.string("format"), format != TraceSourceKind.loratwin.rawValue else {
            try y.checkKeys(["trace", "catalogue", "format"])
            return .file(trace: try y.requiredString("trace"), catalogue: try y.string("catalogue"))
        }
        try y.checkKeys(["trace", "format", "window_s", "rate_scale", "limit", "popularity", "adapters", "seed"])
        guard let kind = TraceSourceKind(rawValue: format) else {
            throw y.error("format", "unknown '\(format)'; expected loratwin, azure or burstgpt")
        }
        var options = ImportOptions()
        if let w = try y.strings("window_s") {
            guard w.count == 2, let start = Double(w[0]), let end = Double(w[1]) else {
                throw y.error("window_s", "expected [start, end] in seconds")
            }
            options.windowStartSeconds = start
            options.windowEndSeconds = end
        }
        options.rateScale = try y.double("rate_scale", positive: true) ?? 1
        options.limit = try y.int("limit", min: 0)
        if y.has("popularity") || y.has("adapters") {
            let pop = try y.kinded("popularity") ?? ("uniform", nil)
            options.adapters = AdapterAssignment(
                catalogue: try GeneratorSpec.parseCatalogue(try y.mapping("adapters")),
                popularity: try GeneratorSpec.parsePopularity(pop.kind, pop.body, y, key: "popularity", extraKeys: []), seed: 0)
        }
        let seed = try y.int("seed", min: 0).map { UInt64($0) }
        try options.validate(source: y.file)
        return .imported(trace: try y.requiredString("trace"), kind: kind, options: options, seed: seed)
    }

    /// Produces the trace: reads the files (relative to `baseDirectory`) or runs the generator.
    public func makeTrace(baseDirectory: String, seed: UInt64) throws(WorkloadError) -> Trace {
        func resolve(_ p: String) -> String { resolvedPath(p, against: baseDirectory) }
        switch self {
        case .generated(let g): return g.generate(seed: seed)
        case .file(let trace, let catalogue):
            return try TraceFiles.read(trace: resolve(trace), catalogue: catalogue.map(resolve))
        case .imported(let trace, let kind, var options, let ownSeed):
            options.adapters?.seed = ownSeed ?? seed
            guard let source = try TraceSource.external(resolve(trace), kind: kind) else {
                return try TraceFiles.read(trace: resolve(trace), catalogue: nil)
            }
            return try TraceImporter(source, options: options).readTrace()
        }
    }
}
