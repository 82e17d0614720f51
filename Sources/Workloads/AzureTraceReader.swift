/// Reads the Azure LLM inference trace 2023 (Azure Public Dataset; the code and conversation
/// traces of Splitwise, Patel et al., ISCA 2024): `TIMESTAMP,ContextTokens,GeneratedTokens`.
///
/// Rows become project rows: `arrival_s` is the time since the first row's `TIMESTAMP`
/// (`YYYY-MM-DD HH:MM:SS.fffffff`, computed in integer 100 ns ticks so that no precision is lost
/// to large epoch values), prompt and output tokens are the two counts, request IDs count from 0,
/// and no adapter is named. Rows with zero tokens are skipped and counted.
public final class AzureTraceReader: ExternalTraceReader {
    /// The file being read.
    public var file: String { lines.file }
    /// What the reader is, for provenance.
    public let sourceKind = "azure-llm-2023"
    /// Rows skipped, by reason.
    public private(set) var skipped: [String: Int] = [:]
    private let lines: ByteLineReader
    private let timeColumn: Int
    private let promptColumn: Int
    private let outputColumn: Int
    private let names: [String]
    private var fields: [UnsafeBufferPointer<UInt8>] = []
    private var firstTicks: Int? = nil
    private var lastTicks = Int.min
    private var nextID = 0

    /// Opens `path` and finds its columns.
    public init(path: String) throws(WorkloadError) {
        lines = try ByteLineReader(path: path)
        let header = try ExternalCSVHeader(lines)
        names = header.names
        timeColumn = try header.require("TIMESTAMP", file: path)
        promptColumn = try header.require("ContextTokens", file: path)
        outputColumn = try header.require("GeneratedTokens", file: path)
    }

    /// The next row, or nil at the end of the file.
    public func next() throws(WorkloadError) -> TraceRow? {
        while let row = try ExternalRowFields.next(lines, into: &fields, names: names, file: file) {
            let n = row.line
            guard let ticks = Self.ticks(fields[timeColumn]) else {
                throw WorkloadError(
                    file: file, line: n, field: names[timeColumn],
                    "'\(CSVLine.text(fields[timeColumn]))'; expected a time YYYY-MM-DD HH:MM:SS.fffffff")
            }
            guard ticks >= lastTicks else {
                throw WorkloadError(
                    file: file, line: n, field: names[timeColumn], "earlier than the row before; rows must be in time order")
            }
            lastTicks = ticks
            let prompt = try row.int(promptColumn)
            let output = try row.int(outputColumn)
            let first = firstTicks ?? ticks
            firstTicks = first
            if prompt == 0 || output == 0 {
                skipped[prompt == 0 ? "zero ContextTokens" : "zero GeneratedTokens", default: 0] += 1
                continue
            }
            defer { nextID += 1 }
            return TraceRow(
                requestID: nextID, arrivalSeconds: Double(ticks - first) / 1e7, adapterName: nil, promptTokens: prompt,
                outputTokens: output, line: n)
        }
        return nil
    }

    /// `YYYY-MM-DD HH:MM:SS[.f{1,7}]` (a `T` may separate date and time) as 100 ns ticks since
    /// 1970-01-01, or nil.
    static func ticks(_ f: UnsafeBufferPointer<UInt8>) -> Int? {
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= f.count else { return nil }
            var v = 0
            for k in at..<(at + count) {
                let d = Int(f[k]) - 48
                guard d >= 0 && d <= 9 else { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard f.count >= 19, f[4] == 45, f[7] == 45, f[10] == 32 || f[10] == 84, f[13] == 58, f[16] == 58,
            let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
            let hour = digits(11, 2), let minute = digits(14, 2), let second = digits(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0
        if f.count > 19 {
            guard f[19] == 46, f.count > 20, f.count <= 27, let v = digits(20, f.count - 20) else { return nil }
            fraction = v
            for _ in 0..<(27 - f.count) { fraction *= 10 }
        }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 86_400 + hour * 3600 + minute * 60 + second) * 10_000_000) + fraction
    }
}
