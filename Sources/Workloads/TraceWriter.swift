/// Writes trace rows one at a time to a CSV or JSONL file (docs/trace-format.md), atomically.
///
/// Times are written as Swift's shortest representation of the `Double`, which reads back to the
/// same bits (in Swift, `strtod` and Python's `float`).
public final class TraceWriter {
    /// The format being written.
    public let format: TraceFormat
    private let out: AtomicFileWriter
    // Reached only from `write(_:)`, never re-entrantly: no run-time exclusivity checks per row.
    @exclusivity(unchecked) private var line: [UInt8] = []
    @exclusivity(unchecked) private var checks = TraceRowChecks()
    /// Number of rows written so far.
    public private(set) var rowCount = 0

    /// Starts writing `path` (a temporary file until `commit()`); the format defaults to the extension's.
    public init(path: String, format: TraceFormat? = nil) throws(WorkloadError) {
        if let format { self.format = format } else { self.format = try TraceFormat.of(path) }
        out = try AtomicFileWriter(path: path)
        if self.format == .csv { try out.write(TraceFormat.csvColumns.joined(separator: ",") + "\n") }
    }

    /// Appends one row. The writer does not reorder: rows go out as given, and a row the readers
    /// would reject (out of order, a repeated ID, lengths below 1, a time that is not a finite
    /// number >= 0) is an error naming the line it would have had, so every file written reads back.
    public func write(_ row: TraceRow) throws(WorkloadError) {
        try validate(row)
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

    private func validate(_ row: TraceRow) throws(WorkloadError) {
        let lineNumber = rowCount + (format == .csv ? 2 : 1)
        func fail(_ field: String, _ message: String) -> WorkloadError {
            WorkloadError(file: out.path, line: lineNumber, field: field, message + (row.line > 0 ? " (input line \(row.line))" : ""))
        }
        guard row.requestID >= 0 else { throw fail("request_id", "\(row.requestID); expected an integer >= 0") }
        guard row.arrivalSeconds.isFinite && row.arrivalSeconds >= 0 else {
            throw fail("arrival_s", "\(row.arrivalSeconds); expected a finite number of seconds >= 0")
        }
        guard row.promptTokens >= 1 else { throw fail("prompt_tokens", "\(row.promptTokens); expected at least 1") }
        guard row.outputTokens >= 1 else { throw fail("output_tokens", "\(row.outputTokens); expected at least 1") }
        if let name = row.adapterName, name.isEmpty || name.first == " " || name.last == " " {
            throw fail("adapter", "'\(name)'; adapter names cannot be empty or start or end with a space")
        }
        var numbered = row
        numbered.line = lineNumber
        try checks.check(numbered, file: out.path)
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
        var i = start
        var j = line.count - 1
        while i < j {
            line.swapAt(i, j)
            i += 1
            j -= 1
        }
    }
}
