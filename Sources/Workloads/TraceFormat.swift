/// The file formats of the project's traces (docs/trace-format.md).
public enum TraceFormat: String, Sendable, CaseIterable {
    /// Comma-separated, header `request_id,arrival_s,adapter,prompt_tokens,output_tokens`.
    case csv
    /// One JSON object a line with the same five keys.
    case jsonl

    /// The version of the trace format that this code reads and writes.
    public static let version = 1

    /// The trace CSV header, column by column.
    public static let csvColumns = ["request_id", "arrival_s", "adapter", "prompt_tokens", "output_tokens"]

    /// The format a path's extension names (`.csv`; `.jsonl` or `.ndjson`), or nil.
    public init?(path: String) {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") {
            self = .csv
        } else if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") {
            self = .jsonl
        } else {
            return nil
        }
    }

    /// The format of `path`, or an error that says which extensions are known.
    public static func of(_ path: String) throws(WorkloadError) -> TraceFormat {
        guard let f = TraceFormat(path: path) else {
            throw WorkloadError(file: path, "unknown trace format; expected a .csv or .jsonl file")
        }
        return f
    }
}
