/// Writes trace rows one at a time to a CSV or JSONL file (docs/trace-format.md), atomically.
///
/// Times are written as Swift's shortest representation of the `Double`, which reads back to the
/// same bits (in Swift, `strtod` and Python's `float`).
public final class TraceWriter {
    /// The format being written.
    public let format: TraceFormat
    private let out: AtomicFileWriter
    private var line: [UInt8] = []
    /// Number of rows written so far.
    public private(set) var rowCount = 0

    /// Starts writing `path` (a temporary file until `commit()`); the format defaults to the extension's.
    public init(path: String, format: TraceFormat? = nil) throws(WorkloadError) {
        if let format { self.format = format } else { self.format = try TraceFormat.of(path) }
        out = try AtomicFileWriter(path: path)
        if self.format == .csv { try out.write(TraceFormat.csvColumns.joined(separator: ",") + "\n") }
    }

    /// Appends one row. The writer does not reorder: rows go out as given.
    public func write(_ row: TraceRow) throws(WorkloadError) {
        line.removeAll(keepingCapacity: true)
        switch format {
        case .csv:
            append(row.requestID)
            line.append(44)
            line.append(contentsOf: row.arrivalSeconds.description.utf8)
            line.append(44)
            if let a = row.adapterName { line.append(contentsOf: CSVLine.escape(a).utf8) }
            line.append(44)
            append(row.promptTokens)
            line.append(44)
            append(row.outputTokens)
        case .jsonl:
            line.append(contentsOf: #"{"request_id":"#.utf8)
            append(row.requestID)
            line.append(contentsOf: #","arrival_s":"#.utf8)
            line.append(contentsOf: row.arrivalSeconds.description.utf8)
            line.append(contentsOf: #","adapter":"#.utf8)
            if let a = row.adapterName { line.append(contentsOf: JSONText.quoted(a).utf8) } else { line.append(contentsOf: "null".utf8) }
            line.append(contentsOf: #","prompt_tokens":"#.utf8)
            append(row.promptTokens)
            line.append(contentsOf: #","output_tokens":"#.utf8)
            append(row.outputTokens)
            line.append(125)
        }
        line.append(10)
        try out.write(bytes: line)
        rowCount += 1
    }

    /// Finishes the file and moves it into place.
    public func commit() throws(WorkloadError) { try out.commit() }

    // Digits straight into the line buffer, without a `String` per field.
    private func append(_ v: Int) {
        guard v >= 0 else {
            line.append(contentsOf: String(v).utf8)
            return
        }
        var x = v
        let start = line.count
        repeat {
            line.append(UInt8(48 + x % 10))
            x /= 10
        } while x > 0
        line[start...].reverse()
    }
}
