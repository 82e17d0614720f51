import Foundation

/// Reading and writing traces in the project's format (docs/trace-format.md): the trace file, its
/// catalogue `<name>.catalogue.csv` and its provenance `<name>.meta.json` beside it.
public enum TraceFiles {
    /// The catalogue path that goes with a trace path: `x.csv` -> `x.catalogue.csv`.
    public static func cataloguePath(forTrace path: String) -> String { stem(path) + ".catalogue.csv" }

    /// The provenance path that goes with a trace path: `x.csv` -> `x.meta.json`.
    public static func metaPath(forTrace path: String) -> String { stem(path) + ".meta.json" }

    private static func stem(_ path: String) -> String {
        for ext in [".csv", ".jsonl", ".ndjson"] where path.lowercased().hasSuffix(ext) { return String(path.dropLast(ext.count)) }
        return path
    }

    /// Opens a row reader for `path`, by its extension unless `format` is given.
    public static func openReader(_ path: String, format: TraceFormat? = nil) throws(WorkloadError) -> any TraceRowReader {
        let resolved: TraceFormat
        if let format { resolved = format } else { resolved = try TraceFormat.of(path) }
        switch resolved {
        case .csv: return try TraceCSVReader(path: path)
        case .jsonl: return try TraceJSONLReader(path: path)
        }
    }

    /// Reads a trace file and its catalogue.
    ///
    /// - Parameters:
    ///   - trace: a `.csv` or `.jsonl` trace.
    ///   - catalogue: the catalogue; when nil, `<name>.catalogue.csv` beside the trace if it exists.
    ///   - collectUnknownAdapters: when true, an adapter missing from the catalogue is added to it
    ///     (rank 0, no target modules: unknown) instead of being an error; for inspecting a trace alone.
    /// - Returns: the trace, requests in file order (arrival times are checked to not decrease).
    public static func read(trace: String, catalogue: String?, collectUnknownAdapters: Bool = false) throws(WorkloadError)
        -> Trace
    {
        var catalogueUsed = catalogue
        if catalogueUsed == nil, FileManager.default.fileExists(atPath: cataloguePath(forTrace: trace)) {
            catalogueUsed = cataloguePath(forTrace: trace)
        }
        var adapters: [AdapterSpec] = []
        if let catalogueUsed { adapters = try CatalogueFile.read(catalogueUsed).adapters }
        var index: [String: Int] = [:]
        for (i, a) in adapters.enumerated() { index[a.name] = i }
        let reader = try openReader(trace)
        var requests: [TraceRequest] = []
        var lastName: String? = nil
        var lastIndex = TraceRequest.baseModel
        while let row = try reader.next() {
            var adapter = TraceRequest.baseModel
            if let name = row.adapterName {
                if name == lastName {
                    adapter = lastIndex
                } else if let i = index[name] {
                    adapter = i
                } else if collectUnknownAdapters {
                    adapter = adapters.count
                    index[name] = adapter
                    adapters.append(AdapterSpec(name: name, rank: 0, alpha: 0, targetModules: []))
                } else {
                    throw WorkloadError(
                        file: trace, line: row.line, field: "adapter",
                        catalogueUsed.map { "'\(name)' is not in the adapter catalogue \($0)" }
                            ?? "'\(name)' names an adapter, but there is no catalogue (expected \(Self.cataloguePath(forTrace: trace)))")
                }
                lastName = name
                lastIndex = adapter
            }
            requests.append(
                TraceRequest(
                    requestID: row.requestID, arrivalSeconds: row.arrivalSeconds, adapter: adapter,
                    promptTokens: row.promptTokens, outputTokens: row.outputTokens))
        }
        return Trace(requests: requests, catalogue: AdapterCatalogue(adapters), provenance: readMeta(trace))
    }

    /// Writes `trace` to `path` (format from the extension unless given), its catalogue to
    /// `<name>.catalogue.csv` and its provenance to `<name>.meta.json`, each atomically.
    public static func write(_ trace: Trace, to path: String, format: TraceFormat? = nil) throws(WorkloadError) {
        let writer = try TraceWriter(path: path, format: format)
        let names = trace.catalogue.adapters.map(\.name)
        for r in trace.requests {
            guard r.adapter == TraceRequest.baseModel || names.indices.contains(r.adapter) else {
                throw WorkloadError(
                    file: path, field: "adapter", "request \(r.requestID) refers to adapter \(r.adapter), beyond the catalogue")
            }
            try writer.write(
                TraceRow(
                    requestID: r.requestID, arrivalSeconds: r.arrivalSeconds,
                    adapterName: r.adapter == TraceRequest.baseModel ? nil : names[r.adapter],
                    promptTokens: r.promptTokens, outputTokens: r.outputTokens))
        }
        try CatalogueFile.write(trace.catalogue, to: cataloguePath(forTrace: path))
        try writeMeta(trace.provenance, requests: trace.requests.count, forTrace: path)
        try writer.commit()
    }

    /// Writes `<name>.meta.json` for the trace at `path`: the format version, the request count
    /// and how the trace was made.
    public static func writeMeta(_ provenance: [String: String], requests: Int, forTrace path: String) throws(WorkloadError) {
        var object: [String: Any] = ["format": "loratwin-trace", "version": TraceFormat.version, "requests": requests]
        if !provenance.isEmpty { object["provenance"] = provenance }
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) } catch {
            throw WorkloadError(file: metaPath(forTrace: path), "cannot encode provenance: \(error)")
        }
        let out = try AtomicFileWriter(path: metaPath(forTrace: path))
        try out.write(bytes: data)
        try out.write("\n")
        try out.commit()
    }

    /// The provenance in `<name>.meta.json` beside `path`, or empty when there is none or it is unreadable.
    public static func readMeta(_ path: String) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: metaPath(forTrace: path)),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let p = object["provenance"] as? [String: String]
        else { return [:] }
        return p
    }
}
