/// The trace formats `TraceSource.open` recognises.
public enum TraceSourceKind: String, Sendable, CaseIterable {
    /// The project's own format (`.csv` or `.jsonl`).
    case loratwin
    /// The Azure LLM inference trace 2023.
    case azure
    /// BurstGPT.
    case burstgpt
}

/// Opens any trace the project can read, telling formats apart by their header.
public enum TraceSource {
    /// The kind of trace at `path`: JSONL by extension, otherwise from the CSV header's first column.
    public static func detect(_ path: String) throws(WorkloadError) -> TraceSourceKind {
        if TraceFormat(path: path) == .jsonl { return .loratwin }
        let lines = try ByteLineReader(path: path)
        guard let first = try lines.nextLine() else { return .loratwin }
        let header = String(decoding: first, as: UTF8.self).lowercased()
        if header.hasPrefix("timestamp,") && header.contains("contexttokens") { return .azure }
        if header.contains("request tokens") || header.contains("response tokens") { return .burstgpt }
        return .loratwin
    }

    /// A reader of another project's trace at `path`, or nil for the project's own format.
    /// `model` and `logType` filter BurstGPT rows.
    public static func external(_ path: String, kind: TraceSourceKind, model: String? = nil, logType: String? = nil)
        throws(WorkloadError) -> (any ExternalTraceReader)?
    {
        switch kind {
        case .loratwin: return nil
        case .azure: return try AzureTraceReader(path: path)
        case .burstgpt: return try BurstGPTReader(path: path, model: model, logType: logType)
        }
    }

    /// A row reader for `path` of `kind` (detected when nil).
    public static func open(_ path: String, kind: TraceSourceKind? = nil) throws(WorkloadError) -> any TraceRowReader {
        let k: TraceSourceKind
        if let kind { k = kind } else { k = try detect(path) }
        if let reader = try external(path, kind: k) { return reader }
        return try TraceFiles.openReader(path)
    }

    /// The prompt or output lengths of every request of the trace at `path`, for an empirical
    /// length distribution.
    public static func lengths(_ path: String, output: Bool, kind: TraceSourceKind? = nil) throws(WorkloadError) -> [Int] {
        let reader = try open(path, kind: kind)
        var out: [Int] = []
        while let row = try reader.next() { out.append(output ? row.outputTokens : row.promptTokens) }
        guard !out.isEmpty else { throw WorkloadError(file: path, "the trace has no requests to take lengths from") }
        return out
    }
}
