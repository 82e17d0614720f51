/// One request as a trace file holds it: the adapter by name, before a catalogue resolves it.
public struct TraceRow: Sendable, Hashable {
    /// Identifier, a non-negative integer unique within the trace.
    public var requestID: Int
    /// Arrival time in seconds from the start of the trace.
    public var arrivalSeconds: Double
    /// The adapter's catalogue name, or nil for the base model.
    public var adapterName: String?
    /// Prompt length in tokens (at least 1).
    public var promptTokens: Int
    /// Output length in tokens (at least 1).
    public var outputTokens: Int
    /// The 1-based line of the source file the row came from (0 when it came from no file).
    public var line: Int

    /// Creates a row.
    public init(
        requestID: Int, arrivalSeconds: Double, adapterName: String?, promptTokens: Int, outputTokens: Int, line: Int = 0
    ) {
        self.requestID = requestID
        self.arrivalSeconds = arrivalSeconds
        self.adapterName = adapterName
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.line = line
    }
}

/// A source of trace rows read one at a time (a file reader, or a real-trace importer).
public protocol TraceRowReader: AnyObject {
    /// The file the rows come from (for errors and provenance).
    var file: String { get }
    /// The next row, or nil at the end. Errors name the file, the line and the field.
    func next() throws(WorkloadError) -> TraceRow?
}
