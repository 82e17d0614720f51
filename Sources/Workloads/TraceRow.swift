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

/// The checks every reader of the project's format applies across rows: arrival times
/// non-decreasing and request IDs unique.
struct TraceRowChecks {
    private var lastArrival = -Double.infinity
    private var lastLine = 0
    // Seen IDs: a bit set for the usual small IDs (cheap at ten million rows), a set for the rest.
    private var bits: [UInt64] = []
    private var largeIDs: Set<Int> = []
    private static let bitSetLimit = 1 << 24  // 2 MiB of bits at most

    /// Throws if `row` arrives before the previous row or repeats a request ID.
    mutating func check(_ row: TraceRow, file: String) throws(WorkloadError) {
        guard row.arrivalSeconds >= lastArrival else {
            throw WorkloadError(
                file: file, line: row.line, field: "arrival_s",
                "\(row.arrivalSeconds) is before \(lastArrival) on line \(lastLine); arrival times must not decrease")
        }
        lastArrival = row.arrivalSeconds
        lastLine = row.line
        let id = row.requestID
        let duplicate: Bool
        if id < Self.bitSetLimit {
            let word = id >> 6
            if word >= bits.count { bits.append(contentsOf: repeatElement(0, count: max(word + 1 - bits.count, bits.count))) }
            let mask: UInt64 = 1 << UInt64(id & 63)
            duplicate = bits[word] & mask != 0
            bits[word] |= mask
        } else {
            duplicate = !largeIDs.insert(id).inserted
        }
        if duplicate {
            throw WorkloadError(file: file, line: row.line, field: "request_id", "duplicate request_id \(id)")
        }
    }
}
