/// Where a scenario's requests come from: a trace file with its catalogue, or a generator.
public enum WorkloadSpec: Sendable, Equatable {
    /// A trace file (CSV or JSONL) and its adapter catalogue, paths relative to the scenario file.
    case file(trace: String, catalogue: String?)
    /// A seeded generator.
    case generated(GeneratorSpec)

    /// Reads the `workload:` section of a scenario.
    public static func parse(_ y: YAMLReader) throws(WorkloadError) -> WorkloadSpec {
        if y.has("trace") {
            try y.checkKeys(["trace", "catalogue"])
            return .file(trace: try y.requiredString("trace"), catalogue: try y.string("catalogue"))
        }
        return .generated(try GeneratorSpec.parse(y))
    }

    /// Produces the trace: reads the files (relative to `baseDirectory`) or runs the generator.
    public func makeTrace(baseDirectory: String, seed: UInt64) throws(WorkloadError) -> Trace {
        switch self {
        case .generated(let g): return g.generate(seed: seed)
        case .file(let trace, let catalogue):
            func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : baseDirectory + "/" + p }
            return try TraceFiles.read(trace: resolve(trace), catalogue: catalogue.map(resolve))
        }
    }
}
