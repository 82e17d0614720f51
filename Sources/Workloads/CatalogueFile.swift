import Foundation

/// Reads and writes adapter catalogues: CSV with the header `adapter,rank,alpha,target_modules`
/// and optionally a fifth column `base_model`; target modules are `;`-separated.
public enum CatalogueFile {
    /// The catalogue columns; the last, `base_model`, is optional.
    public static let columns = ["adapter", "rank", "alpha", "target_modules", "base_model"]

    /// Reads a catalogue; adapters keep the file's order.
    public static func read(_ path: String) throws(WorkloadError) -> AdapterCatalogue {
        let lines = try ByteLineReader(path: path)
        var fields: [UnsafeBufferPointer<UInt8>] = []
        guard let header = try lines.nextLine() else {
            throw WorkloadError(file: path, line: 1, "empty file; expected the header adapter,rank,alpha,target_modules")
        }
        if let problem = CSVLine.split(header, into: &fields) { throw WorkloadError(file: path, line: 1, problem) }
        let found = fields.map { String(decoding: $0, as: UTF8.self) }
        guard found == Array(columns.prefix(4)) || found == columns else {
            throw WorkloadError(
                file: path, line: 1,
                "header is '\(found.joined(separator: ","))'; expected adapter,rank,alpha,target_modules[,base_model]")
        }
        let width = found.count
        var adapters: [AdapterSpec] = []
        var seen: [String: Int] = [:]
        while let line = try lines.nextLine() {
            if CSVLine.isBlank(line) { continue }
            let n = lines.lineNumber
            if let problem = CSVLine.split(line, into: &fields) { throw WorkloadError(file: path, line: n, problem) }
            guard fields.count == width else {
                throw WorkloadError(file: path, line: n, "\(fields.count) fields; expected \(width) (\(found.joined(separator: ",")))")
            }
            let name = String(decoding: fields[0], as: UTF8.self)
            guard !name.isEmpty else { throw WorkloadError(file: path, line: n, field: "adapter", "empty; expected an adapter name") }
            if let first = seen[name] {
                throw WorkloadError(file: path, line: n, field: "adapter", "duplicate adapter '\(name)' (first on line \(first))")
            }
            seen[name] = n
            guard let rank = FieldParser.int(fields[1]), rank >= 1 else {
                throw WorkloadError(file: path, line: n, field: "rank", "'\(CSVLine.text(fields[1]))'; expected an integer >= 1")
            }
            guard let alpha = FieldParser.double(fields[2]), alpha.isFinite else {
                throw WorkloadError(file: path, line: n, field: "alpha", "'\(CSVLine.text(fields[2]))'; expected a finite number")
            }
            let modulesText = String(decoding: fields[3], as: UTF8.self)
            let modules = modulesText.split(separator: ";", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard !modules.contains(where: \.isEmpty) else {
                throw WorkloadError(
                    file: path, line: n, field: "target_modules", "'\(modulesText)'; expected e.g. q_proj;k_proj;v_proj;o_proj")
            }
            let base = width == 5 && !fields[4].isEmpty ? String(decoding: fields[4], as: UTF8.self) : nil
            adapters.append(AdapterSpec(name: name, rank: rank, alpha: alpha, targetModules: modules, baseModel: base))
        }
        return AdapterCatalogue(adapters)
    }

    /// Writes `catalogue` to `path` atomically; the `base_model` column only when an adapter has one
    /// (the four-column form is what the live engine reads).
    public static func write(_ catalogue: AdapterCatalogue, to path: String) throws(WorkloadError) {
        let withBase = catalogue.adapters.contains { $0.baseModel != nil }
        let out = try AtomicFileWriter(path: path)
        try out.write((withBase ? columns : Array(columns.prefix(4))).joined(separator: ",") + "\n")
        for a in catalogue.adapters {
            // Readers trim fields, so a name or module with edge spaces would not read back.
            guard !a.name.isEmpty, a.name.first != " ", a.name.last != " " else {
                throw WorkloadError(file: path, field: "adapter", "'\(a.name)'; names cannot be empty or start or end with a space")
            }
            guard !a.targetModules.isEmpty,
                !a.targetModules.contains(where: { $0.isEmpty || $0.contains(";") || $0 != $0.trimmingCharacters(in: .whitespaces) })
            else {
                throw WorkloadError(
                    file: path, field: "target_modules",
                    "adapter '\(a.name)': \(a.targetModules); expected module names without ';' or edge spaces")
            }
            var fields = [
                CSVLine.escape(a.name), String(a.rank), a.alpha.description, CSVLine.escape(a.targetModules.joined(separator: ";")),
            ]
            if withBase { fields.append(CSVLine.escape(a.baseModel ?? "")) }
            try out.write(fields.joined(separator: ",") + "\n")
        }
        try out.commit()
    }
}
