import Foundation

/// File-to-file conversions, row by row: the trace is never held in memory.
extension TraceFiles {
    /// Converts a trace between CSV and JSONL (formats from the extensions), checking every row and,
    /// when the input has a catalogue beside it, every adapter name. The catalogue and provenance
    /// are copied beside the output (unless the two share them: `x.csv` -> `x.jsonl`).
    /// - Returns: the number of requests written.
    @discardableResult
    public static func convert(_ input: String, to output: String) throws(WorkloadError) -> Int {
        let cataloguePath = cataloguePath(forTrace: input)
        let catalogue = FileManager.default.fileExists(atPath: cataloguePath) ? try CatalogueFile.read(cataloguePath) : nil
        let reader = try openReader(input)
        let writer = try TraceWriter(path: output)
        while let row = try reader.next() {
            if let name = row.adapterName, let catalogue, catalogue.index(of: name) == nil {
                throw WorkloadError(
                    file: input, line: row.line, field: "adapter", "'\(name)' is not in the adapter catalogue \(cataloguePath)")
            }
            try writer.write(row)
        }
        if cataloguePath != Self.cataloguePath(forTrace: output) {
            if let catalogue { try CatalogueFile.write(catalogue, to: Self.cataloguePath(forTrace: output)) }
            var provenance = readMeta(input)
            provenance["converted_from"] = input
            try writeMeta(provenance, requests: writer.rowCount, forTrace: output)
        }
        try writer.commit()
        return writer.rowCount
    }

    /// Writes what `importer` reads to `output` row by row, with the assigned catalogue and the
    /// importer's provenance beside it.
    /// - Returns: the number of requests written.
    @discardableResult
    public static func write(_ importer: TraceImporter, to output: String) throws(WorkloadError) -> Int {
        let writer = try TraceWriter(path: output)
        while let row = try importer.next() { try writer.write(row) }
        try CatalogueFile.write(importer.catalogue, to: cataloguePath(forTrace: output))
        try writeMeta(importer.provenance, requests: writer.rowCount, forTrace: output)
        try writer.commit()
        return writer.rowCount
    }
}
