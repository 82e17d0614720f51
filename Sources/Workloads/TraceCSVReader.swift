/// Reads a trace CSV row by row (docs/trace-format.md), checking every field.
public final class TraceCSVReader: TraceRowReader {
    /// The file being read.
    public var file: String { lines.file }
    private let lines: ByteLineReader
    // Reached only from `next()`, never re-entrantly: no run-time exclusivity checks per row.
    @exclusivity(unchecked) private var fields: [UnsafeBufferPointer<UInt8>] = []
    @exclusivity(unchecked) private var checks = TraceRowChecks()
    @exclusivity(unchecked) private var names = NameCache()

    /// Opens `path` and checks its header.
    public init(path: String) throws(WorkloadError) {
        lines = try ByteLineReader(path: path)
        fields.reserveCapacity(8)
        guard let header = try lines.nextLine() else {
            throw WorkloadError(file: path, line: 1, "empty file; expected the header \(TraceFormat.csvColumns.joined(separator: ","))")
        }
        if let problem = CSVLine.split(header, into: &fields) { throw WorkloadError(file: path, line: 1, problem) }
        let found = fields.map { String(decoding: $0, as: UTF8.self) }
        for (i, column) in TraceFormat.csvColumns.enumerated() where i >= found.count || found[i] != column {
            throw WorkloadError(
                file: path, line: 1, field: column,
                "header is '\(found.joined(separator: ","))'; expected \(TraceFormat.csvColumns.joined(separator: ","))")
        }
        guard found.count == TraceFormat.csvColumns.count else {
            throw WorkloadError(
                file: path, line: 1, field: found[TraceFormat.csvColumns.count],
                "unexpected column; expected \(TraceFormat.csvColumns.joined(separator: ","))")
        }
    }

    /// The next row, or nil at the end of the file.
    public func next() throws(WorkloadError) -> TraceRow? {
        while let line = try lines.nextLine() {
            if CSVLine.isBlank(line) { continue }
            let n = lines.lineNumber
            if let problem = CSVLine.split(line, into: &fields) { throw WorkloadError(file: file, line: n, problem) }
            guard fields.count == 5 else {
                throw WorkloadError(
                    file: file, line: n, field: fields.count < 5 ? TraceFormat.csvColumns[fields.count] : nil,
                    "\(fields.count) fields; expected 5 (\(TraceFormat.csvColumns.joined(separator: ",")))")
            }
            let row = TraceRow(
                requestID: try int(fields[0], n, "request_id", min: 0),
                arrivalSeconds: try seconds(fields[1], n),
                adapterName: adapterName(fields[2]),
                promptTokens: try int(fields[3], n, "prompt_tokens", min: 1),
                outputTokens: try int(fields[4], n, "output_tokens", min: 1), line: n)
            try checks.check(row, file: file)
            return row
        }
        return nil
    }

    private func int(_ f: UnsafeBufferPointer<UInt8>, _ line: Int, _ field: String, min: Int) throws(WorkloadError) -> Int {
        guard let v = FieldParser.int(f) else {
            throw WorkloadError(
                file: file, line: line, field: field,
                f.isEmpty ? "empty; expected an integer" : "'\(CSVLine.text(f))' is not an integer (at most 18 digits)")
        }
        guard v >= min else {
            throw WorkloadError(file: file, line: line, field: field, "\(v); expected an integer of at least \(min)")
        }
        return v
    }

    private func seconds(_ f: UnsafeBufferPointer<UInt8>, _ line: Int) throws(WorkloadError) -> Double {
        guard let v = FieldParser.double(f), v.isFinite, v >= 0 else {
            throw WorkloadError(
                file: file, line: line, field: "arrival_s",
                f.isEmpty ? "empty; expected seconds" : "'\(CSVLine.text(f))'; expected a finite number of seconds >= 0")
        }
        return v
    }

    private func adapterName(_ f: UnsafeBufferPointer<UInt8>) -> String? {
        if f.isEmpty { return nil }
        return names.name(f)
    }
}
