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
                decode_work_us, decode_tail_us, eager_us, lora_us, host_us, and decode_factor, the \
                closed-loop factor that scales a decode-only step when the profile has one \
                (predicted_us includes it; --no-closed-loop leaves it out).
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

        @OptionGroup var closedLoop: ClosedLoopOptions

        func run() throws {
            do {
                let text = try String(contentsOfFile: scenario, encoding: .utf8)
                let dir = (scenario as NSString).deletingLastPathComponent
                let s = try Scenario.parse(text, file: scenario, baseDirectory: dir.isEmpty ? "." : dir)
                let trace = try ScenarioRunner.makeTrace(s)
                var path = profile
                var k = kernel
                // the options over the scenario's own keys; a scenario that is not measured (a
                // closed loop's, priced with --profile) takes the options alone
                var on = !closedLoop.noClosedLoop
                var loop = closedLoop.lender
                var eager = closedLoop.closedLoopEager
                if case .measured(let p, let sk, let scenarioOn, let from, _, let scenarioEager) = ScenarioRunner.resolvedCostModel(s) {
                    eager = eager ?? scenarioEager
                    path = path ?? resolvedPath(p, against: s.baseDirectory)
                    k = k ?? sk
                    on = on && (scenarioOn || loop != nil)
                    loop = loop ?? from.map { resolvedPath($0, against: s.baseDirectory) }
                }
                guard let path else {
                    throw CLIError("\(scenario): cost_model is not a measured profile; give --profile")
                }
                let prof: StepProfile
                do { prof = try StepProfile(directory: path) } catch { throw CLIError(error.description) }
                let cost = try MeasuredCostModel(
                    profile: prof, kernel: k ?? "sgmv", model: s.model, catalogue: trace.catalogue, closedLoop: on,
                    closedLoopFrom: on ? loop : nil, eagerCorrection: on && (eager ?? MeasuredCostModel.eagerCorrectionDefault))
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

/// Reads the steps CSV at `path`, prices every row and returns the CSV text with the parts
/// appended. Errors name the file, line and column.
func priceSteps(path: String, cost: MeasuredCostModel, catalogue: AdapterCatalogue) throws -> String {
    let table: StepsTable
    do {
        table = try StepsTable(path: path, catalogue: catalogue, needsMaxKeys: cost.profile.attentionUsesMaxKeys)
    } catch { throw CLIError(error.description) }
    var out =
        (table.columns + [
            "predicted_us", "decode_floor_us", "decode_work_us", "decode_tail_us", "eager_us", "lora_us", "host_us",
            "decode_factor",
        ]).joined(separator: ",") + "\n"
    for (row, b) in zip(table.rows, table.batches) {
        let p = cost.breakdown(b)
        let parts = [p.total, p.decodeFloor, p.decodeWork, p.decodeTail, p.eager, p.lora, p.host]
        out += (row + parts.map { String(format: "%.1f", $0) } + [String(format: "%.4f", p.factor)]).joined(separator: ",") + "\n"
    }
    return out
}
