import KernelProfiles
import Workloads

/// A steps CSV: one twin `StepBatch` a row, as `scripts/live_batches.py` writes one per recorded
/// live run and `gpu/closed_loop.py` one per closed-loop calibration run (docs/validation.md,
/// "Step by step"). Other columns (`iteration`, `start_s`, `live_s`, ...) are kept as read.
public struct StepsTable: Sendable {
    /// Columns the batches are read from; `prefill_max_keys` is optional (see `init`).
    public static let columns = [
        "mode", "prefill_tokens", "prefill_sequences", "prefill_continuations", "prefill_attention_pairs", "decode_sequences",
        "decode_context_tokens", "decode_max_context", "sampling_sequences", "segments",
    ]

    /// The file, its columns in file order, each row's raw fields and 1-based line.
    public let file: String
    public let columns: [String]
    public let rows: [[String]]
    public let lines: [Int]
    /// The batch of each row.
    public let batches: [StepBatch]

    /// Reads `path`; adapters in `segments` are looked up in `catalogue`. `needsMaxKeys`: a step
    /// with prefill tokens must have `prefill_max_keys` (profiles whose attention fit uses it).
    /// Errors name the file, line and column.
    public init(path: String, catalogue: AdapterCatalogue, needsMaxKeys: Bool) throws(WorkloadError) {
        let table: ProfileTable
        do { table = try ProfileTable(path: path, required: Self.columns) } catch {
            throw WorkloadError(file: error.file, line: error.line, field: error.column, error.message)
        }
        let col = Dictionary(uniqueKeysWithValues: table.columns.enumerated().map { ($1, $0) })
        var batches: [StepBatch] = []
        batches.reserveCapacity(table.rows.count)
        for (row, line) in zip(table.rows, table.lines) {
            func fail(_ c: String, _ why: String) -> WorkloadError {
                WorkloadError(file: path, line: line, field: c, "\(why) (found '\(row[col[c]!])')")
            }
            func int(_ c: String) throws(WorkloadError) -> Int {
                guard let v = Int(row[col[c]!]), v >= 0 else { throw fail(c, "expected an integer >= 0") }
                return v
            }
            var b = StepBatch()
            switch row[col["mode"]!] {
            case "unmerged": b.mode = .unmerged
            case "merged": b.mode = .merged
            default: throw fail("mode", "expected unmerged or merged")
            }
            b.prefillTokens = try int("prefill_tokens")
            b.prefillSequences = try int("prefill_sequences")
            b.prefillContinuations = try int("prefill_continuations")
            guard let pairs = Double(row[col["prefill_attention_pairs"]!]), pairs >= 0, pairs.isFinite else {
                throw fail("prefill_attention_pairs", "expected a number >= 0")
            }
            b.prefillAttentionPairs = pairs
            b.decodeSequences = try int("decode_sequences")
            b.decodeContextTokens = try int("decode_context_tokens")
            b.decodeMaxContext = try int("decode_max_context")
            b.samplingSequences = try int("sampling_sequences")
            if col["prefill_max_keys"] != nil {
                b.prefillMaxKeys = try int("prefill_max_keys")
            } else if b.prefillTokens > 0 && needsMaxKeys {
                throw WorkloadError(
                    file: path, line: line, field: "prefill_max_keys",
                    "missing, and the profile's attention fit needs it (the most keys one prefill chunk attends to)")
            }
            guard b.tokens > 0 else { throw fail("prefill_tokens", "a step with no prefill token and no decode sequence") }
            let seg = row[col["segments"]!]
            if !seg.isEmpty {
                for part in seg.split(separator: ";") {
                    let kv = part.split(separator: ":")
                    guard kv.count == 2, let n = Int(kv[1]), n > 0 else {
                        throw fail("segments", "expected adapter:tokens joined by ';'")
                    }
                    guard let a = catalogue.index(of: String(kv[0])) else {
                        throw fail("segments", "adapter '\(kv[0])' is not in the catalogue")
                    }
                    b.segments.append(LoraSegment(adapter: a, tokens: n))
                }
            }
            batches.append(b)
        }
        file = path
        columns = table.columns
        rows = table.rows
        lines = table.lines
        self.batches = batches
    }

    /// The values of a numeric column (`live_s`, ...), one a row; errors name the line.
    public func numbers(_ column: String) throws(WorkloadError) -> [Double] {
        guard let c = columns.firstIndex(of: column) else {
            throw WorkloadError(file: file, line: 1, field: column, "missing column")
        }
        var out: [Double] = []
        out.reserveCapacity(rows.count)
        for (row, line) in zip(rows, lines) {
            guard let v = Double(row[c]), v.isFinite, v >= 0 else {
                throw WorkloadError(file: file, line: line, field: column, "expected a number >= 0 (found '\(row[c])')")
            }
            out.append(v)
        }
        return out
    }
}
