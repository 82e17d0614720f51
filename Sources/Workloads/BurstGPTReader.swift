/// Reads BurstGPT (Wang et al., 2024): `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`,
/// and in newer releases `Session ID` and `Elapsed time`.
///
/// `Timestamp` is seconds; `arrival_s` is the time since the first row. Rows with zero response
/// tokens are failed requests and are skipped, as are rows with zero request tokens, each counted.
/// Optional filters keep one model (`ChatGPT`, `GPT-4`) or one log type (`Conversation log`,
/// `API log`); rows filtered out are counted too.
public final class BurstGPTReader: ExternalTraceReader {
    /// The file being read.
    public var file: String { lines.file }
    /// What the reader is, for provenance.
    public let sourceKind = "burstgpt"
    /// Rows skipped, by reason.
    public private(set) var skipped: [String: Int] = [:]
    private let lines: ByteLineReader
    private let names: [String]
    private let timeColumn: Int
    private let promptColumn: Int
    private let outputColumn: Int
    private let modelColumn: Int?
    private let logTypeColumn: Int?
    private let model: String?
    private let logType: String?
    private var fields: [UnsafeBufferPointer<UInt8>] = []
    private var first: Double? = nil
    private var last = -Double.infinity
    private var nextID = 0

    /// Opens `path`; keeps only rows of `model` and of `logType` when given.
    public init(path: String, model: String? = nil, logType: String? = nil) throws(WorkloadError) {
        lines = try ByteLineReader(path: path)
        let header = try ExternalCSVHeader(lines)
        names = header.names
        timeColumn = try header.require("Timestamp", file: path)
        promptColumn = try header.require("Request tokens", file: path)
        outputColumn = try header.require("Response tokens", file: path)
        modelColumn = header.position("Model")
        logTypeColumn = header.position("Log Type")
        if model != nil && modelColumn == nil { _ = try header.require("Model", file: path) }
        if logType != nil && logTypeColumn == nil { _ = try header.require("Log Type", file: path) }
        self.model = model
        self.logType = logType
    }

    /// The next row, or nil at the end of the file.
    public func next() throws(WorkloadError) -> TraceRow? {
        while let row = try ExternalRowFields.next(lines, into: &fields, names: names, file: file) {
            let n = row.line
            let t = try row.double(timeColumn)
            guard t >= last else {
                throw WorkloadError(
                    file: file, line: n, field: names[timeColumn], "\(t) is before the row above; rows must be in time order")
            }
            last = t
            let prompt = try row.int(promptColumn)
            let output = try row.int(outputColumn)
            let start = first ?? t
            first = start
            if let model, let c = modelColumn, row.text(c) != model {
                skipped["other model", default: 0] += 1
                continue
            }
            if let logType, let c = logTypeColumn, row.text(c) != logType {
                skipped["other log type", default: 0] += 1
                continue
            }
            if output == 0 {
                skipped["zero Response tokens (failed)", default: 0] += 1
                continue
            }
            if prompt == 0 {
                skipped["zero Request tokens", default: 0] += 1
                continue
            }
            defer { nextID += 1 }
            return TraceRow(
                requestID: nextID, arrivalSeconds: t - start, adapterName: nil, promptTokens: prompt, outputTokens: output, line: n)
        }
        return nil
    }
}
