import ArgumentParser
import Foundation
import KernelProfiles
import Twin
import Workloads

extension ProfileCommand {
    /// Prices given batches with the twin's measured step-cost model, part by part: the way to
    /// ask which part of a step the twin gets wrong, one live iteration at a time (the batches come
    /// from `scripts/live_batches.py`, which recovers them from a recorded run).
    struct Price: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Price batches (a steps CSV) with the scenario's measured profile, part by part.",
            discussion: """
                The steps CSV has one row per iteration with the columns of the twin's StepBatch: \
                iteration, mode (unmerged or merged), prefill_tokens, prefill_sequences, \
                prefill_continuations, prefill_attention_pairs, decode_sequences, \
                decode_context_tokens, decode_max_context, sampling_sequences and segments \
                (adapter:tokens joined by ';'); other columns (start_s, live_s) are copied through. \
                Writes the rows again with predicted_us and its parts: decode_floor_us, \
                decode_work_us, decode_tail_us, eager_us, lora_us, host_us.
                """)

        @Argument(help: "Scenario YAML whose cost_model is a measured profile (its trace's catalogue names the adapters).")
        var scenario: String

        @Argument(help: "Steps CSV (scripts/live_batches.py writes one per recorded run).")
        var steps: String

        @Option(name: .long, help: "Profile directory instead of the scenario's.")
        var profile: String?

        @Option(name: .long, help: "LoRA kernel table instead of the scenario's.")
        var kernel: String?

        @Option(name: [.short, .long], help: "Output CSV (written whole or not at all); standard output if omitted.")
        var output: String?

        func run() throws {
            do {
                let text = try String(contentsOfFile: scenario, encoding: .utf8)
                let dir = (scenario as NSString).deletingLastPathComponent
                let s = try Scenario.parse(text, file: scenario, baseDirectory: dir.isEmpty ? "." : dir)
                let trace = try ScenarioRunner.makeTrace(s)
                var path = profile
                var k = kernel
                if case .measured(let p, let sk) = ScenarioRunner.resolvedCostModel(s) {
                    path = path ?? (p.hasPrefix("/") ? p : s.baseDirectory + "/" + p)
                    k = k ?? sk
                }
                guard let path else {
                    throw CLIError("\(scenario): cost_model is not a measured profile; give --profile")
                }
                let prof: StepProfile
                do { prof = try StepProfile(directory: path) } catch { throw CLIError(error.description) }
                let cost = try MeasuredCostModel(profile: prof, kernel: k ?? "sgmv", model: s.model, catalogue: trace.catalogue)
                let out = try priceSteps(path: steps, cost: cost, catalogue: trace.catalogue)
                if let output {
                    let w = try AtomicFileWriter(path: output)
                    try w.write(out)
                    try w.commit()
                } else {
                    print(out, terminator: "")
                }
            } catch let e as WorkloadError {
                throw CLIError(e.description)
            }
        }
    }
}

/// Columns of a steps CSV that `priceSteps` reads (docs/validation.md, "Step by step").
let stepColumns = [
    "mode", "prefill_tokens", "prefill_sequences", "prefill_continuations", "prefill_attention_pairs", "decode_sequences",
    "decode_context_tokens", "decode_max_context", "sampling_sequences", "segments",
]

/// Reads the steps CSV at `path`, prices every row and returns the CSV text with the parts
/// appended. Errors name the file, line and column.
func priceSteps(path: String, cost: MeasuredCostModel, catalogue: AdapterCatalogue) throws -> String {
    let table: ProfileTable
    do { table = try ProfileTable(path: path, required: stepColumns) } catch { throw CLIError(error.description) }
    let col = Dictionary(uniqueKeysWithValues: table.columns.enumerated().map { ($1, $0) })
    var out =
        (table.columns + [
            "predicted_us", "decode_floor_us", "decode_work_us", "decode_tail_us", "eager_us", "lora_us", "host_us",
        ]).joined(separator: ",") + "\n"
    for (row, line) in zip(table.rows, table.lines) {
        func fail(_ c: String, _ why: String) -> CLIError {
            CLIError("\(path):\(line): column \(c): \(why) (found '\(row[col[c]!])')")
        }
        func int(_ c: String) throws -> Int {
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
        } else if b.prefillTokens > 0 && cost.profile.attentionUsesMaxKeys {
            throw CLIError(
                "\(path):\(line): column prefill_max_keys: missing, and the profile's attention fit needs it "
                    + "(the most keys one prefill chunk attends to)")
        }
        guard b.tokens > 0 else { throw fail("prefill_tokens", "a step with no prefill token and no decode sequence") }
        let seg = row[col["segments"]!]
        if !seg.isEmpty {
            for part in seg.split(separator: ";") {
                let kv = part.split(separator: ":")
                guard kv.count == 2, let n = Int(kv[1]), n > 0 else { throw fail("segments", "expected adapter:tokens joined by ';'") }
                guard let a = catalogue.index(of: String(kv[0])) else {
                    throw fail("segments", "adapter '\(kv[0])' is not in the scenario's catalogue")
                }
                b.segments.append(LoraSegment(adapter: a, tokens: n))
            }
        }
        let p = cost.breakdown(b)
        let parts = [p.total, p.decodeFloor, p.decodeWork, p.decodeTail, p.eager, p.lora, p.host]
        out += (row + parts.map { String(format: "%.1f", $0) }).joined(separator: ",") + "\n"
    }
    return out
}
