/// A reader of another project's trace that maps its rows onto the project's format.
public protocol ExternalTraceReader: TraceRowReader {
    /// A short name of the source format, recorded in provenance (`azure-llm-2023`, `burstgpt`).
    var sourceKind: String { get }
    /// Rows skipped so far, by reason (failed requests, filtered rows).
    var skipped: [String: Int] { get }
}
