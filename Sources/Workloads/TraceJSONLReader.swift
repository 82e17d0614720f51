/// Reads a JSONL trace row by row: one object a line with the keys `request_id`, `arrival_s`,
/// `adapter` (a string, or null or absent for the base model), `prompt_tokens`, `output_tokens`.
public final class TraceJSONLReader: TraceRowReader {
    /// The file being read.
    public var file: String { lines.file }
    private let lines: ByteLineReader
    // Reached only from `next()`, never re-entrantly: no run-time exclusivity checks per row.
    @exclusivity(unchecked) private var object = FlatJSONObject()
    @exclusivity(unchecked) private var checks = TraceRowChecks()

    /// Opens `path`.
    public init(path: String) throws(WorkloadError) {
        lines = try ByteLineReader(path: path)
    }

    /// The next row, or nil at the end of the file.
    public func next() throws(WorkloadError) -> TraceRow? {
        while let line = try lines.nextLine() {
            if CSVLine.isBlank(line) { continue }
            let n = lines.lineNumber
            if let problem = object.parse(UnsafeBufferPointer(line)) { throw WorkloadError(file: file, line: n, problem) }
            var id: Int? = nil
            var arrival: Double? = nil
            var adapter: String? = nil
            var prompt: Int? = nil
            var output: Int? = nil
            for (key, value) in object.members {
                switch key {
                case "request_id": id = try int(value, n, key, min: 0)
                case "arrival_s": arrival = try seconds(value, n)
                case "adapter":
                    switch value {
                    case .null: adapter = nil
                    case .string(let s): adapter = s.isEmpty ? nil : s
                    default: throw WorkloadError(file: file, line: n, field: key, "expected an adapter name in quotes, or null")
                    }
                case "prompt_tokens": prompt = try int(value, n, key, min: 1)
                case "output_tokens": output = try int(value, n, key, min: 1)
                default:
                    throw WorkloadError(
                        file: file, line: n, field: key,
                        "unknown key; expected \(TraceFormat.csvColumns.joined(separator: ", "))")
                }
            }
            guard let id else { throw missing("request_id", n) }
            guard let arrival else { throw missing("arrival_s", n) }
            guard let prompt else { throw missing("prompt_tokens", n) }
            guard let output else { throw missing("output_tokens", n) }
            let row = TraceRow(
                requestID: id, arrivalSeconds: arrival, adapterName: adapter, promptTokens: prompt, outputTokens: output, line: n)
            try checks.check(row, file: file)
            return row
        }
        return nil
    }

    private func missing(_ key: String, _ line: Int) -> WorkloadError {
        WorkloadError(file: file, line: line, field: key, "missing; every line needs \(TraceFormat.csvColumns.joined(separator: ", "))")
    }

    private func int(_ v: FlatJSONObject.Value, _ line: Int, _ key: String, min: Int) throws(WorkloadError) -> Int {
        guard case .number(let f) = v, let x = FieldParser.int(f) else {
            throw WorkloadError(file: file, line: line, field: key, "expected an integer (at most 18 digits)")
        }
        guard x >= min else { throw WorkloadError(file: file, line: line, field: key, "\(x); expected an integer of at least \(min)") }
        return x
    }

    private func seconds(_ v: FlatJSONObject.Value, _ line: Int) throws(WorkloadError) -> Double {
        guard case .number(let f) = v, let x = FieldParser.double(f), x.isFinite, x >= 0 else {
            throw WorkloadError(file: file, line: line, field: "arrival_s", "expected a finite number of seconds >= 0")
        }
        return x
    }
}
